"""Log-linear Mamba-2 in Triton: a three-kernel forward and a five-kernel backward. The layout of
`redpajama.kernels.ssd.ssd`.

Forward, one program per (chunk, batch * head) unless stated:
1. `ssd_chunk_state_fwd_kernel` (SSD's, reused): each chunk's own state S_c and its dt A total;
2. `buckets.bucket_states_fwd_kernel`, one program per (batch * head, block of the (N, P) state), a
   sequential pass over the chunks: for every chunk c and chunk-level j = 1..J the state of c's
   level-j Fenwick bucket, decayed to c's start, held per level in registers and merged as a binary
   counter carries; written only where the bucket is non-empty (bit j-1 of c set, about half);
3. `log_linear_chunk_scan_fwd_kernel`: the intra-chunk block
   ((C B^T) * exp(segsum a) * lam_t^level(t, s) * dt) x, with level = bit_length(i xor j) computed in
   the kernel, plus sum_j lam_t^(k+j) exp(a_t) C_t . state_j over the non-empty buckets + D x.
The forward saves its inputs, the chunk states S_c and the chunk totals (not the bucket states).

Backward (the formulas, in PyTorch and checked against autograd, are
`redpajama.kernels.log_linear.chunked.log_linear_chunked_bwd`):
1. the bucket states again (forward kernel 2);
2. `log_linear_chunk_levels_bwd_kernel`: everything that goes through a chunk's non-empty incoming
   bucket states H_j, with all of N at once: their gradients dH_j = (C * exp(a) * lam^(k+j))^T dy,
   (N, P) each, and the bucket terms of dC, of the chunk-level lam gradients and of d(a);
3. `buckets.bucket_states_bwd_kernel`, the sequential pass in reverse: from the dH_j, the gradient
   dS_c of each chunk's own end state and of its total;
4. `log_linear_chunk_scan_bwd_dbc_kernel`: dB, dC per head (summed over each group's heads
   afterwards) and the state-side terms of d(dt), d(a);
5. `log_linear_chunk_scan_bwd_kernel`: dx, d(dt), the intra-chunk levels' lam gradients, dA and dD
   as per-chunk partial sums (summed afterwards).
Kernels 4 and 5 walk N in blocks in a fixed order (no atomics: deterministic), as SSD's do.
T need not be a multiple of the chunk: loads past T are masked to zero, stores past T masked off.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from redpajama.kernels.log_linear.buckets import bucket_states, bucket_states_bwd
from redpajama.kernels.log_linear.masks import num_levels
from redpajama.kernels.ssd.ssd import (
    BWD_SCAN_BLOCK_N,
    BWD_SCAN_WARPS,
    DTYPES,
    NUM_WARPS,
    check_ssd_args,
    chunk_cb_and_b_dstate,
    chunk_of_head,
    scan_meta,
    ssd_chunk_state_fwd_kernel,
)

# N-block of the dB/dC kernel's loop over the state (its dots' M side). Without the per-level work
# (in the levels kernel) it has registers to spare: offline, 200 at 16 rows, 234 at 64, no spill. On
# an H200 at LL-A the whole op's forward+backward took 9.555 / 9.033 / 8.745 ms at 16 / 32 / 64.
DBC_BLOCK_N = 64
# Warps of the levels kernel: it holds the chunk's C, the (BT, N) bucket term of dC and one (N, P)
# bucket state and its gradient at a time, all float32 (N = 128 at LL-A).
LEVELS_BWD_WARPS = 8


@triton.jit
def log_linear_chunk_scan_fwd_kernel(
    x,
    dt,
    A,
    Bm,
    Cm,
    D,
    lam,
    h_lv,
    y,
    T,
    L,
    J,
    H: tl.constexpr,
    G: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
    LOG2_BT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    i_c, i_b64, i_h, i_g, NC, o_t, m_t, b_dt, b_A = chunk_of_head(dt, A, T, H, G, BT)
    o_i = tl.arange(0, BT)
    o_n = tl.arange(0, BLOCK_N)
    o_p = tl.arange(0, BLOCK_P)
    m_n = o_n < N
    m_p = o_p < P

    b_cs = tl.cumsum(b_dt * b_A, axis=0)

    o_bc = i_b64 * T * G * N + o_t[:, None] * G * N + i_g * N + o_n[None, :]
    m_tn = m_t[:, None] & m_n[None, :]
    b_B = tl.load(Bm + o_bc, mask=m_tn, other=0.0).to(tl.float32)
    b_C = tl.load(Cm + o_bc, mask=m_tn, other=0.0).to(tl.float32)
    o_x = i_b64 * T * H * P + o_t[:, None] * H * P + i_h * P + o_p[None, :]
    m_tp = m_t[:, None] & m_p[None, :]
    b_x = tl.load(x + o_x, mask=m_tp, other=0.0).to(tl.float32)
    p_lam = lam + i_b64 * T * H * L + o_t * H * L + i_h * L  # (BT,) row starts

    # Intra-chunk levels: within one chunk t xor s = i xor j, so the level is bit_length(i xor j).
    xor = o_i[:, None] ^ o_i[None, :]
    level = tl.zeros([BT, BT], dtype=tl.int32)
    for k in tl.static_range(LOG2_BT):
        level += ((xor >> k) != 0).to(tl.int32)
    m_causal = (o_i[:, None] >= o_i[None, :]) & m_t[:, None]
    # Only real causal pairs are loaded: their levels are below num_levels(T) <= L even when T < BT.
    b_w = tl.load(p_lam[:, None] + level, mask=m_causal, other=0.0).to(tl.float32)
    # (BT, BLOCK_N) @ (BLOCK_N, BT) -> (BT, BT)
    b_cb = tl.dot(b_C, tl.trans(b_B), input_precision=DOT_PREC)
    b_seg = tl.where(m_causal, b_cs[:, None] - b_cs[None, :], float("-inf"))
    b_scores = b_cb * tl.exp(b_seg) * b_w * b_dt[None, :]
    # (BT, BT) @ (BT, BLOCK_P) -> (BT, BLOCK_P)
    b_y = tl.dot(b_scores, b_x, input_precision=DOT_PREC)

    # Inter-chunk: one incoming state per chunk-level j, weighted by lam_t^(log2 BT + j).
    b_decay = tl.exp(b_cs)
    m_np = m_n[:, None] & m_p[None, :]
    for j in range(0, J):
        # Only non-empty buckets (bit j of the chunk index set) were written.
        if (i_c >> j) & 1:
            # Chunk NC-1 holds real tokens, so log2 BT + J < num_levels(T) <= L; the clamp only keeps
            # the read inside the row should that ever not hold.
            i_lv = tl.minimum(LOG2_BT + 1 + j, L - 1)
            b_l = tl.load(p_lam + i_lv, mask=m_t, other=0.0).to(tl.float32)
            i_s = (((i_b64 * NC + i_c) * J + j) * H + i_h) * N * P
            b_h = tl.load(h_lv + i_s + o_n[:, None] * P + o_p[None, :], mask=m_np, other=0.0)
            # (BT, BLOCK_N) @ (BLOCK_N, BLOCK_P) -> (BT, BLOCK_P)
            b_y += tl.dot(b_C, b_h, input_precision=DOT_PREC) * (b_l * b_decay)[:, None]
    b_y += tl.load(D + i_h).to(tl.float32) * b_x
    tl.store(y + o_x, b_y.to(y.dtype.element_ty), mask=m_tp)


@triton.jit
def log_linear_chunk_levels_bwd_kernel(
    dt,
    A,
    Cm,
    lam,
    dy,
    h_lv,
    d_hlv,
    dC_h,
    dlam,
    dcs_state,
    T,
    L,
    J,
    H: tl.constexpr,
    G: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
    LOG2_BT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_L: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    # Everything of one chunk of one head that goes through its incoming bucket states H_j (non-empty
    # ones only), with w_j = lam^(log2 BT + 1 + j):
    #   dH_j = (C * exp(a) * w_j)^T dy                                   -> d_hlv, (N, P) each
    #   dC_t = exp(a_t) sum_j w_j[t] H_j dy_t                            -> dC_h (the dbc kernel adds)
    #   dlam_t^(log2 BT + 1 + j) = exp(a_t) C_t . (H_j dy_t)             -> dlam (other columns 0)
    #   d(a_t) = sum_j w_j[t] dlam_t^(log2 BT + 1 + j)                   -> dcs_state (dbc adds)
    # Whole N at once: the products have the chunk's tokens and all of N on their M and N sides.
    i_c, i_b64, i_h, i_g, NC, o_t, m_t, b_dt, b_A = chunk_of_head(dt, A, T, H, G, BT)
    o_n = tl.arange(0, BLOCK_N)
    o_p = tl.arange(0, BLOCK_P)
    o_l = tl.arange(0, BLOCK_L)
    m_n = o_n < N
    m_p = o_p < P
    m_tl = m_t[:, None] & (o_l < L)[None, :]

    b_cs = tl.cumsum(b_dt * b_A, axis=0)
    b_exp_cs = tl.exp(b_cs)
    p_C = Cm + i_b64 * T * G * N + o_t[:, None] * G * N + i_g * N + o_n[None, :]
    b_C = tl.load(p_C, mask=m_t[:, None] & m_n[None, :], other=0.0).to(tl.float32)
    p_dy = dy + i_b64 * T * H * P + o_t[:, None] * H * P + i_h * P + o_p[None, :]
    b_dy = tl.load(p_dy, mask=m_t[:, None] & m_p[None, :], other=0.0).to(tl.float32)
    p_lam = lam + i_b64 * T * H * L + o_t * H * L + i_h * L
    b_lam = tl.load(p_lam[:, None] + o_l[None, :], mask=m_tl, other=0.0).to(tl.float32)
    m_np = m_n[:, None] & m_p[None, :]
    b_dCo = tl.zeros([BT, BLOCK_N], dtype=tl.float32)
    b_u = tl.zeros([BT, BLOCK_L], dtype=tl.float32)
    for j in range(0, J):
        if (i_c >> j) & 1:  # empty buckets hold nothing, and their gradients are never read
            i_lv = tl.minimum(LOG2_BT + 1 + j, L - 1)  # as in the forward
            b_w = tl.sum(tl.where(o_l[None, :] == i_lv, b_lam, 0.0), axis=1)
            i_s = (((i_b64 * NC + i_c) * J + j) * H + i_h) * N * P
            o_s = i_s + o_n[:, None] * P + o_p[None, :]
            # (BLOCK_N, BT) @ (BT, BLOCK_P) -> (BLOCK_N, BLOCK_P)
            b_dh = tl.dot(tl.trans(b_C * (b_exp_cs * b_w)[:, None]), b_dy, input_precision=DOT_PREC)
            tl.store(d_hlv + o_s, b_dh, mask=m_np)
            b_hj = tl.load(h_lv + o_s, mask=m_np, other=0.0)
            # (BT, BLOCK_P) @ (BLOCK_P, BLOCK_N) -> (BT, BLOCK_N): H_j dy_t for every t
            b_dyh = tl.dot(b_dy, tl.trans(b_hj), input_precision=DOT_PREC)
            b_dCo += b_w[:, None] * b_dyh
            b_u += tl.where(o_l[None, :] == i_lv, tl.sum(b_C * b_dyh, axis=1)[:, None], 0.0)
    o_dc = i_b64 * T * H * N + o_t[:, None] * H * N + i_h * N + o_n[None, :]
    tl.store(dC_h + o_dc, b_exp_cs[:, None] * b_dCo, mask=m_t[:, None] & m_n[None, :])
    b_dlo = b_exp_cs[:, None] * b_u  # zero in the intra-chunk levels' columns
    o_dl = i_b64 * T * H * L + o_t[:, None] * H * L + i_h * L + o_l[None, :]
    tl.store(dlam + o_dl, b_dlo, mask=m_tl)
    tl.store(dcs_state + (i_b64 * H + i_h) * T + o_t, tl.sum(b_lam * b_dlo, axis=1), mask=m_t)


@triton.jit
def log_linear_chunk_scan_bwd_dbc_kernel(
    x,
    dt,
    A,
    Bm,
    Cm,
    lam,
    a_last,
    d_st,
    d_tot,
    dy,
    dB_h,
    dC_h,
    r_state,
    dcs_state,
    dlast_state,
    T,
    L,
    H: tl.constexpr,
    G: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
    LOG2_BT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    NB: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    # dB, dC of one chunk of one head (per head; the caller sums each group's heads) and the
    # state-side terms of d(dt) and d(a), on top of what `log_linear_chunk_levels_bwd_kernel` wrote
    # into dC_h and dcs_state. With Q = Gm * exp(segsum a) * Lam * dt_s (Gm = dy x^T,
    # Lam_ts = lam_t^level(t, s)) and dS the gradient of the chunk's own end state:
    #   dB_s = sum_t Q_ts C_t + exp(L - a_s) dt_s dS x_s
    #   dC_t = sum_s Q_ts B_s + (the bucket states' term, already in dC_h)
    # r_s = exp(L - a_s) B_s . (dS x_s), d(a_t) -= r_t dt_t, d(L) = sum_s r_s dt_s + d_tot (from the
    # bucket states' reverse pass). N is walked in blocks of NB in a fixed order, worked transposed as
    # in SSD's.
    i_c, i_b64, i_h, i_g, NC, o_t, m_t, b_dt, b_A = chunk_of_head(dt, A, T, H, G, BT)
    o_i = tl.arange(0, BT)
    o_nb = tl.arange(0, NB)
    o_p = tl.arange(0, BLOCK_P)
    m_p = o_p < P

    b_cs = tl.cumsum(b_dt * b_A, axis=0)
    i_part = (i_b64 * H + i_h) * NC + i_c
    b_last = tl.load(a_last + i_part)  # the chunk total, from the forward's chunk-state kernel
    b_to_end = tl.exp(b_last - b_cs)

    o_x = i_b64 * T * H * P + o_t[:, None] * H * P + i_h * P + o_p[None, :]
    m_tp = m_t[:, None] & m_p[None, :]
    b_x = tl.load(x + o_x, mask=m_tp, other=0.0).to(tl.float32)
    b_dy = tl.load(dy + o_x, mask=m_tp, other=0.0).to(tl.float32)
    p_lam = lam + i_b64 * T * H * L + o_t * H * L + i_h * L
    # level(t, s) = bit_length(i xor j) within one chunk.
    xor = o_i[:, None] ^ o_i[None, :]
    level = tl.zeros([BT, BT], dtype=tl.int32)
    for k in tl.static_range(LOG2_BT):
        level += ((xor >> k) != 0).to(tl.int32)
    m_causal = (o_i[:, None] >= o_i[None, :]) & m_t[:, None]
    b_lw = tl.load(p_lam[:, None] + level, mask=m_causal, other=0.0).to(tl.float32)
    b_e = tl.exp(tl.where(m_causal, b_cs[:, None] - b_cs[None, :], float("-inf")))
    # (BT, BLOCK_P) @ (BLOCK_P, BT) -> (BT, BT)
    b_q = tl.dot(b_dy, tl.trans(b_x), input_precision=DOT_PREC) * b_e * b_lw * b_dt[None, :]

    b_rb = tl.zeros([BT], dtype=tl.float32)
    i_bch = ((i_b64 * NC + i_c) * H + i_h) * N * P
    for i_n in tl.range(0, N, NB, num_stages=1):
        o_n = i_n + o_nb
        m_n = o_n < N
        m_nt = m_n[:, None] & m_t[None, :]
        m_np = m_n[:, None] & m_p[None, :]
        o_bc = i_b64 * T * G * N + o_t[None, :] * G * N + i_g * N + o_n[:, None]
        b_Bt = tl.load(Bm + o_bc, mask=m_nt, other=0.0).to(tl.float32)
        b_Ct = tl.load(Cm + o_bc, mask=m_nt, other=0.0).to(tl.float32)
        b_ds = tl.load(d_st + i_bch + o_n[:, None] * P + o_p[None, :], mask=m_np, other=0.0)
        # (NB, BLOCK_P) @ (BLOCK_P, BT) -> (NB, BT): (x dS^T)^T
        b_xds = tl.dot(b_ds, tl.trans(b_x), input_precision=DOT_PREC)
        b_rb += tl.sum(b_Bt * b_xds, axis=0)
        # (NB, BT) @ (BT, BT) -> (NB, BT): dB^T and dC^T
        b_dB = tl.dot(b_Ct, b_q, input_precision=DOT_PREC) + (b_to_end * b_dt)[None, :] * b_xds
        o_bch = i_b64 * T * H * N + o_t[None, :] * H * N + i_h * N + o_n[:, None]
        b_dC = tl.dot(b_Bt, tl.trans(b_q), input_precision=DOT_PREC) + tl.load(
            dC_h + o_bch, mask=m_nt, other=0.0
        )
        tl.store(dB_h + o_bch, b_dB, mask=m_nt)
        tl.store(dC_h + o_bch, b_dC, mask=m_nt)

    b_r = b_to_end * b_rb
    o_bht = (i_b64 * H + i_h) * T + o_t
    tl.store(r_state + o_bht, b_r, mask=m_t)
    b_dcs = tl.load(dcs_state + o_bht, mask=m_t, other=0.0) - b_r * b_dt
    tl.store(dcs_state + o_bht, b_dcs, mask=m_t)
    tl.store(dlast_state + i_part, tl.sum(b_r * b_dt, axis=0) + tl.load(d_tot + i_part))


@triton.jit
def log_linear_chunk_scan_bwd_kernel(
    x,
    dt,
    A,
    Bm,
    Cm,
    D,
    lam,
    a_last,
    d_st,
    dy,
    r_state,
    dcs_state,
    dlast_state,
    dx,
    ddt,
    dlam,
    dA_part,
    dD_part,
    T,
    L,
    H: tl.constexpr,
    G: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
    LOG2_BT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_L: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    # dx and d(dt) of one chunk of one head, the intra-chunk levels' dlam (added to what
    # `log_linear_chunk_scan_bwd_dbc_kernel` wrote), dA and dD as per-chunk partial sums. With
    # W = (C B^T) * exp(segsum a) * Lam (causal), Gm = dy x^T, dS the chunk end state's gradient:
    #   dx_s = dt_s (W^T dy)_s + exp(L - a_s) dt_s dS^T B_s + D dy_s
    #   dlam_t^l = sum_{s: level(t, s) = l} Gm_ts (C B^T)_ts exp(a_t - a_s) dt_s,  l <= log2 BT
    # and a gets d(a_t) from both ends of every W entry. C B^T and dS^T B are sums over N, accumulated
    # in blocks of NB in a fixed order.
    NB: tl.constexpr = BLOCK_N if BLOCK_N < BWD_SCAN_BLOCK_N else BWD_SCAN_BLOCK_N
    i_c, i_b64, i_h, i_g, NC, o_t, m_t, b_dt, b_A = chunk_of_head(dt, A, T, H, G, BT)
    o_i = tl.arange(0, BT)
    o_p = tl.arange(0, BLOCK_P)
    o_l = tl.arange(0, BLOCK_L)
    m_p = o_p < P

    o_dt = i_b64 * T * H + o_t * H + i_h
    b_cs = tl.cumsum(b_dt * b_A, axis=0)
    i_part = (i_b64 * H + i_h) * NC + i_c
    b_last = tl.load(a_last + i_part)  # the chunk total, from the forward's chunk-state kernel

    b_cb, b_bds = chunk_cb_and_b_dstate(
        Bm, Cm, d_st, i_b64, i_c, i_h, i_g, o_t, m_t, o_p, m_p, T, NC, H, G, P, N, BT, BLOCK_P, NB, DOT_PREC
    )

    o_x = i_b64 * T * H * P + o_t[:, None] * H * P + i_h * P + o_p[None, :]
    m_tp = m_t[:, None] & m_p[None, :]
    b_x = tl.load(x + o_x, mask=m_tp, other=0.0).to(tl.float32)
    b_dy = tl.load(dy + o_x, mask=m_tp, other=0.0).to(tl.float32)
    p_lam = lam + i_b64 * T * H * L + o_t * H * L + i_h * L
    # level(t, s) = bit_length(i xor j) within one chunk.
    xor = o_i[:, None] ^ o_i[None, :]
    level = tl.zeros([BT, BT], dtype=tl.int32)
    for k in tl.static_range(LOG2_BT):
        level += ((xor >> k) != 0).to(tl.int32)
    # Rows t (output), columns s (source); -inf above the diagonal gives exact zeros.
    m_causal = (o_i[:, None] >= o_i[None, :]) & m_t[:, None]
    b_lw = tl.load(p_lam[:, None] + level, mask=m_causal, other=0.0).to(tl.float32)
    b_ce = b_cb * tl.exp(tl.where(m_causal, b_cs[:, None] - b_cs[None, :], float("-inf")))
    b_w = b_ce * b_lw
    # (BT, BT) @ (BT, BLOCK_P) -> (BT, BLOCK_P)
    b_dx = tl.dot(tl.trans(b_w), b_dy, input_precision=DOT_PREC) + tl.exp(b_last - b_cs)[:, None] * b_bds
    b_dx = b_dt[:, None] * b_dx + tl.load(D + i_h).to(tl.float32) * b_dy
    tl.store(dx + o_x, b_dx.to(dx.dtype.element_ty), mask=m_tp)

    # (BT, BLOCK_P) @ (BLOCK_P, BT) -> (BT, BT)
    b_gm = tl.dot(b_dy, tl.trans(b_x), input_precision=DOT_PREC)
    # Intra-chunk levels: dLam_ts = Gm (C B^T) exp(segsum a) dt_s, summed per level of each row.
    b_dlw = b_gm * b_ce * b_dt[None, :]
    o_dl = i_b64 * T * H * L + o_t[:, None] * H * L + i_h * L + o_l[None, :]
    m_tl = m_t[:, None] & (o_l < L)[None, :]
    b_dlam = tl.load(dlam + o_dl, mask=m_tl, other=0.0)
    for lv in tl.static_range(LOG2_BT + 1):
        b_row = tl.sum(tl.where(level == lv, b_dlw, 0.0), axis=1)
        b_dlam += tl.where(o_l[None, :] == lv, b_row[:, None], 0.0)
    tl.store(dlam + o_dl, b_dlam, mask=m_tl)

    o_bht = (i_b64 * H + i_h) * T + o_t
    # dt as the input scale (W dt_s x_s here, the state update's r_s from the first kernel).
    b_ddt = tl.sum(b_gm * b_w, axis=0) + tl.load(r_state + o_bht, mask=m_t, other=0.0)
    # Gradient of the cumulative decays, then d(a_t) = sum_{i >= t} d(a_cs_i) + d(L).
    b_wq = b_gm * b_w * b_dt[None, :]
    b_dcs = tl.sum(b_wq, axis=1) - tl.sum(b_wq, axis=0) + tl.load(dcs_state + o_bht, mask=m_t, other=0.0)
    b_da = tl.cumsum(b_dcs, axis=0, reverse=True) + tl.load(dlast_state + i_part)
    b_ddt += b_A * b_da
    tl.store(ddt + o_dt, b_ddt.to(ddt.dtype.element_ty), mask=m_t)
    tl.store(dA_part + i_part, tl.sum(b_dt * b_da, axis=0))
    tl.store(dD_part + i_part, tl.sum(b_dy * b_x))


def log_linear_fwd(x, dt, A, Bm, Cm, D, lam, chunk_size: int):
    """Contiguous, checked inputs -> (y (B, T, H, P) in x's dtype, and for the backward each chunk's
    own end state (B, NC, H, N, P) and dt A total (B, H, NC), float32)."""
    b, t, h, p = x.shape
    n = Bm.shape[3]
    nc = triton.cdiv(t, chunk_size)
    dev = x.device
    states = torch.empty(b, nc, h, n, p, dtype=torch.float32, device=dev)
    a_last = torch.empty(b, h, nc, dtype=torch.float32, device=dev)
    y = torch.empty_like(x)
    meta = scan_meta(x, Bm, chunk_size)
    ssd_chunk_state_fwd_kernel[(nc, b * h)](x, dt, A, Bm, states, a_last, t, **meta, num_warps=NUM_WARPS)
    levels = (nc - 1).bit_length()
    if levels:
        h_lv = bucket_states(states, a_last, levels)  # (B, NC, J, H, N, P), non-empty buckets only
    else:
        h_lv = states  # never read: no chunk-level with a single chunk
    log_linear_chunk_scan_fwd_kernel[(nc, b * h)](
        x,
        dt,
        A,
        Bm,
        Cm,
        D,
        lam,
        h_lv,
        y,
        t,
        lam.shape[-1],
        levels,
        LOG2_BT=chunk_size.bit_length() - 1,
        **meta,
        num_warps=NUM_WARPS,
    )
    return y, states, a_last


def log_linear_bwd(x, dt, A, Bm, Cm, D, lam, states, a_last, d_y, chunk_size: int):
    """The forward's contiguous inputs, its chunk states and totals, and d_y (like x) ->
    (dx, ddt, dA, dBm, dCm, dD, dlam), each in its input's dtype. See the module doc."""
    b, t, h, p = x.shape
    g, n = Bm.shape[2], Bm.shape[3]
    nl = lam.shape[-1]
    nc = triton.cdiv(t, chunk_size)
    dev = x.device
    d_y = d_y.contiguous()
    meta = scan_meta(x, Bm, chunk_size)
    log2_bt = chunk_size.bit_length() - 1
    levels = (nc - 1).bit_length()
    db_h = torch.empty(b, t, h, n, dtype=torch.float32, device=dev)
    dc_h = torch.empty(b, t, h, n, dtype=torch.float32, device=dev)
    dlam = torch.empty(b, t, h, nl, dtype=torch.float32, device=dev)
    r_state = torch.empty(b, h, t, dtype=torch.float32, device=dev)
    dcs_state = torch.empty(b, h, t, dtype=torch.float32, device=dev)
    dlast_state = torch.empty(b, h, nc, dtype=torch.float32, device=dev)
    block_l = triton.next_power_of_2(nl)
    # 1. the bucket states again; 2. everything that goes through them: each chunk's gradient to its
    # buckets, and the bucket terms of dC, dlam and d(a); 3. the reverse pass over the buckets turns
    # the first into the gradient of each chunk's own end state and total.
    h_lv = bucket_states(states, a_last, levels) if levels else states  # never read when J = 0
    d_hlv = torch.empty_like(h_lv) if levels else states
    log_linear_chunk_levels_bwd_kernel[(nc, b * h)](
        dt,
        A,
        Cm,
        lam,
        d_y,
        h_lv,
        d_hlv,
        dc_h,
        dlam,
        dcs_state,
        t,
        nl,
        levels,
        LOG2_BT=log2_bt,
        BLOCK_L=block_l,
        **meta,
        num_warps=LEVELS_BWD_WARPS,
    )
    if levels:
        d_st, d_tot = bucket_states_bwd(a_last, h_lv, d_hlv)
    else:
        d_st = torch.zeros_like(states)
        d_tot = torch.zeros_like(a_last)
    del h_lv, d_hlv
    # 4. dB, dC and the state-side terms of d(dt), d(a); 5. dx, d(dt), the intra-chunk dlam, dA and
    # dD partials.
    log_linear_chunk_scan_bwd_dbc_kernel[(nc, b * h)](
        x,
        dt,
        A,
        Bm,
        Cm,
        lam,
        a_last,
        d_st,
        d_tot,
        d_y,
        db_h,
        dc_h,
        r_state,
        dcs_state,
        dlast_state,
        t,
        nl,
        LOG2_BT=log2_bt,
        NB=min(meta["BLOCK_N"], DBC_BLOCK_N),
        **meta,
        num_warps=BWD_SCAN_WARPS,
    )
    dx, ddt = torch.empty_like(x), torch.empty_like(dt)
    da_part = torch.empty(b, h, nc, dtype=torch.float32, device=dev)
    dd_part = torch.empty(b, h, nc, dtype=torch.float32, device=dev)
    log_linear_chunk_scan_bwd_kernel[(nc, b * h)](
        x,
        dt,
        A,
        Bm,
        Cm,
        D,
        lam,
        a_last,
        d_st,
        d_y,
        r_state,
        dcs_state,
        dlast_state,
        dx,
        ddt,
        dlam,
        da_part,
        dd_part,
        t,
        nl,
        LOG2_BT=log2_bt,
        BLOCK_L=block_l,
        **meta,
        num_warps=BWD_SCAN_WARPS,
    )
    # Heads of a group share B and C: their per-head gradients add up.
    db = db_h.view(b, t, g, h // g, n).sum(3).to(Bm.dtype)
    dc = dc_h.view(b, t, g, h // g, n).sum(3).to(Cm.dtype)
    da = da_part.sum((0, 2)).to(A.dtype)
    dd = dd_part.sum((0, 2)).to(D.dtype)
    return dx, ddt, da, db, dc, dd, dlam.to(lam.dtype)


class LogLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dt, A, Bm, Cm, D, lam, chunk_size):
        y, states, a_last = log_linear_fwd(x, dt, A, Bm, Cm, D, lam, chunk_size)
        ctx.save_for_backward(x, dt, A, Bm, Cm, D, lam, states, a_last)
        ctx.chunk_size = chunk_size
        return y

    @staticmethod
    def backward(ctx, d_y):
        return (*log_linear_bwd(*ctx.saved_tensors, d_y, ctx.chunk_size), None)


def check_lam(x, lam) -> None:
    """Raise a ValueError/TypeError when lam does not fit x (after check_ssd_args passed)."""
    if not isinstance(lam, torch.Tensor):
        raise TypeError(f"lam must be a torch.Tensor, got {type(lam).__name__}")
    if lam.dtype not in DTYPES:
        raise TypeError(f"lam must be float16, bfloat16 or float32, got {lam.dtype}")
    if lam.device != x.device:
        raise ValueError(f"lam is on {lam.device}, x on {x.device}")
    b, t, h, _ = x.shape
    if lam.dim() != 4 or lam.shape[:3] != (b, t, h):
        raise ValueError(f"lam must be (B, T, H, L) with (B, T, H) = {(b, t, h)}, got {tuple(lam.shape)}")
    if lam.shape[-1] < num_levels(t):
        raise ValueError(f"lam has L={lam.shape[-1]} levels, T={t} needs at least {num_levels(t)}")


def log_linear(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    D: torch.Tensor,
    lam: torch.Tensor,
    chunk_size: int = 64,
) -> torch.Tensor:
    """Log-linear Mamba-2: y_t = sum_{s <= t} lam_t^(level(t, s)) (C_t . B_s) exp(segsum(dt A)[t, s])
    dt_s x_s + D x_t, the function of `log_linear_quadratic`.

    Arguments as `redpajama.kernels.ssd.ssd` plus lam (B, T, H, L) >= 0, L >= num_levels(T) (extra
    levels are ignored); float16/bfloat16/float32, one device; made contiguous here; math in float32.
    chunk_size: a power of two >= 16. Returns y (B, T, H, P) in x's dtype, differentiable in all seven
    tensors (Triton backward; see the module doc); gradients come in each input's dtype.
    """
    check_ssd_args(x, dt, A, Bm, Cm, D, chunk_size)
    check_lam(x, lam)
    args = [v.contiguous() for v in (x, dt, A, Bm, Cm, D, lam)]
    return LogLinearFunction.apply(*args, chunk_size)
