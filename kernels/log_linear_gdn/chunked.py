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
3. the bucket states, chunk after chunk: every H_j goes through the chunk's transition M; then, with
   p trailing zeros in c + 1, levels 1..p and the chunk's own state K~^T U0 merge into level p + 1
   (the Fenwick buckets of chunk c + 1). A scan over chunks on (levels, K, V) states, as Gated
   DeltaNet's own chunked form scans one state; transitions are (K, K) matrices here, not scalars,
   so the segment tree of log-linear Mamba-2 would multiply matrices.
Computes in float32, or float64 if an input is float64; returns v's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from redpajama.kernels.log_linear.masks import num_levels, weighted_mask
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


def log_linear_gdn_chunked(q, k, v, g, beta, lam, chunk_size: int = 64) -> torch.Tensor:
    """o (B, T, H, V) = log_linear_gdn_quadratic(q, k, v, g, beta, lam), chunk by chunk (module doc)."""
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size must be a power of two, got {chunk_size}")
    b, t, h, dk = k.shape
    dv = v.shape[-1]
    if lam.shape[-1] < num_levels(t):
        raise ValueError(f"lam has L={lam.shape[-1]} levels, T={t} needs at least {num_levels(t)}")
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
        states = qc.new_zeros(b, h, levels + 1, dk, dv)  # level j at index j - 1; one spare
        reads = []
        for c in range(nc):
            reads.append(states[:, :, :levels])
            states = torch.einsum("bhij,bhljv->bhliv", m[:, c], states)
            p = ((c + 1) & -(c + 1)).bit_length() - 1  # trailing zeros of c + 1
            merged = states[:, :, :p].sum(2, keepdim=True) + own[:, c, :, None]
            states = torch.cat([torch.zeros_like(states[:, :, :p]), merged, states[:, :, p + 1 :]], dim=2)
        buckets = torch.stack(reads, dim=1)  # (B, NC, H, J, K, V): bucket states at each chunk's start
        wl = lam_c[..., kb + 1 : kb + 1 + levels]  # (B, NC, C, H, J)
        out = out + torch.einsum("bcthj,bcthk,bchjkv->bcthv", wl, qe, buckets)
    return out.reshape(b, nc * chunk_size, h, dv)[:, :t].to(v.dtype)
