"""Log-linear Gated DeltaNet chunk by chunk in plain PyTorch, differentiable by autograd: the same
function as `naive.log_linear_gdn_quadratic` in O(T (C + log T)) time instead of O(T^2).

Shapes as in naive.py; chunk_size C = 2^k. T is padded to a multiple of C with k = v = q = beta =
g = lam = 0 (padded tokens have identity transitions and write nothing; their outputs are cut).

Per chunk, with g cumulated from the chunk's start, Gamma[t, s] = exp(g_t - g_s) (s <= t) and an
incoming state S0 (the chunkwise form of Gated DeltaNet, WY representation):
    Tm = (I + diag(beta) (K K^T * Gamma * strictly lower))^(-1) diag(beta)      (C, C)
    U0 = Tm V,  W = Tm (K * exp(g)),  Aqk = Q K^T * Gamma * causal
    outputs    O = Aqk U0 + Qe S0,          Qe = Q * exp(g) - Aqk W
    end state  S_end = M S0 + K~^T U0,      M = exp(g_C) I - K~^T W,  K~ = K * exp(g_C - g).
Levels split at the chunk boundary as in log-linear Mamba-2 (kernels/log_linear/chunked.py):
1. intra-chunk: (Aqk Tm * lam_t^level(t, s)) V, levels 0..k;
2. inter-chunk: chunk c reads its level-j bucket state H_j (j >= 1, the bucket's tokens carried
   through every transition up to c's start) as lam_t^(k+j) (Qe H_j)_t;
3. the bucket states, as log-linear Mamba-2 builds them (kernels/log_linear/chunked.py) but with
   (K, K) transition matrices where Mamba-2 has scalar decays: a segment tree over the chunks gives
   each half-block's own end state G_j and transition product T_j (pairwise merges); chunk c's
   level-j bucket is the half-block before c's own, G_j[(c >> (j-1)) - 1] when bit j-1 of c is set,
   carried to c's start by the product of the transitions of c's half-block before c (a prefix
   product within aligned blocks, doubled level by level from the same T_j). O(log NC) rounds of
   batched matrix products instead of a scan over the NC chunks.
Computes in float32, or float64 if an input is float64; returns v's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from redpajama.kernels.log_linear.masks import weighted_mask
from redpajama.kernels.log_linear_gdn.naive import check_inputs
from redpajama.kernels.ssd.chunked import chunk_views
from redpajama.kernels.ssd.naive import segsum


def _chunk_terms(qc, kc, vc, gc, bc):
    """Per chunk (B, NC, C, H, *): the intra-chunk matrix P_c = Aqk Tm (B, NC, H, C, C), Qe (B, NC, C,
    H, K), the transition M (B, NC, H, K, K) and the chunk's own end state K~^T U0 (B, NC, H, K, V)."""
    cl = qc.shape[2]
    g = torch.cumsum(gc, dim=2)  # (B, NC, C, H)
    gamma = torch.exp(segsum(gc.permute(0, 1, 3, 2)))  # (B, NC, H, C, C), zero above the diagonal
    qk = torch.einsum("bcthk,bcshk->bchts", qc, kc) * gamma
    kk = torch.einsum("bcthk,bcshk->bchts", kc, kc) * gamma
    strict = torch.tril(torch.ones(cl, cl, dtype=torch.bool, device=qc.device), diagonal=-1)
    beta = bc.permute(0, 1, 3, 2)  # (B, NC, H, C)
    lower = torch.eye(cl, dtype=qc.dtype, device=qc.device) + beta[..., None] * kk.masked_fill(~strict, 0)
    tm = torch.linalg.solve_triangular(lower, torch.diag_embed(beta), upper=False, unitriangular=True)
    p_intra = qk @ tm
    eg = torch.exp(g)[..., None]  # (B, NC, C, H, 1)
    w = torch.einsum("bchts,bcshk->bchtk", tm, kc * eg)
    u0 = torch.einsum("bchts,bcshv->bchtv", tm, vc)
    qe = qc * eg - torch.einsum("bchts,bchsk->bcthk", qk, w)
    k_end = kc * torch.exp(g[:, :, -1:] - g)[..., None]  # K~ (B, NC, C, H, K)
    eye = torch.eye(kc.shape[-1], dtype=qc.dtype, device=qc.device)
    m = torch.exp(g[:, :, -1])[..., None, None] * eye - torch.einsum("bcthi,bchtj->bchij", k_end, w)
    own = torch.einsum("bcthk,bchtv->bchkv", k_end, u0)
    return p_intra, qe, m, own


def _half_blocks(m, own, levels):
    """Segment tree over the chunks: yields, for j = 1..levels, (G_j, T_j) with G_j[n] (B, NB, H, K, V)
    the state at the end of half-block n (chunks [n 2^(j-1), (n+1) 2^(j-1))) from those chunks only
    and T_j[n] (B, NB, H, K, K) the product of its transitions, the latest on the left. m, own: the
    chunks' transitions and own end states, NC padded to 2^levels."""
    g, tr = own, m
    for j in range(levels):
        if j:
            # Merge pairs: the left half's state goes through the right half's transitions.
            g = tr[:, 1::2] @ g[:, 0::2] + g[:, 1::2]
            tr = tr[:, 1::2] @ tr[:, 0::2]
        yield g, tr


def bucket_states(m: torch.Tensor, own: torch.Tensor, levels: int):
    """Yields, for level j = 1..levels, the level-j bucket states of the chunks that have one, carried
    to each chunk's start: (B, NB, half, H, K, V) for the second halves (half = 2^(j-1) chunks) of
    the NB aligned blocks of 2^j chunks (a chunk has a level-j bucket iff bit j-1 of its index is
    set). m (B, NC, H, K, K) transitions, own (B, NC, H, K, V) own end states; NC is padded to
    2^levels with identity transitions and empty states."""
    b, nc, h, dk, dv = own.shape
    size = 1 << levels
    eye = torch.eye(dk, dtype=m.dtype, device=m.device)
    m = torch.cat([m, eye.expand(b, size - nc, h, dk, dk)], dim=1)
    own = F.pad(own, (0, 0, 0, 0, 0, 0, 0, size - nc))
    prefix = m  # product of transitions from the start of c's aligned block of 2^(j-1) chunks to c
    for j, (g, tr) in enumerate(_half_blocks(m, own, levels), start=1):
        half = 1 << (j - 1)
        nb = size // (2 * half)
        # Views (block, which half, position): no gathers. The bucket is the block's first half-block.
        pre = prefix.reshape(b, nb, 2, half, h, dk, dk)
        src = g.reshape(b, nb, 2, h, dk, dv)[:, :, 0, None]  # (B, NB, 1, H, K, V)
        # Carried through the transitions of the second half before c: none at its first chunk.
        yield torch.cat([src, pre[:, :, 1, :-1] @ src], dim=2)
        # Prefix within blocks of 2^j: the second half also passes the first half's product.
        first_total = tr.reshape(b, nb, 2, h, dk, dk)[:, :, 0, None]
        prefix = torch.stack([pre[:, :, 0], pre[:, :, 1] @ first_total], dim=2).reshape(b, size, h, dk, dk)


def log_linear_gdn_chunked(q, k, v, g, beta, lam, chunk_size: int = 64) -> torch.Tensor:
    """o (B, T, H, V) = log_linear_gdn_quadratic(q, k, v, g, beta, lam), chunk by chunk (module doc)."""
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size must be a power of two, got {chunk_size}")
    check_inputs(q, k, v, g, beta, lam)
    b, t, h, dk = k.shape
    dv = v.shape[-1]
    ctype = torch.float32
    for x in (q, k, v, g, beta, lam):
        ctype = torch.promote_types(ctype, x.dtype)
    kb = chunk_size.bit_length() - 1
    nc = -(-t // chunk_size)
    levels = (nc - 1).bit_length()  # chunk levels 1..levels
    # Padded queries may index levels past a short T's lam; real (t, s) pairs never do.
    lam = F.pad(lam, (0, max(0, kb + levels + 1 - lam.shape[-1])))
    qc, kc, vc, gc, bc, lam_c = (chunk_views(x.to(ctype), nc, chunk_size) for x in (q, k, v, g, beta, lam))
    p_intra, qe, m, own = _chunk_terms(qc, kc, vc, gc, bc)

    lam_in = lam_c[..., : kb + 1].reshape(b * nc, chunk_size, h, kb + 1)
    mask = weighted_mask(lam_in).reshape(b, nc, h, chunk_size, chunk_size)
    out = torch.einsum("bchts,bcshv->bcthv", p_intra * mask, vc)
    if levels:
        size = 1 << levels
        qe, wl = (F.pad(x, (0,) * (2 * (x.dim() - 2)) + (0, size - nc)) for x in (qe, lam_c))
        inter = out.new_zeros(b, size, chunk_size, h, dv)
        for j, carried in enumerate(bucket_states(m, own, levels), start=1):
            half = 1 << (j - 1)
            nb = size // (2 * half)
            # The second halves of the blocks of 2^j chunks read their level-j bucket, weighted by lam.
            q2 = qe.reshape(b, nb, 2, half, chunk_size, h, dk)[:, :, 1]
            w2 = wl[..., kb + j].reshape(b, nb, 2, half, chunk_size, h)[:, :, 1]
            reads = torch.einsum("bnithk,bnihkv->bnithv", q2, carried) * w2[..., None]
            inter.view(b, nb, 2, half, chunk_size, h, dv)[:, :, 1] += reads
        out = out + inter[:, :nc]
    return out.reshape(b, nc * chunk_size, h, dv)[:, :t].to(v.dtype)
