"""Forward Triton kernels of the MoE experts: gathered grouped GEMMs and a deterministic combine.

The assignments (token, expert, score) are sorted expert-major: expert e owns rows
expert_offsets[e] .. expert_offsets[e+1]-1 of every (M, .) tensor. A row-tile program works on
BLOCK_M consecutive rows of ONE expert; a small kernel builds the tile -> (expert, first row) map
(`tile_map.py`), padded to a bound known without a device sync: padding tiles carry expert
index E and their programs return before touching memory.

1. `moe_up_proj_kernel`: H = x[token_indices] @ w1[e] with the gather fused (rows of x are loaded
   through token_indices; x[token_indices] is never formed), gate and up accumulated side by side
   and the epilogue writing H (M, 2n) and A = silu(H_gate) * H_up (M, n).
2. `moe_down_proj_kernel`: Y = scores[:, None] * (A @ w2[e]) (M, d), the router weight applied in
   the epilogue.
3. `moe_combine_kernel`: out[t] = sum of the rows of Y that belong to token t, read through a
   token -> assignment order (a stable argsort of token_indices) in ascending assignment order, in
   float32: deterministic and free of atomics. The same kernel sums dX in the backward.

Math is float32 (tl.dot accumulates in float32); inputs are float16/bfloat16/float32 and products
are rounded to the input dtype only when stored. Pointer offsets are int64 (M * 2n and T * d pass
2^31 at large token counts): every row index is loaded as int64 or cast before it scales.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def tile_rows(i_t, i_e, tile_row, expert_offsets, BLOCK_M: tl.constexpr):
    """Rows (o_m) of assignment tile i_t, which belongs to expert i_e, and their mask (m_m).

    Every grouped kernel starts from the tile map this way: a tile never crosses into the next
    expert's rows, so a ragged last tile is masked at that expert's end offset.
    """
    i_r = tl.load(tile_row + i_t)
    i_end = tl.load(expert_offsets + i_e + 1)
    o_m = i_r + tl.arange(0, BLOCK_M)
    return o_m, o_m < i_end


@triton.jit
def moe_up_proj_kernel(
    x,
    w1,
    token_indices,
    tile_expert,
    tile_row,
    expert_offsets,
    h,
    a,
    E,
    D,
    N,
    NB_N,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """x (T, D), w1 (E, D, 2N) [gate | up], token_indices (M,) -> h (M, 2N), a (M, N).

    Program (i_t, i_n), i_n fastest: rows tile_row[i_t] .. + BLOCK_M of expert tile_expert[i_t]
    (clipped to the expert's last row), columns i_n * BLOCK_N .. + BLOCK_N of the gate and the up half.
    """
    i_p = tl.program_id(0)
    i_t, i_n = i_p // NB_N, i_p % NB_N
    i_e = tl.load(tile_expert + i_t)
    if i_e >= E:  # padding tile of the upper-bound grid
        return
    o_m, m_m = tile_rows(i_t, i_e, tile_row, expert_offsets, BLOCK_M)
    o_n = i_n * BLOCK_N + tl.arange(0, BLOCK_N)
    m_n = o_n < N
    b_tok = tl.load(token_indices + o_m, mask=m_m, other=0)
    p_x = x + b_tok[:, None] * D  # the fused gather: row token_indices[a] of x for assignment a
    p_w = w1 + i_e * D * 2 * N + o_n[None, :]
    b_g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    b_u = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for i_k in range(0, D, BLOCK_K):
        o_k = i_k + tl.arange(0, BLOCK_K)
        m_k = o_k < D
        b_x = tl.load(p_x + o_k[None, :], mask=m_m[:, None] & m_k[None, :], other=0.0)
        p_wk = p_w + o_k[:, None] * 2 * N
        m_kn = m_k[:, None] & m_n[None, :]
        b_wg = tl.load(p_wk, mask=m_kn, other=0.0)
        b_wu = tl.load(p_wk + N, mask=m_kn, other=0.0)
        # (BLOCK_M, BLOCK_K) @ (BLOCK_K, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        b_g = tl.dot(b_x, b_wg, b_g, input_precision=PRECISION)
        # (BLOCK_M, BLOCK_K) @ (BLOCK_K, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        b_u = tl.dot(b_x, b_wu, b_u, input_precision=PRECISION)
    # A from the stored (rounded) H: the backward recomputes A from H, so the forward and the
    # gradient describe one and the same function also in 16-bit dtypes.
    b_g = b_g.to(h.dtype.element_ty)
    b_u = b_u.to(h.dtype.element_ty)
    m_mn = m_m[:, None] & m_n[None, :]
    p_h = h + o_m[:, None] * 2 * N + o_n[None, :]
    tl.store(p_h, b_g, mask=m_mn)
    tl.store(p_h + N, b_u, mask=m_mn)
    b_gf = b_g.to(tl.float32)
    b_a = b_gf * tl.sigmoid(b_gf) * b_u.to(tl.float32)
    p_a = a + o_m[:, None] * N + o_n[None, :]
    tl.store(p_a, b_a.to(p_a.dtype.element_ty), mask=m_mn)


@triton.jit
def moe_down_proj_kernel(
    a,
    w2,
    scores,
    tile_expert,
    tile_row,
    expert_offsets,
    y,
    E,
    D,
    N,
    NB_D,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """a (M, N), w2 (E, N, D), scores (M,) -> y (M, D) = scores[:, None] * (a @ w2[e]).

    Program (i_t, i_d), i_d fastest: a row tile of one expert times columns i_d * BLOCK_N .. of w2[e].
    """
    i_p = tl.program_id(0)
    i_t, i_d = i_p // NB_D, i_p % NB_D
    i_e = tl.load(tile_expert + i_t)
    if i_e >= E:
        return
    o_m, m_m = tile_rows(i_t, i_e, tile_row, expert_offsets, BLOCK_M)
    o_d = i_d * BLOCK_N + tl.arange(0, BLOCK_N)
    m_d = o_d < D
    p_a = a + o_m[:, None] * N
    p_w = w2 + i_e * N * D + o_d[None, :]
    b_y = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for i_k in range(0, N, BLOCK_K):
        o_k = i_k + tl.arange(0, BLOCK_K)
        m_k = o_k < N
        b_a = tl.load(p_a + o_k[None, :], mask=m_m[:, None] & m_k[None, :], other=0.0)
        b_w = tl.load(p_w + o_k[:, None] * D, mask=m_k[:, None] & m_d[None, :], other=0.0)
        # (BLOCK_M, BLOCK_K) @ (BLOCK_K, BLOCK_N) -> (BLOCK_M, BLOCK_N)
        b_y = tl.dot(b_a, b_w, b_y, input_precision=PRECISION)
    b_s = tl.load(scores + o_m, mask=m_m, other=0.0).to(tl.float32)
    b_y = b_y * b_s[:, None]
    p_y = y + o_m[:, None] * D + o_d[None, :]
    tl.store(p_y, b_y.to(p_y.dtype.element_ty), mask=m_m[:, None] & m_d[None, :])


@triton.jit
def moe_combine_kernel(y, order, token_start, out, D, BLOCK_D: tl.constexpr):
    """y (M, D), order (M,) assignments sorted by token, token_start (T+1,) -> out (T, D).

    out[t] = sum over j in token_start[t] .. token_start[t+1]-1 of y[order[j]], summed in float32 in
    that fixed order; a token without assignments gets zeros. Program (i_t, i_d): one token, one
    block of columns (tokens on axis 0, which allows 2^31 - 1 programs).
    """
    i_t = tl.program_id(0).to(tl.int64)
    i_d = tl.program_id(1)
    o_d = i_d * BLOCK_D + tl.arange(0, BLOCK_D)
    m_d = o_d < D
    i_start = tl.load(token_start + i_t)
    i_stop = tl.load(token_start + i_t + 1)
    b_o = tl.zeros((BLOCK_D,), dtype=tl.float32)
    for i_j in range(i_start, i_stop):
        i_a = tl.load(order + i_j)
        b_o += tl.load(y + i_a * D + o_d, mask=m_d, other=0.0).to(tl.float32)
    p_o = out + i_t * D + o_d
    tl.store(p_o, b_o.to(p_o.dtype.element_ty), mask=m_d)
