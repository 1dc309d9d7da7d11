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
`log_linear_chunked_bwd` writes out the backward that the Triton backward in `log_linear.py`
implements (autograd only over the small bucket-state segment tree).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from redpajama.kernels.log_linear.masks import level_matrix, num_levels, weighted_mask
from redpajama.kernels.ssd.chunked import chunk_views
from redpajama.kernels.ssd.naive import expand_groups, segsum


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


def bucket_states(states, totals, levels):
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
    s = bucket_states(states, totals, levels)
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
    # Padded queries may index levels up to k + bit_length(NC - 1) that a short T's lam lacks; every
    # real (t, s) pair stays below num_levels(T), so zero weights there change nothing.
    lam = F.pad(lam, (0, max(0, k + (nc - 1).bit_length() + 1 - lam.shape[-1])))

    def chunks(v):
        return chunk_views(v.to(ctype), nc, chunk_size)

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


def bucket_states_bwd(states, totals, levels, d_buckets):
    """The bucket states (`bucket_states`) and their backward on those small tensors only:
    states (B, NC, H, N, P), totals (B, H, NC), d_buckets like the output (B, NC, J, H, N, P) or None
    -> (buckets, d_states, d_totals). Autograd over the segment tree: O(NC) states, no tokens."""
    with torch.enable_grad():
        s = states.detach().requires_grad_()
        tot = totals.detach().requires_grad_()
        out = bucket_states(s, tot, levels)
        if d_buckets is None:
            return out.detach(), None, None
        d_s, d_tot = torch.autograd.grad(out, (s, tot), d_buckets)
    return out.detach(), d_s, d_tot


def log_linear_chunked_bwd(x, dt, A, Bm, Cm, D, lam, d_y, chunk_size: int = 64):
    """The log-linear backward written out by hand, chunk by chunk: the formulas the Triton backward in
    `log_linear.py` implements, in PyTorch so they are checked against autograd on their own. Only the
    small bucket-state segment tree (`bucket_states_bwd`) goes through autograd. Returns
    (dx, ddt, dA, dBm, dCm, dD, dlam), computed in the inputs' dtype.

    Per head and chunk c (in-chunk cumsum a of dt A, total L, Lam[t, s] = lam_t^level(t, s) causal,
    W = (C B^T) * exp(segsum a) * Lam, Gm = dy x^T, w_j[t] = lam_t^(k+1+j), H_j the level-j bucket
    state entering c, S_c the chunk's own end state):
    - dH_j = sum_t w_j[t] exp(a_t) C_t dy_t^T, turned by the segment tree's backward into dS_c and
      d(L_c) (the decays between half-blocks);
    - dlam_t^l = sum_{s: level(t, s) = l} Gm (C B^T) exp(segsum a) dt_s (l <= k),
      dlam_t^(k+1+j) = exp(a_t) C_t . (H_j dy_t);
    - dC_t = sum_s Q_ts B_s + exp(a_t) sum_j w_j[t] H_j dy_t with Q = Gm * exp(segsum a) * Lam * dt_s;
    - the rest is SSD's chunk-local backward (`ssd_chunked_bwd`) with W reweighted by Lam, the
      state-to-output term of d(a_t) reweighted by w_j, and dS_c in place of SSD's passed state.
    """
    b, t, h, p = x.shape
    g = Bm.shape[2]
    cl = chunk_size
    k = cl.bit_length() - 1
    nc = -(-t // cl)
    nl = lam.shape[-1]
    levels = (nc - 1).bit_length()
    lam = F.pad(lam, (0, max(0, k + levels + 1 - nl)))
    xc, dtc, dyc, lamc = (chunk_views(v, nc, cl) for v in (x, dt, d_y, lam))
    bc, cc = chunk_views(expand_groups(Bm, h), nc, cl), chunk_views(expand_groups(Cm, h), nc, cl)
    a_cs = torch.cumsum(dtc * A, dim=2)  # (B, NC, C, H)
    last = a_cs[:, :, -1]  # (B, NC, H); padding has dt = 0
    to_end = torch.exp(last[:, :, None] - a_cs)
    ea = torch.exp(a_cs)
    s_loc = torch.einsum("bclhn,bclh,bclhp->bchnp", bc, to_end * dtc, xc)

    lev = level_matrix(cl, device=x.device)
    onehot = F.one_hot(lev.clamp(min=0), k + 1).to(x.dtype) * (lev >= 0)[..., None].to(x.dtype)
    lam_in = torch.einsum("bcthl,tsl->bctsh", lamc[..., : k + 1], onehot)  # Lam (B, NC, Ct, Cs, H)
    causal = lev >= 0
    seg = (a_cs[:, :, :, None] - a_cs[:, :, None, :]).masked_fill(~causal[:, :, None], float("-inf"))
    e = torch.exp(seg)
    cb = torch.einsum("bcthn,bcshn->bctsh", cc, bc)
    w = cb * e * lam_in
    gm = torch.einsum("bcthp,bcshp->bctsh", dyc, xc)

    if levels:
        hl, _, _ = bucket_states_bwd(s_loc, last.transpose(1, 2), levels, None)  # (B, NC, J, H, N, P)
        wl = lamc[..., k + 1 : k + 1 + levels]  # (B, NC, C, H, J)
        dyh = torch.einsum("bcthp,bcjhnp->bcthjn", dyc, hl)  # H_j dy_t
        u = torch.einsum("bcthn,bcthjn->bcthj", cc, dyh)
        dlam_off = ea[..., None] * u
        dc_off = ea[..., None] * torch.einsum("bcthj,bcthjn->bcthn", wl, dyh)
        dcs_off = (wl * dlam_off).sum(-1)
        d_hl = torch.einsum("bcthn,bcthj,bcthp->bcjhnp", cc * ea[..., None], wl, dyc)
        _, d_st, d_tot = bucket_states_bwd(s_loc, last.transpose(1, 2), levels, d_hl)
        d_tot = d_tot.transpose(1, 2)  # (B, NC, H)
    else:
        dlam_off = lamc.new_zeros(b, nc, cl, h, 0)
        dc_off = dcs_off = 0.0
        d_st, d_tot = torch.zeros_like(s_loc), torch.zeros_like(last)

    x_ds = torch.einsum("bcshp,bchnp->bcshn", xc, d_st)  # dS x_s
    b_ds = torch.einsum("bcshn,bchnp->bcshp", bc, d_st)  # B_s^T dS
    dx = dtc[..., None] * (torch.einsum("bctsh,bcthp->bcshp", w, dyc) + to_end[..., None] * b_ds)
    dx = dx + D[:, None] * dyc
    q = gm * e * lam_in * dtc[:, :, None]
    db = torch.einsum("bctsh,bcthn->bcshn", q, cc) + (to_end * dtc)[..., None] * x_ds
    dc = torch.einsum("bctsh,bcshn->bcthn", q, bc) + dc_off
    r = to_end * (bc * x_ds).sum(-1)
    ddt = (gm * w).sum(2) + r
    wq = gm * w * dtc[:, :, None]
    d_cs = dcs_off + wq.sum(3) - wq.sum(2) - r * dtc
    d_last = (r * dtc).sum(2) + d_tot
    d_a = torch.flip(torch.cumsum(torch.flip(d_cs, [2]), 2), [2]) + d_last[:, :, None]
    ddt = ddt + A * d_a
    da = (dtc * d_a).sum((0, 1, 2))
    dd = (dyc * xc).sum((0, 1, 2, 4))
    dlam_in = torch.einsum("bctsh,tsl->bcthl", gm * cb * e * dtc[:, :, None], onehot)
    dlam = torch.cat([dlam_in, dlam_off], dim=-1)
    dlam = F.pad(dlam, (0, max(0, nl - dlam.shape[-1])))[..., :nl]

    def unchunk(v):
        return v.reshape(b, nc * cl, *v.shape[3:])[:, :t]

    def per_group(v):
        return unchunk(v).reshape(b, t, g, h // g, -1).sum(3)

    return unchunk(dx), unchunk(ddt), da, per_group(db), per_group(dc), dd, unchunk(dlam)
