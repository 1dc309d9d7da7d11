"""Log-linear Mamba-2 (Guo et al. 2025) chunk by chunk in plain PyTorch, differentiable by autograd:
the same function as `redpajama.kernels.log_linear.naive.log_linear_quadratic` in O(T (C + log T))
time and memory instead of O(T^2) (per chunk of C tokens: a (C, C) diagonal block, and one incoming
state per chunk-level, log2(T / C) of them, read out by one contraction of size log2(T / C) * N).

Shapes as there; chunk_size C = 2^k. T is padded to a multiple of C with dt = x = B = C = lam = 0
(padded keys feed nothing, padded queries are cut from the output).

Levels split at the chunk boundary: for t, s in chunks ct, cs at offsets i, j,
    level(t, s) = bit_length(i xor j)               if ct == cs   (<= k),
    level(t, s) = k + bit_length(ct xor cs)          if cs < ct.
1. intra-chunk: SSD's diagonal block, its (C, C) decay matrix times lam_t^level(t, s);
2. chunk states: each chunk's own state at its end, S_c = sum_{s in c} exp(a_end - a_s) dt_s B_s x_s^T;
3. per chunk-level j >= 1 the source chunks of chunk c form the Fenwick bucket
   [(c >> j) << j, ((c >> j) << j) + 2^(j-1)) (non-empty iff bit j-1 of c is set), the first half of
   c's aligned block of 2^j chunks. Those half-block states come from a segment tree over the chunk
   states (pairwise merges, so O(NC) states in all), then decay from the half-block's end to c's start;
4. y_t += sum_j lam_t^(k+j) exp(a_t) C_t . state_j(c) for t in chunk c.
Decays are sums of dt A over bounded or same-sign ranges (no difference of two long prefix sums).
Computes in float32, or float64 if an input is float64; returns x's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from redpajama.kernels.log_linear.masks import num_levels, weighted_mask
from redpajama.kernels.ssd.naive import expand_groups, segsum


def _pad_time(v: torch.Tensor, pad: int) -> torch.Tensor:
    """Zero-pad dim 1 (time) by `pad` at the end."""
    return F.pad(v, (0, 0) * (v.dim() - 2) + (0, pad)) if pad else v


def _pad_chunks(v: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """Zero-pad dimension `dim` at the end to `size` entries."""
    extra = size - v.shape[dim]
    if extra == 0:
        return v
    return F.pad(v, (0, 0) * (v.dim() - 1 - dim) + (0, extra))


def _intra_chunk(cc, bc, xdt, a, lam_c):
    """Diagonal blocks: y[b, c, i] = sum_{j <= i in c} lam_i^level (C_i . B_j) exp(a_i - a_j) dt_j x_j.

    cc, bc (B, NC, C, H, N); xdt (B, NC, C, H, P); a (B, H, NC, C); lam_c (B, NC, C, H, k+1).
    """
    b, nc, cl, h, nl = lam_c.shape
    mask = weighted_mask(lam_c.reshape(b * nc, cl, h, nl)).reshape(b, nc, h, cl, cl).transpose(1, 2)
    scores = torch.exp(segsum(a)) * mask  # (B, H, NC, C, C)
    return torch.einsum("bclhn,bcshn,bhcls,bcshp->bclhp", cc, bc, scores, xdt)


def _chunk_states(bc, xdt, a_cs):
    """Each chunk's own state at its end (nothing from earlier chunks): (B, NC, H, N, P)."""
    decay = torch.exp(a_cs[..., -1:] - a_cs)  # (B, H, NC, C): within one chunk, bounded
    return torch.einsum("bclhn,bhcl,bclhp->bchnp", bc, decay, xdt)


def _half_block_states(states, totals, levels):
    """Segment tree over the chunk states: yields, for j = 1..levels, (G_j, T_j) with
    G_j[m] the state at the end of half-block m (chunks [m 2^(j-1), (m+1) 2^(j-1))) from those chunks
    only, and T_j[m] that half-block's total dt A. states (B, NC, H, N, P), totals (B, H, NC), NC
    padded to 2^levels."""
    g, tot = states, totals
    for j in range(levels):
        if j:
            # Merge pairs: the left half decays through the whole right half before adding in.
            g = torch.exp(tot[..., 1::2]).transpose(1, 2)[..., None, None] * g[:, 0::2] + g[:, 1::2]
            tot = tot[..., 0::2] + tot[..., 1::2]
        yield g, tot


def _bucket_states(states, totals, levels):
    """(B, NC, J, H, N, P): for chunk c and level j = 1..J, the state of c's level-j bucket decayed to
    c's start, zero where the bucket is empty. states (B, NC, H, N, P), totals (B, H, NC)."""
    b, nc, h = states.shape[:3]
    size = 1 << levels
    c = torch.arange(nc, device=states.device)
    tree = _half_block_states(_pad_chunks(states, 1, size), _pad_chunks(totals, 2, size), levels)
    out = []
    for j, (g, _) in enumerate(tree, start=1):
        half = 1 << (j - 1)
        # c sits in half-block c >> (j-1); its bucket is the half-block before, when that is the first
        # half of their aligned block of 2^j chunks (bit j-1 of c set).
        has = ((c >> (j - 1)) & 1).to(states.dtype)
        src = g[:, ((c >> (j - 1)) - 1).clamp(min=0)]
        # Decay from the bucket's end to c's start: the chunks of c's own half-block before c, an
        # exclusive cumsum within half-blocks (never a difference of long prefix sums).
        tot = _pad_chunks(totals, 2, size).reshape(b, h, size // half, half)
        into = F.pad(torch.cumsum(tot[..., :-1], dim=-1), (1, 0)).reshape(b, h, size)[..., :nc]
        out.append(src * (torch.exp(into) * has).transpose(1, 2)[..., None, None])
    return torch.stack(out, dim=2)


def _inter_chunk(cc, states, totals, a_cs, lam_c, k):
    """y[b, c, i] = sum_{j >= 1} lam_i^(k+j) exp(a_i) C_i . (state of c's level-j bucket, decayed to
    c's start), or None with one chunk. cc (B, NC, C, H, N); states (B, NC, H, N, P); totals
    (B, H, NC); a_cs (B, H, NC, C); lam_c (B, NC, C, H, L') with L' > k + bit_length(NC - 1)."""
    levels = (cc.shape[1] - 1).bit_length()
    if levels == 0:
        return None
    s = _bucket_states(states, totals, levels)
    w = lam_c[..., k + 1 : k + 1 + levels] * torch.exp(a_cs).permute(0, 2, 3, 1)[..., None]
    # One contraction over (level, state) per (batch, chunk, head): a bmm with K = J N.
    return torch.einsum("bclhjn,bcjhnp->bclhp", cc[..., None, :] * w[..., None], s)


def log_linear_chunked(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    D: torch.Tensor,
    lam: torch.Tensor,
    chunk_size: int = 64,
) -> torch.Tensor:
    """y (B, T, H, P) = log_linear_quadratic(x, dt, A, Bm, Cm, D, lam), chunk by chunk (module doc)."""
    if chunk_size < 1 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size must be a power of two, got {chunk_size}")
    b, t, h, p = x.shape
    if lam.shape[-1] < num_levels(t):
        raise ValueError(f"lam has L={lam.shape[-1]} levels, T={t} needs at least {num_levels(t)}")
    ctype = torch.promote_types(torch.float32, x.dtype)
    for v in (dt, A, Bm, Cm, D, lam):
        ctype = torch.promote_types(ctype, v.dtype)
    k = chunk_size.bit_length() - 1
    nc = -(-t // chunk_size)
    pad = nc * chunk_size - t
    # Padded queries may index levels up to k + bit_length(NC - 1) that a short T's lam lacks; every
    # real (t, s) pair stays below num_levels(T), so zero weights there change nothing.
    lam = F.pad(lam, (0, max(0, k + (nc - 1).bit_length() + 1 - lam.shape[-1])))

    def chunks(v):
        return _pad_time(v.to(ctype), pad).reshape(b, nc, chunk_size, *v.shape[2:])

    xc, dtc, lam_c = chunks(x), chunks(dt), chunks(lam)
    bc, cc = chunks(expand_groups(Bm, h)), chunks(expand_groups(Cm, h))
    xdt = xc * dtc[..., None]
    a = (dtc * A.to(ctype)).permute(0, 3, 1, 2)  # (B, H, NC, C)
    a_cs = torch.cumsum(a, dim=-1)

    y = _intra_chunk(cc, bc, xdt, a, lam_c[..., : k + 1])
    y_off = _inter_chunk(cc, _chunk_states(bc, xdt, a_cs), a_cs[..., -1], a_cs, lam_c, k)
    if y_off is not None:
        y = y + y_off
    y = y.reshape(b, nc * chunk_size, h, p)[:, :t] + D.to(ctype)[:, None] * x.to(ctype)
    return y.to(x.dtype)
