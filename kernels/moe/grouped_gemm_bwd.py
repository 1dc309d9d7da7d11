"""Backward Triton kernels of the MoE experts (layout and tile map as in `grouped_gemm.py`).

Saved from the forward: x (T, d), H (M, 2n) and the routing (token_indices, expert_offsets, scores).
A = silu(H_gate) * H_up is recomputed from H (once, in kernel 1b) and Y = A @ w2[e] is never stored,
so nothing of size M * d outlives the forward. With dOut (T, d) and t = token_indices[a]:

1a. `moe_down_bwd_kernel` (row tiles x column blocks of n): dA'_a = dOut[t] @ w2[e]^T with the
   gather of dOut fused, written in float32 to a transient (M, n) buffer.
1b. `moe_swiglu_bwd_kernel` (blocks of whole rows): A recomputed from H, dScores[a] = <dA'_a, A_a>
   (= <dOut[t], Y_a>) over the whole row, dH = SwiGLU'(H) applied to dA = scores[a] * dA', and
   scores[a] * A written to a transient (M, n) buffer for kernel 2. As an epilogue of 1a this took
   255 registers a thread (one program an SM) at 64 columns, and the GEMM re-read the gathered dOut
   once per column block; split, the GEMM takes 128 columns and the row pass runs at memory speed:
   the backward 5-12% faster at MoE-A/B/C for one more float32 (M, n) round trip
   (docs/benchmarks.md).
2. `moe_dw2_kernel` (expert x n-block x d-block): dW2[e] = (scores * A)_e^T dOut[t]_e, the rows of
   dOut gathered in the kernel. The scaled A is read from kernel 1's buffer rather than recomputed
   here: each of the d / BLOCK_N programs of an (expert, n-block) would redo the same sigmoids, and
   at 128 x 64 x 128 tiles the exponentials would cost about half as many cycles as the tensor-core
   work (an estimate from H100 throughputs, not measured). The scores sit on A, not on dOut, so the
   gathered dOut tiles go from memory to the tensor cores untouched (scaling them in registers cost
   a round trip through shared memory every step: dW2 was half as fast per FLOP as dW1).
3. `moe_dw1_kernel` (expert x d-block x 2n-block): dW1[e] = x[t]_e^T dH_e, x gathered in the kernel.
4. `moe_dx_kernel` (row tiles x column blocks of d): dX_a = dH_a @ w1[e]^T (M, d); the per-token sum
   dX[t] = sum of its rows is `grouped_gemm.moe_combine_kernel` (deterministic, no atomics).
The weight-gradient programs loop over their expert's rows; an expert without rows writes zeros.
"""

from __future__ import annotations

import triton
import triton.language as tl

from redpajama.kernels.moe.grouped_gemm import tile_rows


@triton.jit
def moe_down_bwd_kernel(
    d_out,
    w2,
    token_indices,
    tile_expert,
    tile_row,
    expert_offsets,
    da,
    E,
    D,
    N,
    NB_N,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """d_out (T, D), w2 (E, N, D) -> da (M, N) float32 = d_out[token_indices] @ w2[e]^T.

    Program (i_t, i_n), i_n fastest: a row tile of one expert, columns i_n * BLOCK_N .. of n.
    """
    i_p = tl.program_id(0)
    i_t, i_n = i_p // NB_N, i_p % NB_N
    i_e = tl.load(tile_expert + i_t)
    if i_e >= E:
        return
    o_m, m_m = tile_rows(i_t, i_e, tile_row, expert_offsets, BLOCK_M)
    o_n = i_n * BLOCK_N + tl.arange(0, BLOCK_N)
    m_n = o_n < N
    b_tok = tl.load(token_indices + o_m, mask=m_m, other=0)
    p_do = d_out + b_tok[:, None] * D  # gather of dOut through token_indices
    p_w = w2 + i_e * N * D + o_n[None, :] * D  # w2[e]^T: (D, N) seen with strides (1, D)
    b_da = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for i_k in range(0, D, BLOCK_K):
        o_k = i_k + tl.arange(0, BLOCK_K)
        m_k = o_k < D
        b_do = tl.load(p_do + o_k[None, :], mask=m_m[:, None] & m_k[None, :], other=0.0)
        b_wt = tl.load(p_w + o_k[:, None], mask=m_k[:, None] & m_n[None, :], other=0.0)
        # (BLOCK_M, BLOCK_K) @ (BLOCK_K, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        b_da = tl.dot(b_do, b_wt, b_da, input_precision=PRECISION)
    tl.store(da + o_m[:, None] * N + o_n[None, :], b_da, mask=m_m[:, None] & m_n[None, :])


@triton.jit
def moe_swiglu_bwd_kernel(da, h, scores, dh, d_scores, a, M, N, BLOCK_R: tl.constexpr, BLOCK_N: tl.constexpr):
    """da (M, N) float32, h (M, 2N), scores (M,) -> d_scores (M,) float32 = rowsum(da * A),
    a (M, N) = scores * A, dh (M, 2N) = SwiGLU'(h) applied to scores * da; A = silu(g) * u, h = [g | u].

    Program i: rows i * BLOCK_R .., each whole (BLOCK_N >= N), so dScores is one sum in one order.
    """
    o_r = (tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)).to(tl.int64)
    m_r = o_r < M
    o_n = tl.arange(0, BLOCK_N)
    m_rn = m_r[:, None] & (o_n < N)[None, :]
    b_da = tl.load(da + o_r[:, None] * N + o_n[None, :], mask=m_rn, other=0.0)
    p_h = h + o_r[:, None] * 2 * N + o_n[None, :]
    b_g = tl.load(p_h, mask=m_rn, other=0.0).to(tl.float32)
    b_u = tl.load(p_h + N, mask=m_rn, other=0.0).to(tl.float32)
    b_sig = tl.sigmoid(b_g)
    b_silu = b_g * b_sig
    b_a = b_silu * b_u
    # Masked columns have g = u = 0, hence A = 0.
    tl.store(d_scores + o_r, tl.sum(b_da * b_a, axis=1), mask=m_r)
    b_s = tl.load(scores + o_r, mask=m_r, other=0.0).to(tl.float32)
    tl.store(a + o_r[:, None] * N + o_n[None, :], (b_a * b_s[:, None]).to(a.dtype.element_ty), mask=m_rn)
    b_da = b_da * b_s[:, None]
    p_dh = dh + o_r[:, None] * 2 * N + o_n[None, :]
    tl.store(p_dh + N, (b_da * b_silu).to(dh.dtype.element_ty), mask=m_rn)
    # d silu(g)/dg = s + g * s * (1 - s) = s * (1 + g * (1 - s))
    b_dsilu = b_sig * (1.0 + b_g * (1.0 - b_sig))
    tl.store(p_dh, (b_da * b_u * b_dsilu).to(dh.dtype.element_ty), mask=m_rn)


@triton.jit
def moe_dw2_kernel(
    d_out,
    a,
    token_indices,
    expert_offsets,
    dw2,
    D,
    N,
    NB_N,
    NB_D,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """a (M, N) (scaled by the scores, `moe_down_bwd_kernel`), d_out (T, D) -> dw2 (E, N, D):
    dw2[e] = sum over rows r of expert e of a[r]^T d_out[token_indices[r]].

    Program (i_e, i_n, i_d), i_d fastest: BLOCK_M rows of n times BLOCK_N columns of d of expert
    i_e, reducing over the expert's assignment rows BLOCK_K at a time.
    """
    i_p = tl.program_id(0)
    i_e = (i_p // (NB_N * NB_D)).to(tl.int64)
    i_n, i_d = (i_p // NB_D) % NB_N, i_p % NB_D
    i_start = tl.load(expert_offsets + i_e)
    i_end = tl.load(expert_offsets + i_e + 1)
    o_n = i_n * BLOCK_M + tl.arange(0, BLOCK_M)
    m_n = o_n < N
    o_d = i_d * BLOCK_N + tl.arange(0, BLOCK_N)
    m_d = o_d < D
    b_dw = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for i_k in range(i_start, i_end, BLOCK_K):
        o_k = i_k + tl.arange(0, BLOCK_K)
        m_k = o_k < i_end
        # A^T block (BLOCK_M, BLOCK_K): rows of n, columns of assignments.
        b_at = tl.load(a + o_k[None, :] * N + o_n[:, None], mask=m_n[:, None] & m_k[None, :], other=0.0)
        b_tok = tl.load(token_indices + o_k, mask=m_k, other=0)
        b_do = tl.load(d_out + b_tok[:, None] * D + o_d[None, :], mask=m_k[:, None] & m_d[None, :], other=0.0)
        # (BLOCK_M, BLOCK_K) @ (BLOCK_K, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        b_dw = tl.dot(b_at, b_do, b_dw, input_precision=PRECISION)
    p_dw = dw2 + i_e * N * D + o_n[:, None] * D + o_d[None, :]
    tl.store(p_dw, b_dw.to(p_dw.dtype.element_ty), mask=m_n[:, None] & m_d[None, :])


@triton.jit
def moe_dw1_kernel(
    x,
    dh,
    token_indices,
    expert_offsets,
    dw1,
    D,
    N,
    NB_D,
    NB_C,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """dw1 (E, D, 2N): dw1[e] = sum over rows a of e of x[token_indices[a]]^T dh_a.

    Program (i_e, i_d, i_c), i_c fastest: BLOCK_M rows of d times BLOCK_N of the 2N columns
    [gate | up] (one range: dh and dw1 share the layout), reducing over the expert's rows.
    """
    i_p = tl.program_id(0)
    i_e = (i_p // (NB_D * NB_C)).to(tl.int64)
    i_d, i_c = (i_p // NB_C) % NB_D, i_p % NB_C
    i_start = tl.load(expert_offsets + i_e)
    i_end = tl.load(expert_offsets + i_e + 1)
    o_d = i_d * BLOCK_M + tl.arange(0, BLOCK_M)
    m_d = o_d < D
    o_c = i_c * BLOCK_N + tl.arange(0, BLOCK_N)
    m_c = o_c < 2 * N
    b_dw = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for i_k in range(i_start, i_end, BLOCK_K):
        o_k = i_k + tl.arange(0, BLOCK_K)
        m_k = o_k < i_end
        b_tok = tl.load(token_indices + o_k, mask=m_k, other=0)
        # x[token]^T block (BLOCK_M, BLOCK_K), gathered: column j is row token_indices[i_k + j] of x.
        b_xt = tl.load(x + b_tok[None, :] * D + o_d[:, None], mask=m_d[:, None] & m_k[None, :], other=0.0)
        b_dh = tl.load(dh + o_k[:, None] * 2 * N + o_c[None, :], mask=m_k[:, None] & m_c[None, :], other=0.0)
        # (BLOCK_M, BLOCK_K) @ (BLOCK_K, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        b_dw = tl.dot(b_xt, b_dh, b_dw, input_precision=PRECISION)
    p_dw = dw1 + i_e * D * 2 * N + o_d[:, None] * 2 * N + o_c[None, :]
    tl.store(p_dw, b_dw.to(p_dw.dtype.element_ty), mask=m_d[:, None] & m_c[None, :])


@triton.jit
def moe_dx_kernel(
    dh,
    w1,
    tile_expert,
    tile_row,
    expert_offsets,
    dx_rows,
    E,
    D,
    N,
    NB_D,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """dh (M, 2N), w1 (E, D, 2N) -> dx_rows (M, D) = dh @ w1[e]^T, one row per assignment.

    Program (i_t, i_d), i_d fastest: a row tile of one expert, columns i_d * BLOCK_N .. of d.
    """
    i_p = tl.program_id(0)
    i_t, i_d = i_p // NB_D, i_p % NB_D
    i_e = tl.load(tile_expert + i_t)
    if i_e >= E:
        return
    o_m, m_m = tile_rows(i_t, i_e, tile_row, expert_offsets, BLOCK_M)
    o_d = i_d * BLOCK_N + tl.arange(0, BLOCK_N)
    m_d = o_d < D
    p_dh = dh + o_m[:, None] * 2 * N
    p_w = w1 + i_e * D * 2 * N + o_d[None, :] * 2 * N  # w1[e]^T: (2N, D) seen with strides (1, 2N)
    b_dx = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for i_k in range(0, 2 * N, BLOCK_K):
        o_k = i_k + tl.arange(0, BLOCK_K)
        m_k = o_k < 2 * N
        b_dh = tl.load(p_dh + o_k[None, :], mask=m_m[:, None] & m_k[None, :], other=0.0)
        b_wt = tl.load(p_w + o_k[:, None], mask=m_k[:, None] & m_d[None, :], other=0.0)
        # (BLOCK_M, BLOCK_K) @ (BLOCK_K, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        b_dx = tl.dot(b_dh, b_wt, b_dx, input_precision=PRECISION)
    p_dx = dx_rows + o_m[:, None] * D + o_d[None, :]
    tl.store(p_dx, b_dx.to(p_dx.dtype.element_ty), mask=m_m[:, None] & m_d[None, :])
