"""The Fenwick bucket states of log-linear Gated DeltaNet in Triton, and the queries' reads of them:
three kernels.
1. `gdn_buckets_fwd_kernel`: one program per (batch * head, block of BV value columns) walks the
   chunks in order, reads each chunk's non-empty bucket states, carries them to the next chunk.
2. `gdn_buckets_bwd_states_kernel`: the same walk in reverse with the adjoints of the states.
3. `gdn_buckets_bwd_grads_kernel`: one program per (chunk, batch * head, block of BK key columns),
   in parallel, forms the gradients of the chunk terms from the states and their adjoints.

Chunk c (WY terms of `chunked.chunk_terms`: Qe, W, K~ (C, K), U0 (C, V), decay e) reads the level-j
bucket states H_j(c) (K, V) of its non-empty buckets (bit j-1 of c set), j = 1..J:
    out_c = sum_j diag(lam_c,j) Qe H_j(c),           lam_c,j = lam_t^(log2 C + j) per row t,
and every state passes c's transition, M H = e H - K~^T (W H): the (K, K) matrix M is never formed.
Going on to m = c + 1, with k the trailing zeros of m, the buckets carry like a binary counter (as
log-linear Mamba-2's, `redpajama.kernels.log_linear.buckets`, with matrices for the scalar decays):
    H_(k+1)(m) = K~^T U0 + sum_{j <= k} M H_j(c),    H_j(m) = M H_j(c) for j > k + 1,
    H_j(m) = 0 for j <= k (never read: their bits of m are clear).
The reverse pass carries the adjoint G_j(m) of H_j(m) back, N_j = M H_j(c) having the adjoint
dN_j = G_(k+1)(m) for j <= k and G_j(m) above:
    G_j(c) = e dN_j - W^T (K~ dN_j) + Qe^T diag(lam_c,j) dout_c         (the transposed transition)
    dQe += diag(lam_c,j) dout_c H_j^T,   dW -= (K~ dN_j) H_j^T,   dK~ -= (W H_j) dN_j^T,
    de  += <dN_j, H_j>,   dlam_c,j = rowsum(dout_c * (Qe H_j)),
    dK~ += U0 G_(k+1)(m)^T,   dU0 = K~ G_(k+1)(m)     (c's own end state).
Kernel 3 holds whole value rows: dQe, dW, dK~ come whole per key block, and de and dlam as one
partial sum per key block, added up afterwards (no atomics: deterministic). States live in a
global buffer (B*H, slots, J, K, V) float32, and each chunk step of kernels 1 and 2 ends in a
barrier, so the next step's loads see every thread's stores. The forward keeps two slots (c and
c + 1) unless the backward asks it to keep every chunk's states; the backward recomputes them that
way rather than holding them from the forward (2.8 GB at B 4, T 8192, H 24, K 128, V 64).
Dots take float32 operands: IEEE products for float32 inputs, TF32 for 16-bit ones (finer than
their own rounding), as the SSD kernels do.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# Value columns per program and warps. Both passes take one chunk a step with up to J levels each,
# so programs in flight (B * H * V / BV) and a step's cost decide. On an H200 at B 4, T 8192, H 24,
# K 128, V 64: forward 3.47 ms at (32, 4) against 3.65-5.58 at 16-64 columns and 4-8 warps; reverse
# pass 4.07 ms at (64, 4) against 4.16-5.49 (docs/benchmarks.md).
FWD_LAUNCH = (32, 4)
BWD_LAUNCH = (64, 4)
# (key columns, warps) of the parallel gradient kernel, which holds whole (K, V) states: the whole
# backward took 16.7-17.4 ms at 64 key columns, 22.9-37.9 at 16-32; 128 needs 272 KB of smem.
GRADS_LAUNCH = (64, 8)


@triton.jit
def _chunk_base(i_bh, i_c, NC):
    return i_bh.to(tl.int64) * NC + i_c


@triton.jit
def _trailing_zeros(m):
    """k for m = 2^k * odd, m >= 1: log2 of m's lowest set bit, rounded (the GPU's log2 is approximate)."""
    return (tl.log2((m & -m).to(tl.float32)) + 0.5).to(tl.int32)


@triton.jit
def _adjoint_level(m, J):
    """Index of m's level k + 1 in the adjoint buffer g. For m = NC (past the last chunk) every level
    of g's chunk NC is zero, but a power-of-two NC has k = J, one past the end: clamp it."""
    return tl.minimum(_trailing_zeros(m), J - 1)


@triton.jit
def gdn_buckets_fwd_kernel(
    qe,
    w,
    kt,
    u0,
    decay,
    lamw,
    out,
    h,
    NC,
    J,
    SLOTS,
    C: tl.constexpr,
    K: tl.constexpr,
    V: tl.constexpr,
    BV: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    i_bh, i_v = tl.program_id(0), tl.program_id(1)
    o_t, o_k = tl.arange(0, C), tl.arange(0, K)
    o_v = i_v * BV + tl.arange(0, BV)
    m_v = o_v < V
    o_ck = o_t[:, None] * K + o_k[None, :]
    o_kv = o_k[:, None] * V + o_v[None, :]
    m_kv = m_v[None, :] & (o_k[:, None] < K)
    h_bh = h + i_bh.to(tl.int64) * SLOTS * J * K * V
    for i_c in range(0, NC):
        base = _chunk_base(i_bh, i_c, NC)
        b_qe = tl.load(qe + base * C * K + o_ck)
        b_w = tl.load(w + base * C * K + o_ck)
        b_kt = tl.load(kt + base * C * K + o_ck)
        b_u = tl.load(u0 + base * C * V + o_t[:, None] * V + o_v[None, :], mask=m_v[None, :], other=0.0)
        b_e = tl.load(decay + base)
        i_m = i_c + 1
        h_c = h_bh + (i_c % SLOTS) * J * K * V
        h_m = h_bh + (i_m % SLOTS) * J * K * V
        # c's own end state starts the bucket that m's lowest set bit opens.
        b_acc = tl.dot(tl.trans(b_kt), b_u, input_precision=DOT_PREC)
        b_out = tl.zeros([C, BV], dtype=tl.float32)
        for j in range(1, J + 1):
            if ((i_c >> (j - 1)) & 1) == 1:
                b_h = tl.load(h_c + (j - 1) * K * V + o_kv, mask=m_kv, other=0.0)
                b_lw = tl.load(lamw + (base * C + o_t) * J + (j - 1))
                b_out += b_lw[:, None] * tl.dot(b_qe, b_h, input_precision=DOT_PREC)
                b_x = tl.dot(b_w, b_h, input_precision=DOT_PREC)
                b_n = b_e * b_h - tl.dot(tl.trans(b_kt), b_x, input_precision=DOT_PREC)
                if (i_m & ((1 << j) - 1)) == 0:  # j <= k: merges into level k + 1
                    b_acc += b_n
                elif i_m < NC:
                    tl.store(h_m + (j - 1) * K * V + o_kv, b_n, mask=m_kv)
        if i_m < NC:
            k_lv = _trailing_zeros(i_m)  # m's level k + 1, at index k
            tl.store(h_m + k_lv * K * V + o_kv, b_acc, mask=m_kv)
        tl.store(out + base * C * V + o_t[:, None] * V + o_v[None, :], b_out, mask=m_v[None, :])
        tl.debug_barrier()


@triton.jit
def gdn_buckets_bwd_states_kernel(
    qe,
    w,
    kt,
    decay,
    lamw,
    d_out,
    g,
    d_u0,
    NC,
    J,
    C: tl.constexpr,
    K: tl.constexpr,
    V: tl.constexpr,
    BV: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    """The reverse pass: every chunk's adjoints G_j(c) of its non-empty buckets, into g (B*H, NC + 1,
    J, K, V) whose chunk NC is zeros, and dU0 = K~ G_(k+1)(m). One program per (B*H, value block)."""
    i_bh, i_v = tl.program_id(0), tl.program_id(1)
    o_t, o_k = tl.arange(0, C), tl.arange(0, K)
    o_v = i_v * BV + tl.arange(0, BV)
    m_v = o_v < V
    o_ck = o_t[:, None] * K + o_k[None, :]
    o_cv = o_t[:, None] * V + o_v[None, :]
    o_kv = o_k[:, None] * V + o_v[None, :]
    m_kv = m_v[None, :] & (o_k[:, None] < K)
    g_bh = g + i_bh.to(tl.int64) * (NC + 1) * J * K * V
    for i_r in range(0, NC):
        i_c = NC - 1 - i_r
        i_m = i_c + 1
        base = _chunk_base(i_bh, i_c, NC)
        b_qe = tl.load(qe + base * C * K + o_ck)
        b_w = tl.load(w + base * C * K + o_ck)
        b_kt = tl.load(kt + base * C * K + o_ck)
        b_do = tl.load(d_out + base * C * V + o_cv, mask=m_v[None, :], other=0.0)
        b_e = tl.load(decay + base)
        g_c = g_bh + i_c * J * K * V
        g_m = g_bh + i_m * J * K * V
        b_gat = tl.load(g_m + _adjoint_level(i_m, J) * K * V + o_kv, mask=m_kv, other=0.0)
        b_du = tl.dot(b_kt, b_gat, input_precision=DOT_PREC)
        tl.store(d_u0 + base * C * V + o_cv, b_du, mask=m_v[None, :])
        for j in range(1, J + 1):
            if ((i_c >> (j - 1)) & 1) == 1:
                if (i_m & ((1 << j) - 1)) == 0:  # j <= k: merged into level k + 1
                    b_dn = b_gat
                else:
                    b_dn = tl.load(g_m + (j - 1) * K * V + o_kv, mask=m_kv, other=0.0)
                b_dol = tl.load(lamw + (base * C + o_t) * J + (j - 1))[:, None] * b_do
                b_y = tl.dot(b_kt, b_dn, input_precision=DOT_PREC)
                b_g = b_e * b_dn - tl.dot(tl.trans(b_w), b_y, input_precision=DOT_PREC)
                b_g += tl.dot(tl.trans(b_qe), b_dol, input_precision=DOT_PREC)
                tl.store(g_c + (j - 1) * K * V + o_kv, b_g, mask=m_kv)
        tl.debug_barrier()


@triton.jit
def gdn_buckets_bwd_grads_kernel(
    qe,
    w,
    kt,
    u0,
    lamw,
    d_out,
    h,
    g,
    d_qe,
    d_w,
    d_kt,
    d_decay_part,
    d_lamw_part,
    NC,
    J,
    BH,
    C: tl.constexpr,
    K: tl.constexpr,
    V: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    DOT_PREC: tl.constexpr,
):
    """Everything else, in parallel over the chunks: one program per (chunk, B*H, block of BK key
    columns) for dQe, dW, dK~ in that block, and the block's share of de and dlam (summed over the
    blocks afterwards). h: the forward's states (B*H, NC, J, K, V); g: the reverse pass's adjoints."""
    i_c, i_bh, i_k = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    i_m = i_c + 1
    o_t, o_k, o_v = tl.arange(0, C), tl.arange(0, K), tl.arange(0, BV)
    o_kb = i_k * BK + tl.arange(0, BK)
    m_v = o_v < V
    base = _chunk_base(i_bh, i_c, NC)
    o_cv = o_t[:, None] * V + o_v[None, :]
    o_cb = base * C * K + o_t[:, None] * K + o_kb[None, :]
    b_w = tl.load(w + base * C * K + o_t[:, None] * K + o_k[None, :])
    b_kt = tl.load(kt + base * C * K + o_t[:, None] * K + o_k[None, :])
    b_qeb = tl.load(qe + o_cb)
    b_u = tl.load(u0 + base * C * V + o_cv, mask=m_v[None, :], other=0.0)
    b_do = tl.load(d_out + base * C * V + o_cv, mask=m_v[None, :], other=0.0)
    h_c = h + (i_bh.to(tl.int64) * NC + i_c) * J * K * V
    g_m = g + (i_bh.to(tl.int64) * (NC + 1) + i_m) * J * K * V
    m_kv = m_v[None, :] & (o_k[:, None] < K)
    m_bv = m_v[None, :] & (o_kb[:, None] < K)
    o_kv, o_bv = o_k[:, None] * V + o_v[None, :], o_kb[:, None] * V + o_v[None, :]
    k_lv = _adjoint_level(i_m, J)
    b_gat_b = tl.load(g_m + k_lv * K * V + o_bv, mask=m_bv, other=0.0)
    b_dkt = tl.dot(b_u, tl.trans(b_gat_b), input_precision=DOT_PREC)  # c's own end state K~^T U0
    b_dqe = tl.zeros([C, BK], dtype=tl.float32)
    b_dw = tl.zeros([C, BK], dtype=tl.float32)
    b_de = tl.full([], 0.0, tl.float32)
    part = i_k.to(tl.int64) * BH * NC + i_bh * NC + i_c
    for j in range(1, J + 1):
        if ((i_c >> (j - 1)) & 1) == 1:
            lv = tl.where((i_m & ((1 << j) - 1)) == 0, k_lv, j - 1)  # dN_j: G_(k+1)(m) for j <= k
            b_h = tl.load(h_c + (j - 1) * K * V + o_kv, mask=m_kv, other=0.0)
            b_hb = tl.load(h_c + (j - 1) * K * V + o_bv, mask=m_bv, other=0.0)
            b_dn = tl.load(g_m + lv * K * V + o_kv, mask=m_kv, other=0.0)
            b_dnb = tl.load(g_m + lv * K * V + o_bv, mask=m_bv, other=0.0)
            b_lw = tl.load(lamw + (base * C + o_t) * J + (j - 1))
            b_dqe += tl.dot(b_lw[:, None] * b_do, tl.trans(b_hb), input_precision=DOT_PREC)
            b_y = tl.dot(b_kt, b_dn, input_precision=DOT_PREC)
            b_x = tl.dot(b_w, b_h, input_precision=DOT_PREC)
            b_dw -= tl.dot(b_y, tl.trans(b_hb), input_precision=DOT_PREC)
            b_dkt -= tl.dot(b_x, tl.trans(b_dnb), input_precision=DOT_PREC)
            b_de += tl.sum(tl.sum(b_dnb * b_hb, axis=1), axis=0)
            b_read = tl.dot(b_qeb, b_hb, input_precision=DOT_PREC)  # this block's share of Qe H_j
            tl.store(d_lamw_part + (part * C + o_t) * J + (j - 1), tl.sum(b_do * b_read, axis=1))
    tl.store(d_qe + o_cb, b_dqe)
    tl.store(d_w + o_cb, b_dw)
    tl.store(d_kt + o_cb, b_dkt)
    tl.store(d_decay_part + part, b_de)


def _launch(qe: torch.Tensor, v: int, launch: tuple[int, int], dot_prec: str):
    bh, nc, c, k = qe.shape
    bv = min(launch[0], max(16, triton.next_power_of_2(v)))
    return (bh, triton.cdiv(v, bv)), dict(C=c, K=k, V=v, BV=bv, DOT_PREC=dot_prec, num_warps=launch[1])


def bucket_reads(qe, w, kt, u0, decay, lamw, keep_states: bool = False, dot_prec: str = "tf32"):
    """The queries' reads of their bucket states, sum_j diag(lam_c,j) Qe H_j(c) (module doc).

    qe, w, kt (B*H, NC, C, K), u0 (B*H, NC, C, V), decay (B*H, NC), lamw (B*H, NC, C, J): float32,
    contiguous; J >= 1 chunk levels, C, K powers of two >= 16. Returns out (B*H, NC, C, V) float32,
    and with keep_states the states H_j(c) (B*H, NC, J, K, V), written where bit j-1 of c is set
    (the rest is left unwritten), else None. dot_prec: the dots' input_precision ("ieee", "tf32").
    """
    bh, nc, c, k = qe.shape
    v, levels = u0.shape[-1], lamw.shape[-1]
    slots = nc if keep_states else min(nc, 2)
    h = torch.empty(bh, slots, levels, k, v, dtype=torch.float32, device=qe.device)
    out = torch.empty(bh, nc, c, v, dtype=torch.float32, device=qe.device)
    grid, meta = _launch(qe, v, FWD_LAUNCH, dot_prec)
    gdn_buckets_fwd_kernel[grid](qe, w, kt, u0, decay, lamw, out, h, nc, levels, slots, **meta)
    return out, (h if keep_states else None)


def bucket_reads_bwd(qe, w, kt, u0, decay, lamw, d_out, dot_prec: str = "tf32"):
    """Gradients of `bucket_reads` (module doc) for d_out (B*H, NC, C, V): (d_qe, d_w, d_kt, d_u0,
    d_decay, d_lamw), float32, shaped as the inputs. Recomputes the states first."""
    bh, nc, c, k = qe.shape
    v, levels = u0.shape[-1], lamw.shape[-1]
    dev = qe.device
    _, h = bucket_reads(qe, w, kt, u0, decay, lamw, keep_states=True, dot_prec=dot_prec)
    g = torch.empty(bh, nc + 1, levels, k, v, dtype=torch.float32, device=dev)
    g[:, nc].zero_()  # the adjoint after the last chunk
    d_u0 = torch.empty_like(u0)
    grid, meta = _launch(qe, v, BWD_LAUNCH, dot_prec)
    gdn_buckets_bwd_states_kernel[grid](qe, w, kt, decay, lamw, d_out, g, d_u0, nc, levels, **meta)
    bk = min(GRADS_LAUNCH[0], k)
    nk = k // bk
    d_qe, d_w, d_kt = (torch.empty_like(qe) for _ in range(3))
    d_decay = torch.empty(nk, bh, nc, dtype=torch.float32, device=dev)
    # Only the levels a chunk reads get a gradient; the others stay zero.
    d_lamw = torch.zeros(nk, bh, nc, c, levels, dtype=torch.float32, device=dev)
    gdn_buckets_bwd_grads_kernel[(nc, bh, nk)](
        qe,
        w,
        kt,
        u0,
        lamw,
        d_out,
        h,
        g,
        d_qe,
        d_w,
        d_kt,
        d_decay,
        d_lamw,
        nc,
        levels,
        bh,
        C=c,
        K=k,
        V=v,
        BK=bk,
        BV=max(16, triton.next_power_of_2(v)),
        DOT_PREC=dot_prec,
        num_warps=GRADS_LAUNCH[1],
    )
    return d_qe, d_w, d_kt, d_u0, d_decay.sum(0), d_lamw.sum(0)
