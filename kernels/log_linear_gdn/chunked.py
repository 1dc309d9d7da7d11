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
The per-chunk terms and step 1 (`chunk_terms`, `intra_chunk`) are shared with `log_linear_gdn`,
which runs step 3 and the reads of step 2 in Triton (buckets.py).
Computes in float32 (also inside autocast), or float64 if an input is float64; returns v's dtype.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from redpajama.kernels.log_linear.masks import weighted_mask
from redpajama.kernels.log_linear_gdn.naive import check_inputs
from redpajama.kernels.ssd.chunked import chunk_views
from redpajama.kernels.ssd.naive import segsum


class ChunkTerms(NamedTuple):
    """The WY terms of every chunk (module doc), float32 or float64; (B, NC, ...) leading axes."""

    p_intra: torch.Tensor  # Aqk Tm (B, NC, H, C, C)
    qe: torch.Tensor  # Q * exp(g) - Aqk W (B, NC, C, H, K): what queries read from incoming states
    w: torch.Tensor  # Tm (K * exp(g)) (B, NC, H, C, K)
    k_end: torch.Tensor  # K~ = K * exp(g_C - g) (B, NC, C, H, K)
    u0: torch.Tensor  # Tm V (B, NC, H, C, V)
    decay: torch.Tensor  # exp(g_C) (B, NC, H): the transition is M = decay I - K~^T W


def chunk_terms(qc, kc, vc, gc, bc) -> ChunkTerms:
    """Per chunk (inputs (B, NC, C, H, *)): the terms of the module doc, computed in parallel over
    the chunks (a batched triangular solve for Tm)."""
    cl = qc.shape[2]
    g = torch.cumsum(gc, dim=2)  # (B, NC, C, H)
    gamma = torch.exp(segsum(gc.permute(0, 1, 3, 2)))  # (B, NC, H, C, C), zero above the diagonal
    qk = torch.einsum("bcthk,bcshk->bchts", qc, kc) * gamma
    kk = torch.einsum("bcthk,bcshk->bchts", kc, kc) * gamma
    strict = torch.tril(torch.ones(cl, cl, dtype=torch.bool, device=qc.device), diagonal=-1)
    beta = bc.permute(0, 1, 3, 2)  # (B, NC, H, C)
    lower = torch.eye(cl, dtype=qc.dtype, device=qc.device) + beta[..., None] * kk.masked_fill(~strict, 0)
    tm = torch.linalg.solve_triangular(lower, torch.diag_embed(beta), upper=False, unitriangular=True)
    eg = torch.exp(g)[..., None]  # (B, NC, C, H, 1)
    w = torch.einsum("bchts,bcshk->bchtk", tm, kc * eg)
    return ChunkTerms(
        p_intra=qk @ tm,
        qe=qc * eg - torch.einsum("bchts,bchsk->bcthk", qk, w),
        w=w,
        k_end=kc * torch.exp(g[:, :, -1:] - g)[..., None],
        u0=torch.einsum("bchts,bcshv->bchtv", tm, vc),
        decay=torch.exp(g[:, :, -1]),
    )


def transitions(terms: ChunkTerms) -> tuple[torch.Tensor, torch.Tensor]:
    """Each chunk's transition M = decay I - K~^T W (B, NC, H, K, K) and own end state K~^T U0
    (B, NC, H, K, V): the chunk as a step of the state recurrence, S_end = M S0 + K~^T U0."""
    dk = terms.k_end.shape[-1]
    eye = torch.eye(dk, dtype=terms.k_end.dtype, device=terms.k_end.device)
    m = terms.decay[..., None, None] * eye - torch.einsum("bcthi,bchtj->bchij", terms.k_end, terms.w)
    own = torch.einsum("bcthk,bchtv->bchkv", terms.k_end, terms.u0)
    return m, own


def intra_chunk(terms: ChunkTerms, vc, lam_c, kb: int) -> torch.Tensor:
    """Level 0..kb of every chunk, (P_intra * lam_t^level(t, s)) V: (B, NC, C, H, V)."""
    b, nc, cl, h = lam_c.shape[:4]
    lam_in = lam_c[..., : kb + 1].reshape(b * nc, cl, h, kb + 1)
    mask = weighted_mask(lam_in).reshape(b, nc, h, cl, cl)
    return torch.einsum("bchts,bcshv->bcthv", terms.p_intra * mask, vc)


def chunk_inputs(q, k, v, g, beta, lam, chunk_size: int, ctype: torch.dtype):
    """Checked inputs -> (their (B, NC, C, ...) chunk views in ctype, with lam padded to cover the
    chunk levels; log2(chunk_size); NC; the chunk levels J = bit_length(NC - 1))."""
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size must be a power of two, got {chunk_size}")
    kb = chunk_size.bit_length() - 1
    nc = -(-k.shape[1] // chunk_size)
    levels = (nc - 1).bit_length()
    # Padded queries may index levels past a short T's lam; real (t, s) pairs never do.
    lam = F.pad(lam, (0, max(0, kb + levels + 1 - lam.shape[-1])))
    views = [chunk_views(x.to(ctype), nc, chunk_size) for x in (q, k, v, g, beta, lam)]
    return views, kb, nc, levels


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
    check_inputs(q, k, v, g, beta, lam)
    with torch.autocast(q.device.type, enabled=False):  # the module doc's precision, also under autocast
        return _log_linear_gdn_chunked(q, k, v, g, beta, lam, chunk_size)


def _log_linear_gdn_chunked(q, k, v, g, beta, lam, chunk_size: int) -> torch.Tensor:
    b, t, h, dk = k.shape
    dv = v.shape[-1]
    ctype = torch.float32
    for x in (q, k, v, g, beta, lam):
        ctype = torch.promote_types(ctype, x.dtype)
    (qc, kc, vc, gc, bc, lam_c), kb, nc, levels = chunk_inputs(q, k, v, g, beta, lam, chunk_size, ctype)
    terms = chunk_terms(qc, kc, vc, gc, bc)
    out = intra_chunk(terms, vc, lam_c, kb)
    if levels:
        size = 1 << levels
        m, own = transitions(terms)
        qe, wl = (F.pad(x, (0,) * (2 * (x.dim() - 2)) + (0, size - nc)) for x in (terms.qe, lam_c))
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
