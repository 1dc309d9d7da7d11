"""Mamba-2 SSD in Triton: a three-kernel forward and a four-kernel backward.

Forward kernels, one program per (chunk, batch * head) unless stated:
1. `ssd_chunk_state_fwd_kernel`: the in-chunk cumsum a of dt A (tl.cumsum), the chunk total, and the
   chunk's state S_c = (B * exp(a_end - a) dt)^T x, (N, P) in float32.
2. `ssd_state_passing_fwd_kernel`: one program per (batch * head, block of the N * P state), a
   sequential loop over chunks: h_c = exp(total_{c-1}) h_{c-1} + S_{c-1}; writes the state entering
   every chunk and the final state.
3. `ssd_chunk_scan_fwd_kernel`: intra-chunk output and state-to-output fused: recomputes a,
   y = ((C B^T) * exp(segsum a) * dt) x + exp(a) * (C h_c) + D x.
The forward saves its inputs, the entering states h_c and the chunk totals for the backward.

Backward kernels (the formulas, written out in PyTorch and checked against autograd, are
`redpajama.kernels.ssd.chunked.ssd_chunked_bwd`):
1. `ssd_chunk_dstate_bwd_kernel`: each chunk's outputs' gradient to its entering state,
   (C * exp(a))^T dy, (N, P).
2. `ssd_state_passing_bwd_kernel`: the reverse scan over chunks, in place: the gradient of the
   state after chunk c is d_s[NC-1] = d_final, d_s[c] = own[c+1] + exp(total_{c+1}) d_s[c+1].
3. `ssd_chunk_scan_bwd_dbc_kernel`: from x, dt, B, C, dy, h_c and d_s[c], the chunk's dB, dC per
   head (summed over each group's heads afterwards) and the state-side terms of d(dt) and d(a)
   (float32, per position and per chunk, through global memory).
4. `ssd_chunk_scan_bwd_kernel`: from x, dt, B, C, dy, d_s[c] and those terms, dx and ddt whole, dA
   and dD as per-chunk partial sums (summed afterwards).
Kernels 3 and 4 walk the state dimension N in blocks (in a fixed order: no atomics, deterministic),
so the (N, P) state tiles and the (T, N) B, C tiles are never whole in registers.
T need not be a multiple of the chunk: loads past T are masked to zero (dt = 0 neither decays nor
feeds the state) and stores past T are masked off.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

DTYPES = (torch.float16, torch.bfloat16, torch.float32)
NUM_WARPS = 4
# Warps of the two chunk-scan backward kernels. Held whole, the chunk's B, C, x, dy tiles and the
# two (N, P) float32 states spilled (one kernel: 255 registers, 2.7 KB of spill stores per thread
# at 4 warps, 1.6 KB at 8); split in two, each walking N in blocks, offline ptxas for sm_90 with
# the Triton installed here (chunk 64, N 128, P 64, bf16) gives, at 8 warps, 220 registers (dbc)
# and 209 (scan), no spills; at 4 warps 241 (no spill) and 255 with 64 bytes of spill. These are
# compiler figures, not GPU timings: nothing here has been timed on a GPU.
BWD_SCAN_WARPS = 8
# N-blocks of the backward kernels' loops over the state. The dbc kernel's blocks are the M side of
# its dots: offline, 220 registers at 16 rows, 255 at 32 (no spill), a spill at 64; on an H200 at
# LL-A the SSD's forward+backward took 6.145 / 5.377 / 5.463 ms at 16 / 32 / 64 (one call, two
# rounds). The scan kernel's blocks are its dots' K side.
BWD_DBC_BLOCK_N = 32  # the launcher's choice, handed to the kernel as NB
BWD_SCAN_BLOCK_N = tl.constexpr(64)
# Elements of the flattened (N, P) state per state-passing program.
BLOCK_STATE = 1024


@triton.jit
def chunk_of_head(dt, A, T, H: tl.constexpr, G: tl.constexpr, BT: tl.constexpr):
    """The chunk this program works on (grid (NC, B*H): chunk i_c of batch and head i_bh) and its
    step sizes, for every chunked kernel of the SSD and log-linear scans.

    Returns i_c; the batch index as int64; the head; its B/C group; NC; the chunk's token positions
    o_t (BT,) int64 and their mask (< T); dt (BT,) in float32, 0 past T so that chunk sums need no
    mask; the head's A in float32.
    """
    i_c, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    i_b64 = i_b.to(tl.int64)
    o_t = (i_c * BT + tl.arange(0, BT)).to(tl.int64)
    m_t = o_t < T
    b_dt = tl.load(dt + i_b64 * T * H + o_t * H + i_h, mask=m_t, other=0.0).to(tl.float32)
    b_A = tl.load(A + i_h).to(tl.float32)
    return i_c, i_b64, i_h, i_h // (H // G), tl.cdiv(T, BT), o_t, m_t, b_dt, b_A


@triton.jit
def state_block(H: tl.constexpr, NP: tl.constexpr, BLOCK: tl.constexpr):
    """The block of the flattened (N, P) state this program walks over the chunks (grid (B*H, blocks):
    block program_id(1) of batch and head program_id(0)), for every sequential state pass.

    Returns the batch index as int64, the head, the block's element offsets (BLOCK,) and their mask.
    """
    i_bh, i_k = tl.program_id(0), tl.program_id(1)
    o_k = i_k * BLOCK + tl.arange(0, BLOCK)
    return (i_bh // H).to(tl.int64), i_bh % H, o_k, o_k < NP


@triton.jit
def ssd_chunk_state_fwd_kernel(
    x,
    dt,
    A,
    Bm,
    states,
    a_last,
    T,
    H: tl.constexpr,
    G: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    i_c, i_b64, i_h, i_g, NC, o_t, m_t, b_dt, b_A = chunk_of_head(dt, A, T, H, G, BT)
    o_n = tl.arange(0, BLOCK_N)
    o_p = tl.arange(0, BLOCK_P)
    m_n = o_n < N
    m_p = o_p < P

    b_a = b_dt * b_A
    b_cs = tl.cumsum(b_a, axis=0)
    b_last = tl.sum(b_a, axis=0)

    p_B = Bm + i_b64 * T * G * N + o_t[:, None] * G * N + i_g * N + o_n[None, :]
    b_B = tl.load(p_B, mask=m_t[:, None] & m_n[None, :], other=0.0).to(tl.float32)
    p_x = x + i_b64 * T * H * P + o_t[:, None] * H * P + i_h * P + o_p[None, :]
    b_x = tl.load(p_x, mask=m_t[:, None] & m_p[None, :], other=0.0).to(tl.float32)

    b_Bw = b_B * (tl.exp(b_last - b_cs) * b_dt)[:, None]
    # (BLOCK_N, BT) @ (BT, BLOCK_P) -> (BLOCK_N, BLOCK_P)
    b_s = tl.dot(tl.trans(b_Bw), b_x, input_precision=DOT_PREC)

    i_bch = ((i_b64 * NC + i_c) * H + i_h) * N * P
    p_s = states + i_bch + o_n[:, None] * P + o_p[None, :]
    tl.store(p_s, b_s, mask=m_n[:, None] & m_p[None, :])
    tl.store(a_last + (i_b64 * H + i_h) * NC + i_c, b_last)


@triton.jit
def ssd_state_passing_fwd_kernel(
    states,
    a_last,
    h_in,
    final,
    NC,
    H: tl.constexpr,
    NP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    i_b64, i_h, o_k, m_k = state_block(H, NP, BLOCK)
    b_h = tl.zeros([BLOCK], dtype=tl.float32)
    for i_c in range(0, NC):
        i_bch = ((i_b64 * NC + i_c) * H + i_h) * NP
        tl.store(h_in + i_bch + o_k, b_h, mask=m_k)
        b_s = tl.load(states + i_bch + o_k, mask=m_k, other=0.0)
        b_decay = tl.exp(tl.load(a_last + (i_b64 * H + i_h) * NC + i_c))
        b_h = b_decay * b_h + b_s
    tl.store(final + (i_b64 * H + i_h) * NP + o_k, b_h, mask=m_k)


@triton.jit
def ssd_chunk_scan_fwd_kernel(
    x,
    dt,
    A,
    Bm,
    Cm,
    D,
    h_in,
    y,
    T,
    H: tl.constexpr,
    G: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
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

    # Intra-chunk: causal decay exp(a_t - a_s) for s <= t; -inf above the diagonal gives exact zeros.
    # (BT, BLOCK_N) @ (BLOCK_N, BT) -> (BT, BT)
    b_cb = tl.dot(b_C, tl.trans(b_B), input_precision=DOT_PREC)
    m_causal = o_i[:, None] >= o_i[None, :]
    b_seg = tl.where(m_causal, b_cs[:, None] - b_cs[None, :], float("-inf"))
    b_scores = b_cb * tl.exp(b_seg) * b_dt[None, :]
    # (BT, BT) @ (BT, BLOCK_P) -> (BT, BLOCK_P)
    b_y = tl.dot(b_scores, b_x, input_precision=DOT_PREC)

    # From the state entering this chunk.
    i_bch = ((i_b64 * NC + i_c) * H + i_h) * N * P
    p_h = h_in + i_bch + o_n[:, None] * P + o_p[None, :]
    b_h = tl.load(p_h, mask=m_n[:, None] & m_p[None, :], other=0.0)
    # (BT, BLOCK_N) @ (BLOCK_N, BLOCK_P) -> (BT, BLOCK_P)
    b_y += tl.dot(b_C, b_h, input_precision=DOT_PREC) * tl.exp(b_cs)[:, None]
    b_y += tl.load(D + i_h).to(tl.float32) * b_x
    tl.store(y + o_x, b_y.to(y.dtype.element_ty), mask=m_tp)


@triton.jit
def ssd_chunk_dstate_bwd_kernel(
    dt,
    A,
    Cm,
    dy,
    dh,
    T,
    H: tl.constexpr,
    G: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    # The gradient the chunk's outputs send to the state entering it: (C * exp(a))^T dy, (N, P).
    i_c, i_b64, i_h, i_g, NC, o_t, m_t, b_dt, b_A = chunk_of_head(dt, A, T, H, G, BT)
    o_n = tl.arange(0, BLOCK_N)
    o_p = tl.arange(0, BLOCK_P)
    m_n = o_n < N
    m_p = o_p < P

    b_cs = tl.cumsum(b_dt * b_A, axis=0)
    p_C = Cm + i_b64 * T * G * N + o_t[:, None] * G * N + i_g * N + o_n[None, :]
    b_C = tl.load(p_C, mask=m_t[:, None] & m_n[None, :], other=0.0).to(tl.float32)
    p_dy = dy + i_b64 * T * H * P + o_t[:, None] * H * P + i_h * P + o_p[None, :]
    b_dy = tl.load(p_dy, mask=m_t[:, None] & m_p[None, :], other=0.0).to(tl.float32)
    # (BLOCK_N, BT) @ (BT, BLOCK_P) -> (BLOCK_N, BLOCK_P)
    b_dh = tl.dot(tl.trans(b_C * tl.exp(b_cs)[:, None]), b_dy, input_precision=DOT_PREC)
    i_bch = ((i_b64 * NC + i_c) * H + i_h) * N * P
    tl.store(dh + i_bch + o_n[:, None] * P + o_p[None, :], b_dh, mask=m_n[:, None] & m_p[None, :])


@triton.jit
def ssd_state_passing_bwd_kernel(
    dh,
    a_last,
    d_final,
    NC,
    H: tl.constexpr,
    NP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # Reverse of the forward state passing, in place: reads each chunk's own (C exp(a))^T dy from dh
    # and overwrites it with d_s[c], the gradient of the state after chunk c (= entering c + 1):
    # d_s[NC-1] = d_final, d_s[c-1] = dh_own[c] + exp(total_c) d_s[c].
    i_b64, i_h, o_k, m_k = state_block(H, NP, BLOCK)
    b_ds = tl.load(d_final + (i_b64 * H + i_h) * NP + o_k, mask=m_k, other=0.0)
    for i_r in range(0, NC):
        i_c = NC - 1 - i_r
        i_bch = ((i_b64 * NC + i_c) * H + i_h) * NP
        b_own = tl.load(dh + i_bch + o_k, mask=m_k, other=0.0)
        tl.store(dh + i_bch + o_k, b_ds, mask=m_k)
        b_decay = tl.exp(tl.load(a_last + (i_b64 * H + i_h) * NC + i_c))
        b_ds = b_own + b_decay * b_ds


@triton.jit
def ssd_chunk_scan_bwd_dbc_kernel(
    x,
    dt,
    A,
    Bm,
    Cm,
    h_in,
    d_s,
    dy,
    dB_h,
    dC_h,
    r_state,
    dcs_state,
    dlast_state,
    T,
    H: tl.constexpr,
    G: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    NB: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    # dB, dC of one chunk of one head (per head; the caller sums each group's heads), and the
    # state-side terms of d(dt) and d(a) for `ssd_chunk_scan_bwd_kernel`. With Gm = dy x^T:
    #   dB_s = sum_t Gm_ts exp(a_t - a_s) dt_s C_t + exp(L - a_s) dt_s dS x_s
    #   dC_t = exp(a_t) H dy_t + sum_s Gm_ts exp(a_t - a_s) dt_s B_s
    # r_s = exp(L - a_s) B_s . (dS x_s) is dt_s's share of the state update; d(a_t) gets
    # exp(a_t) C_t . (H dy_t) from the state-to-output term and -r_t dt_t from exp(L - a_t); d(L)
    # gets sum_s r_s dt_s and exp(L) <H, dS>. Written per position (r_state, dcs_state, (B, H, T))
    # and per chunk (dlast_state, (B, H, NC)), float32.
    # N is walked in blocks of NB in a fixed order: the (N, P) states and (BT, N) tiles are never
    # whole in registers. The blocks are worked transposed, (NB, BT), so that the chunk's (BT, BT)
    # and (BT, P) tiles are the dots' second operands.
    i_c, i_b64, i_h, i_g, NC, o_t, m_t, b_dt, b_A = chunk_of_head(dt, A, T, H, G, BT)
    o_i = tl.arange(0, BT)
    o_nb = tl.arange(0, NB)
    o_p = tl.arange(0, BLOCK_P)
    m_p = o_p < P

    b_cs = tl.cumsum(b_dt * b_A, axis=0)
    # Padding past T has dt = 0, so the chunk total is the sum over the valid positions.
    b_last = tl.sum(b_dt * b_A, axis=0)
    b_to_end = tl.exp(b_last - b_cs)
    b_exp_cs = tl.exp(b_cs)

    o_x = i_b64 * T * H * P + o_t[:, None] * H * P + i_h * P + o_p[None, :]
    m_tp = m_t[:, None] & m_p[None, :]
    b_x = tl.load(x + o_x, mask=m_tp, other=0.0).to(tl.float32)
    b_dy = tl.load(dy + o_x, mask=m_tp, other=0.0).to(tl.float32)
    # Rows t (output), columns s (source); -inf above the diagonal gives exact zeros.
    m_causal = o_i[:, None] >= o_i[None, :]
    b_e = tl.exp(tl.where(m_causal, b_cs[:, None] - b_cs[None, :], float("-inf")))
    # (BT, BLOCK_P) @ (BLOCK_P, BT) -> (BT, BT)
    b_q = tl.dot(b_dy, tl.trans(b_x), input_precision=DOT_PREC) * b_e * b_dt[None, :]

    b_rb = tl.zeros([BT], dtype=tl.float32)
    b_rc = tl.zeros([BT], dtype=tl.float32)
    b_hds = tl.zeros([BLOCK_P], dtype=tl.float32)
    i_bch = ((i_b64 * NC + i_c) * H + i_h) * N * P
    for i_n in tl.range(0, N, NB, num_stages=1):
        o_n = i_n + o_nb
        m_n = o_n < N
        m_nt = m_n[:, None] & m_t[None, :]
        o_bc = i_b64 * T * G * N + o_t[None, :] * G * N + i_g * N + o_n[:, None]
        b_Bt = tl.load(Bm + o_bc, mask=m_nt, other=0.0).to(tl.float32)
        b_Ct = tl.load(Cm + o_bc, mask=m_nt, other=0.0).to(tl.float32)
        o_np = i_bch + o_n[:, None] * P + o_p[None, :]
        m_np = m_n[:, None] & m_p[None, :]
        b_h = tl.load(h_in + o_np, mask=m_np, other=0.0)
        b_ds = tl.load(d_s + o_np, mask=m_np, other=0.0)
        # (NB, BLOCK_P) @ (BLOCK_P, BT) -> (NB, BT): (x dS^T)^T and (dy H^T)^T
        b_xds = tl.dot(b_ds, tl.trans(b_x), input_precision=DOT_PREC)
        b_dyh = tl.dot(b_h, tl.trans(b_dy), input_precision=DOT_PREC)
        b_rb += tl.sum(b_Bt * b_xds, axis=0)
        b_rc += tl.sum(b_Ct * b_dyh, axis=0)
        b_hds += tl.sum(b_h * b_ds, axis=0)
        # (NB, BT) @ (BT, BT) -> (NB, BT): dB^T and dC^T
        b_dB = tl.dot(b_Ct, b_q, input_precision=DOT_PREC) + (b_to_end * b_dt)[None, :] * b_xds
        b_dC = tl.dot(b_Bt, tl.trans(b_q), input_precision=DOT_PREC) + b_exp_cs[None, :] * b_dyh
        o_bch = i_b64 * T * H * N + o_t[None, :] * H * N + i_h * N + o_n[:, None]
        tl.store(dB_h + o_bch, b_dB, mask=m_nt)
        tl.store(dC_h + o_bch, b_dC, mask=m_nt)

    b_r = b_to_end * b_rb
    o_bht = (i_b64 * H + i_h) * T + o_t
    tl.store(r_state + o_bht, b_r, mask=m_t)
    tl.store(dcs_state + o_bht, b_exp_cs * b_rc - b_r * b_dt, mask=m_t)
    b_dlast = tl.sum(b_r * b_dt, axis=0) + tl.exp(b_last) * tl.sum(b_hds, axis=0)
    tl.store(dlast_state + (i_b64 * H + i_h) * NC + i_c, b_dlast)


@triton.jit
def chunk_cb_and_b_dstate(
    Bm,
    Cm,
    d_s,
    i_b64,
    i_c,
    i_h,
    i_g,
    o_t,
    m_t,
    o_p,
    m_p,
    T,
    NC,
    H: tl.constexpr,
    G: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
    BLOCK_P: tl.constexpr,
    NB: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    """(C B^T (BT, BT), B dS (BT, BLOCK_P)) of chunk i_c of head i_h: sums over the state dimension N
    taken in blocks of NB, in a fixed order, so that no (N, P) tile is whole in registers. d_s holds
    the gradient of the state leaving each chunk, (B, NC, H, N, P) float32. Shared by the SSD and the
    log-linear chunk-scan backward kernels."""
    o_nb = tl.arange(0, NB)
    b_cb = tl.zeros([BT, BT], dtype=tl.float32)
    b_bds = tl.zeros([BT, BLOCK_P], dtype=tl.float32)
    i_bch = ((i_b64 * NC + i_c) * H + i_h) * N * P
    for i_n in tl.range(0, N, NB, num_stages=1):
        o_n = i_n + o_nb
        m_n = o_n < N
        o_bc = i_b64 * T * G * N + o_t[:, None] * G * N + i_g * N + o_n[None, :]
        m_tn = m_t[:, None] & m_n[None, :]
        b_B = tl.load(Bm + o_bc, mask=m_tn, other=0.0).to(tl.float32)
        b_C = tl.load(Cm + o_bc, mask=m_tn, other=0.0).to(tl.float32)
        b_ds = tl.load(
            d_s + i_bch + o_n[:, None] * P + o_p[None, :], mask=m_n[:, None] & m_p[None, :], other=0.0
        )
        # (BT, NB) @ (NB, BT) -> (BT, BT); (BT, NB) @ (NB, BLOCK_P) -> (BT, BLOCK_P)
        b_cb += tl.dot(b_C, tl.trans(b_B), input_precision=DOT_PREC)
        b_bds += tl.dot(b_B, b_ds, input_precision=DOT_PREC)
    return b_cb, b_bds


@triton.jit
def ssd_chunk_scan_bwd_kernel(
    x,
    dt,
    A,
    Bm,
    Cm,
    D,
    d_s,
    dy,
    r_state,
    dcs_state,
    dlast_state,
    dx,
    ddt,
    dA_part,
    dD_part,
    T,
    H: tl.constexpr,
    G: tl.constexpr,
    P: tl.constexpr,
    N: tl.constexpr,
    BT: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    # dx and d(dt) of one chunk of one head, dA and dD as per-chunk partial sums, after
    # `ssd_chunk_scan_bwd_dbc_kernel` (its state-side d(dt), d(a) terms). With W = (C B^T) *
    # exp(segsum a) (causal), Gm = dy x^T:
    #   dx_s = dt_s (W^T dy)_s + exp(L - a_s) dt_s dS^T B_s + D dy_s
    # and a (in-chunk cumsum of dt A, L its total) gets d(a_t) from both ends of every W entry.
    # C B^T and dS^T B are sums over N, accumulated in blocks of NB in a fixed order.
    NB: tl.constexpr = BLOCK_N if BLOCK_N < BWD_SCAN_BLOCK_N else BWD_SCAN_BLOCK_N
    i_c, i_b64, i_h, i_g, NC, o_t, m_t, b_dt, b_A = chunk_of_head(dt, A, T, H, G, BT)
    o_i = tl.arange(0, BT)
    o_p = tl.arange(0, BLOCK_P)
    m_p = o_p < P

    o_dt = i_b64 * T * H + o_t * H + i_h
    b_cs = tl.cumsum(b_dt * b_A, axis=0)
    b_last = tl.sum(b_dt * b_A, axis=0)

    b_cb, b_bds = chunk_cb_and_b_dstate(
        Bm, Cm, d_s, i_b64, i_c, i_h, i_g, o_t, m_t, o_p, m_p, T, NC, H, G, P, N, BT, BLOCK_P, NB, DOT_PREC
    )

    o_x = i_b64 * T * H * P + o_t[:, None] * H * P + i_h * P + o_p[None, :]
    m_tp = m_t[:, None] & m_p[None, :]
    b_x = tl.load(x + o_x, mask=m_tp, other=0.0).to(tl.float32)
    b_dy = tl.load(dy + o_x, mask=m_tp, other=0.0).to(tl.float32)
    # Rows t (output), columns s (source); -inf above the diagonal gives exact zeros.
    m_causal = o_i[:, None] >= o_i[None, :]
    b_w = b_cb * tl.exp(tl.where(m_causal, b_cs[:, None] - b_cs[None, :], float("-inf")))
    # (BT, BT) @ (BT, BLOCK_P) -> (BT, BLOCK_P)
    b_dx = tl.dot(tl.trans(b_w), b_dy, input_precision=DOT_PREC) + tl.exp(b_last - b_cs)[:, None] * b_bds
    b_dx = b_dt[:, None] * b_dx + tl.load(D + i_h).to(tl.float32) * b_dy
    tl.store(dx + o_x, b_dx.to(dx.dtype.element_ty), mask=m_tp)

    # (BT, BLOCK_P) @ (BLOCK_P, BT) -> (BT, BT)
    b_gm = tl.dot(b_dy, tl.trans(b_x), input_precision=DOT_PREC)
    o_bht = (i_b64 * H + i_h) * T + o_t
    # dt as the input scale (W dt_s x_s here, the state update's r_s from the first kernel).
    b_ddt = tl.sum(b_gm * b_w, axis=0) + tl.load(r_state + o_bht, mask=m_t, other=0.0)
    # Gradient of the cumulative decays, then d(a_t) = sum_{i >= t} d(a_cs_i) + d(L).
    b_wq = b_gm * b_w * b_dt[None, :]
    b_dcs = tl.sum(b_wq, axis=1) - tl.sum(b_wq, axis=0) + tl.load(dcs_state + o_bht, mask=m_t, other=0.0)
    i_part = (i_b64 * H + i_h) * NC + i_c
    b_da = tl.cumsum(b_dcs, axis=0, reverse=True) + tl.load(dlast_state + i_part)
    b_ddt += b_A * b_da
    tl.store(ddt + o_dt, b_ddt.to(ddt.dtype.element_ty), mask=m_t)
    tl.store(dA_part + i_part, tl.sum(b_dt * b_da, axis=0))
    tl.store(dD_part + i_part, tl.sum(tl.sum(b_dy * b_x, axis=1), axis=0))


def _block(d: int) -> int:
    # tl.dot needs every dimension >= 16.
    return max(16, triton.next_power_of_2(d))


def scan_meta(x, Bm, chunk_size: int) -> dict:
    h, p = x.shape[2], x.shape[3]
    g, n = Bm.shape[2], Bm.shape[3]
    # float32 inputs get IEEE float32 products (TF32 would cost ~1e-3 relative); 16-bit inputs are
    # upcast on load and the dots run in TF32, finer than their own rounding.
    prec = "ieee" if x.dtype == torch.float32 else "tf32"
    return dict(H=h, G=g, P=p, N=n, BT=chunk_size, BLOCK_N=_block(n), BLOCK_P=_block(p), DOT_PREC=prec)


def _state_block(n: int, p: int) -> int:
    return min(BLOCK_STATE, triton.next_power_of_2(n * p))


def ssd_fwd(x, dt, A, Bm, Cm, D, chunk_size: int):
    """Contiguous, checked inputs -> (y (B, T, H, P) in x's dtype, final state (B, H, N, P) float32,
    and for the backward the states entering every chunk (B, NC, H, N, P) and the chunk totals of
    dt A (B, H, NC), float32)."""
    b, t, h, p = x.shape
    n = Bm.shape[3]
    nc = triton.cdiv(t, chunk_size)
    dev = x.device
    states = torch.empty(b, nc, h, n, p, dtype=torch.float32, device=dev)
    a_last = torch.empty(b, h, nc, dtype=torch.float32, device=dev)
    h_in = torch.empty(b, nc, h, n, p, dtype=torch.float32, device=dev)
    final = torch.empty(b, h, n, p, dtype=torch.float32, device=dev)
    y = torch.empty_like(x)
    meta = scan_meta(x, Bm, chunk_size)
    ssd_chunk_state_fwd_kernel[(nc, b * h)](x, dt, A, Bm, states, a_last, t, **meta, num_warps=NUM_WARPS)
    block = _state_block(n, p)
    ssd_state_passing_fwd_kernel[(b * h, triton.cdiv(n * p, block))](
        states, a_last, h_in, final, nc, H=h, NP=n * p, BLOCK=block, num_warps=NUM_WARPS
    )
    ssd_chunk_scan_fwd_kernel[(nc, b * h)](x, dt, A, Bm, Cm, D, h_in, y, t, **meta, num_warps=NUM_WARPS)
    return y, final, h_in, a_last


def ssd_bwd(x, dt, A, Bm, Cm, D, h_in, a_last, d_y, d_final, chunk_size: int):
    """The forward's contiguous inputs, its h_in and a_last, and the output gradients (d_y like
    x, d_final (B, H, N, P)) -> (dx, ddt, dA, dBm, dCm, dD), each in its input's dtype."""
    b, t, h, p = x.shape
    g, n = Bm.shape[2], Bm.shape[3]
    nc = triton.cdiv(t, chunk_size)
    dev = x.device
    d_y, d_final = d_y.contiguous(), d_final.float().contiguous()
    meta = scan_meta(x, Bm, chunk_size)
    # 1. each chunk's own gradient to its entering state; 2. reverse state passing turns it, in
    # place, into d_s, the gradient of the state leaving each chunk.
    d_s = torch.empty(b, nc, h, n, p, dtype=torch.float32, device=dev)
    ssd_chunk_dstate_bwd_kernel[(nc, b * h)](dt, A, Cm, d_y, d_s, t, **meta, num_warps=NUM_WARPS)
    block = _state_block(n, p)
    ssd_state_passing_bwd_kernel[(b * h, triton.cdiv(n * p, block))](
        d_s, a_last, d_final, nc, H=h, NP=n * p, BLOCK=block, num_warps=NUM_WARPS
    )
    # 3. dB, dC and the state-side terms of d(dt), d(a); 4. dx, d(dt), dA and dD partials.
    db_h = torch.empty(b, t, h, n, dtype=torch.float32, device=dev)
    dc_h = torch.empty(b, t, h, n, dtype=torch.float32, device=dev)
    r_state = torch.empty(b, h, t, dtype=torch.float32, device=dev)
    dcs_state = torch.empty(b, h, t, dtype=torch.float32, device=dev)
    dlast_state = torch.empty(b, h, nc, dtype=torch.float32, device=dev)
    ssd_chunk_scan_bwd_dbc_kernel[(nc, b * h)](
        x,
        dt,
        A,
        Bm,
        Cm,
        h_in,
        d_s,
        d_y,
        db_h,
        dc_h,
        r_state,
        dcs_state,
        dlast_state,
        t,
        NB=min(meta["BLOCK_N"], BWD_DBC_BLOCK_N),
        **meta,
        num_warps=BWD_SCAN_WARPS,
    )
    dx, ddt = torch.empty_like(x), torch.empty_like(dt)
    da_part = torch.empty(b, h, nc, dtype=torch.float32, device=dev)
    dd_part = torch.empty(b, h, nc, dtype=torch.float32, device=dev)
    ssd_chunk_scan_bwd_kernel[(nc, b * h)](
        x,
        dt,
        A,
        Bm,
        Cm,
        D,
        d_s,
        d_y,
        r_state,
        dcs_state,
        dlast_state,
        dx,
        ddt,
        da_part,
        dd_part,
        t,
        **meta,
        num_warps=BWD_SCAN_WARPS,
    )
    # Heads of a group share B and C: their per-head gradients add up.
    db = db_h.view(b, t, g, h // g, n).sum(3).to(Bm.dtype)
    dc = dc_h.view(b, t, g, h // g, n).sum(3).to(Cm.dtype)
    da = da_part.sum((0, 2)).to(A.dtype)
    dd = dd_part.sum((0, 2)).to(D.dtype)
    return dx, ddt, da, db, dc, dd


class SSDFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dt, A, Bm, Cm, D, chunk_size):
        y, final, h_in, a_last = ssd_fwd(x, dt, A, Bm, Cm, D, chunk_size)
        ctx.save_for_backward(x, dt, A, Bm, Cm, D, h_in, a_last)
        ctx.chunk_size = chunk_size
        return y, final

    @staticmethod
    def backward(ctx, d_y, d_final):
        # Autograd materializes an unused output's gradient as zeros, so both are tensors here.
        return (*ssd_bwd(*ctx.saved_tensors, d_y, d_final, ctx.chunk_size), None)


def check_ssd_args(x, dt, A, Bm, Cm, D, chunk_size) -> None:
    """Raise a ValueError/TypeError naming the offending numbers when the arguments are not usable."""
    for name, v in (("x", x), ("dt", dt), ("A", A), ("Bm", Bm), ("Cm", Cm), ("D", D)):
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(v).__name__}")
        if v.dtype not in DTYPES:
            raise TypeError(f"{name} must be float16, bfloat16 or float32, got {v.dtype}")
        if v.device != x.device:
            raise ValueError(f"{name} is on {v.device}, x on {x.device}")
    if x.dim() != 4:
        raise ValueError(f"x must be (B, T, H, P), got {tuple(x.shape)}")
    b, t, h, p = x.shape
    if dt.shape != (b, t, h):
        raise ValueError(f"dt must be (B, T, H) = {(b, t, h)}, got {tuple(dt.shape)}")
    if A.shape != (h,) or D.shape != (h,):
        raise ValueError(f"A and D must be (H,) = ({h},), got {tuple(A.shape)} and {tuple(D.shape)}")
    if Bm.dim() != 4 or Bm.shape[:2] != (b, t) or Cm.shape != Bm.shape:
        raise ValueError(
            f"Bm and Cm must both be (B, T, G, N) with (B, T) = {(b, t)}, got {tuple(Bm.shape)} "
            f"and {tuple(Cm.shape)}"
        )
    g, n = Bm.shape[2], Bm.shape[3]
    if g == 0 or h % g != 0:
        raise ValueError(f"H={h} must be a multiple of G={g}")
    if min(b, t, h, p, n) == 0:
        raise ValueError(f"empty input: B={b}, T={t}, H={h}, P={p}, N={n}")
    if chunk_size < 16 or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size must be a power of two >= 16, got {chunk_size}")


def ssd(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    Bm: torch.Tensor,
    Cm: torch.Tensor,
    D: torch.Tensor,
    chunk_size: int = 64,
    return_final_state: bool = False,
):
    """Mamba-2 SSD: y_t = C_t^T h_t + D x_t, h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t^T, h_{-1} = 0.

    x: (B, T, H, P) head inputs; dt: (B, T, H) step sizes, already softplus'ed (> 0);
    A: (H,) negative decay rates; Bm, Cm: (B, T, G, N), H % G == 0, head h uses group h // (H // G);
    D: (H,) skip. float16/bfloat16/float32, one device; made contiguous here. Math in float32.
    chunk_size: a power of two >= 16 (64 default); T need not be a multiple of it.
    Returns y (B, T, H, P) in x's dtype, and with return_final_state the state after the last token,
    (B, H, N, P) float32. Differentiable in all six tensors and the final state (Triton backward; see
    the module doc); gradients come in each input's dtype.
    """
    check_ssd_args(x, dt, A, Bm, Cm, D, chunk_size)
    args = [v.contiguous() for v in (x, dt, A, Bm, Cm, D)]
    y, final = SSDFunction.apply(*args, chunk_size)
    return (y, final) if return_final_state else y
