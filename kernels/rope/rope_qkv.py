"""RoPE on the output of a fused QKV projection: Triton kernels and a torch custom op.

Forward reads each token's row of qkv (B, T, (Hq + 2 Hkv) D) once and writes q, k (rotated) and v
(copied) as three contiguous tensors. Backward reads dq, dk, dv with whatever strides the attention
backward gave them (typically a (B, H, T, D) layout seen through a transpose; no `.contiguous()`
copy is made) and writes d_qkv in one kernel: dq and dk un-rotated, dv copied, so the `cat` of the
three gradients into the fused projection's gradient never happens as a separate pass.

Rotation (half-split NeoX/Llama-HF layout, x = [x1, x2] over the halves of D):
    forward  y = [x1 cos - x2 sin, x2 cos + x1 sin]
    backward dx = [dy1 cos + dy2 sin, dy2 cos - dy1 sin]   (the transpose: sin -> -sin)
Each program handles all heads of a few tokens, loading the two halves of every head as separate
(tokens, heads, D/2) blocks: each is contiguous in memory, so the loads and stores vectorize, and all
of a program's loads are issued before its first store.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

DTYPES = (torch.float16, torch.bfloat16, torch.float32)


@triton.jit
def _load_half(
    src,
    s_h,
    s_d,
    m_t,
    HALF_IDX: tl.constexpr,
    N: tl.constexpr,
    D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    """Half HALF_IDX (0: channels [0, D/2), 1: [D/2, D)) of heads 0..N-1 of BLOCK_T tokens.

    src (BLOCK_T, 1, 1) points at each token's first head; heads are s_h apart, channels s_d; m_t
    (BLOCK_T, 1, 1) masks tokens past the end. Returns (BLOCK_T, BLOCK_N, BLOCK_HALF).
    """
    o_n = tl.arange(0, BLOCK_N).to(tl.int64)[None, :, None]
    o_d = tl.arange(0, BLOCK_HALF)[None, None, :]
    m_tnd = m_t & (o_n < N) & (o_d < D // 2)
    p_x = src + o_n * s_h + (HALF_IDX * (D // 2) + o_d) * s_d
    return tl.load(p_x, mask=m_tnd, other=0.0)


@triton.jit
def _store_half(
    dst,
    b_y,
    m_t,
    HALF_IDX: tl.constexpr,
    N: tl.constexpr,
    D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    """Store b_y (BLOCK_T, BLOCK_N, BLOCK_HALF) into half HALF_IDX of N contiguous heads of D at dst."""
    o_n = tl.arange(0, BLOCK_N)[None, :, None]
    o_d = tl.arange(0, BLOCK_HALF)[None, None, :]
    m_tnd = m_t & (o_n < N) & (o_d < D // 2)
    p_y = dst + o_n * D + HALF_IDX * (D // 2) + o_d
    tl.store(p_y, b_y.to(p_y.dtype.element_ty), mask=m_tnd)


@triton.jit
def _store_rotated(
    dst,
    b_x1,
    b_x2,
    b_cos,
    b_sin,
    m_t,
    N: tl.constexpr,
    D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    """dst = [x1 cos - x2 sin, x2 cos + x1 sin] in float32 (a negated b_sin un-rotates)."""
    b_x1, b_x2 = b_x1.to(tl.float32), b_x2.to(tl.float32)
    _store_half(dst, b_x1 * b_cos - b_x2 * b_sin, m_t, 0, N, D, BLOCK_N, BLOCK_HALF)
    _store_half(dst, b_x2 * b_cos + b_x1 * b_sin, m_t, 1, N, D, BLOCK_N, BLOCK_HALF)


@triton.jit
def _tables(cos, sin, o_pos, m_t, D: tl.constexpr, BLOCK_HALF: tl.constexpr):
    """cos and sin (BLOCK_T, 1, BLOCK_HALF) at positions o_pos (BLOCK_T, 1, 1)."""
    o_d = tl.arange(0, BLOCK_HALF)[None, None, :]
    m_td = m_t & (o_d < D // 2)
    b_cos = tl.load(cos + o_pos * (D // 2) + o_d, mask=m_td, other=0.0)
    b_sin = tl.load(sin + o_pos * (D // 2) + o_d, mask=m_td, other=0.0)
    return b_cos, b_sin


@triton.jit
def rope_qkv_fwd_kernel(
    qkv,
    cos,
    sin,
    q,
    k,
    v,
    BT,
    T,
    N_Q: tl.constexpr,
    N_KV: tl.constexpr,
    D: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_KV: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    # One program per BLOCK_T consecutive tokens of the flattened (B*T) axis: all their heads.
    i_p = tl.program_id(0).to(tl.int64)
    o_t = (i_p * BLOCK_T + tl.arange(0, BLOCK_T))[:, None, None]
    m_t = o_t < BT
    b_cos, b_sin = _tables(cos, sin, o_t % T, m_t, D, BLOCK_HALF)
    p_q = qkv + o_t * ((N_Q + 2 * N_KV) * D)
    p_k, p_v = p_q + N_Q * D, p_q + (N_Q + N_KV) * D
    # Every load before the first store (stores may alias loads for all the compiler knows, so it
    # would not hoist them): all six blocks' bytes in flight at once.
    b_q1 = _load_half(p_q, D, 1, m_t, 0, N_Q, D, BLOCK_Q, BLOCK_HALF)
    b_q2 = _load_half(p_q, D, 1, m_t, 1, N_Q, D, BLOCK_Q, BLOCK_HALF)
    b_k1 = _load_half(p_k, D, 1, m_t, 0, N_KV, D, BLOCK_KV, BLOCK_HALF)
    b_k2 = _load_half(p_k, D, 1, m_t, 1, N_KV, D, BLOCK_KV, BLOCK_HALF)
    b_v1 = _load_half(p_v, D, 1, m_t, 0, N_KV, D, BLOCK_KV, BLOCK_HALF)
    b_v2 = _load_half(p_v, D, 1, m_t, 1, N_KV, D, BLOCK_KV, BLOCK_HALF)
    _store_rotated(q + o_t * (N_Q * D), b_q1, b_q2, b_cos, b_sin, m_t, N_Q, D, BLOCK_Q, BLOCK_HALF)
    _store_rotated(k + o_t * (N_KV * D), b_k1, b_k2, b_cos, b_sin, m_t, N_KV, D, BLOCK_KV, BLOCK_HALF)
    # v is copied bit for bit (no float32 round trip).
    _store_half(v + o_t * (N_KV * D), b_v1, m_t, 0, N_KV, D, BLOCK_KV, BLOCK_HALF)
    _store_half(v + o_t * (N_KV * D), b_v2, m_t, 1, N_KV, D, BLOCK_KV, BLOCK_HALF)


@triton.jit
def rope_qkv_bwd_kernel(
    dq,
    dk,
    dv,
    cos,
    sin,
    dqkv,
    BT,
    T,
    s_qb,
    s_qt,
    s_qh,
    s_qd,
    s_kb,
    s_kt,
    s_kh,
    s_kd,
    s_vb,
    s_vt,
    s_vh,
    s_vd,
    N_Q: tl.constexpr,
    N_KV: tl.constexpr,
    D: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_Q: tl.constexpr,
    BLOCK_KV: tl.constexpr,
    BLOCK_HALF: tl.constexpr,
):
    # As forward, with the inverse rotation (sin -> -sin), reading dq/dk/dv through their own
    # (B, T, H, D) strides and writing the token's whole d_qkv row.
    i_p = tl.program_id(0).to(tl.int64)
    o_t = (i_p * BLOCK_T + tl.arange(0, BLOCK_T))[:, None, None]
    m_t = o_t < BT
    o_b, o_pos = o_t // T, o_t % T
    b_cos, b_sin = _tables(cos, sin, o_pos, m_t, D, BLOCK_HALF)
    p_dq = dqkv + o_t * ((N_Q + 2 * N_KV) * D)
    p_dk, p_dv = p_dq + N_Q * D, p_dq + (N_Q + N_KV) * D
    p_q = dq + o_b * s_qb + o_pos * s_qt
    p_k = dk + o_b * s_kb + o_pos * s_kt
    p_v = dv + o_b * s_vb + o_pos * s_vt
    b_q1 = _load_half(p_q, s_qh, s_qd, m_t, 0, N_Q, D, BLOCK_Q, BLOCK_HALF)
    b_q2 = _load_half(p_q, s_qh, s_qd, m_t, 1, N_Q, D, BLOCK_Q, BLOCK_HALF)
    b_k1 = _load_half(p_k, s_kh, s_kd, m_t, 0, N_KV, D, BLOCK_KV, BLOCK_HALF)
    b_k2 = _load_half(p_k, s_kh, s_kd, m_t, 1, N_KV, D, BLOCK_KV, BLOCK_HALF)
    b_v1 = _load_half(p_v, s_vh, s_vd, m_t, 0, N_KV, D, BLOCK_KV, BLOCK_HALF)
    b_v2 = _load_half(p_v, s_vh, s_vd, m_t, 1, N_KV, D, BLOCK_KV, BLOCK_HALF)
    _store_rotated(p_dq, b_q1, b_q2, b_cos, -b_sin, m_t, N_Q, D, BLOCK_Q, BLOCK_HALF)
    _store_rotated(p_dk, b_k1, b_k2, b_cos, -b_sin, m_t, N_KV, D, BLOCK_KV, BLOCK_HALF)
    _store_half(p_dv, b_v1, m_t, 0, N_KV, D, BLOCK_KV, BLOCK_HALF)
    _store_half(p_dv, b_v2, m_t, 1, N_KV, D, BLOCK_KV, BLOCK_HALF)


def _config(n_tokens: int, n_heads: int, n_kv_heads: int, d: int, device: torch.device, block_t: int | None):
    """Launch grid and block sizes: each program covers all heads of BLOCK_T tokens (one config).

    On a GPU, BLOCK_T tokens make a q half-block of ~1024 values: 8 per thread at 4 warps, one
    16-byte load of bf16 (the 468m model: 2 tokens x 16 heads x 32). Wider rows get 8 warps. In the
    CPU interpreter, whose cost is per program rather than per value, 32 tokens go to each program.
    """
    block_q, block_half = triton.next_power_of_2(n_heads), triton.next_power_of_2(d // 2)
    if block_t is None:
        block_t = 32 if device.type == "cpu" else max(1, 1024 // (block_q * block_half))
    if block_t < 1 or block_t & (block_t - 1):
        raise ValueError(f"block_t must be a power of two (a tl.arange length), got {block_t}")
    return (triton.cdiv(n_tokens, block_t),), dict(
        BLOCK_T=block_t,
        BLOCK_Q=block_q,
        BLOCK_KV=triton.next_power_of_2(n_kv_heads),
        BLOCK_HALF=block_half,
        num_warps=4 if block_t * block_q * block_half <= 1024 else 8,
    )


def rope_qkv_fwd(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    n_heads: int,
    n_kv_heads: int,
    block_t: int | None = None,
):
    """qkv (B, T, (Hq + 2 Hkv) D) contiguous, cos/sin (>= T, D/2) float32 contiguous -> q, k, v.

    q (B, T, Hq, D), k and v (B, T, Hkv, D), new contiguous tensors in qkv's dtype. Arguments are
    assumed checked (see `check_rope_args`).
    """
    b, t, width = qkv.shape
    d = width // (n_heads + 2 * n_kv_heads)
    q = torch.empty((b, t, n_heads, d), dtype=qkv.dtype, device=qkv.device)
    k = torch.empty((b, t, n_kv_heads, d), dtype=qkv.dtype, device=qkv.device)
    v = torch.empty((b, t, n_kv_heads, d), dtype=qkv.dtype, device=qkv.device)
    if b * t == 0:
        return q, k, v
    grid, cfg = _config(b * t, n_heads, n_kv_heads, d, qkv.device, block_t)
    rope_qkv_fwd_kernel[grid](qkv, cos, sin, q, k, v, b * t, t, N_Q=n_heads, N_KV=n_kv_heads, D=d, **cfg)
    return q, k, v


def rope_qkv_bwd(
    dq: torch.Tensor,
    dk: torch.Tensor,
    dv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    block_t: int | None = None,
):
    """dq (B, T, Hq, D), dk and dv (B, T, Hkv, D), any strides -> d_qkv (B, T, (Hq + 2 Hkv) D).

    d_qkv is contiguous in dq's dtype; dq and dk un-rotated, dv copied.
    """
    b, t, n_heads, d = dq.shape
    n_kv_heads = dk.shape[2]
    dqkv = torch.empty((b, t, (n_heads + 2 * n_kv_heads) * d), dtype=dq.dtype, device=dq.device)
    if b * t == 0:
        return dqkv
    grid, cfg = _config(b * t, n_heads, n_kv_heads, d, dq.device, block_t)
    rope_qkv_bwd_kernel[grid](
        dq,
        dk,
        dv,
        cos,
        sin,
        dqkv,
        b * t,
        t,
        *dq.stride(),
        *dk.stride(),
        *dv.stride(),
        N_Q=n_heads,
        N_KV=n_kv_heads,
        D=d,
        **cfg,
    )
    return dqkv


@torch.library.custom_op("redpajama::rope_qkv", mutates_args=())
def rope_qkv_op(
    qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, n_heads: int, n_kv_heads: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return rope_qkv_fwd(qkv, cos, sin, n_heads, n_kv_heads)


@rope_qkv_op.register_fake
def _(qkv, cos, sin, n_heads, n_kv_heads):
    b, t, width = qkv.shape
    d = width // (n_heads + 2 * n_kv_heads)
    return (
        qkv.new_empty((b, t, n_heads, d)),
        qkv.new_empty((b, t, n_kv_heads, d)),
        qkv.new_empty((b, t, n_kv_heads, d)),
    )


@torch.library.custom_op("redpajama::rope_qkv_bwd", mutates_args=())
def rope_qkv_bwd_op(
    dq: torch.Tensor, dk: torch.Tensor, dv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> torch.Tensor:
    return rope_qkv_bwd(dq, dk, dv, cos, sin)


@rope_qkv_bwd_op.register_fake
def _(dq, dk, dv, cos, sin):
    b, t, n_heads, d = dq.shape
    return dq.new_empty((b, t, (n_heads + 2 * dk.shape[2]) * d))


def _setup_context(ctx, inputs, output):
    _, cos, sin, _, _ = inputs
    ctx.save_for_backward(cos, sin)


def _backward(ctx, dq, dk, dv):
    cos, sin = ctx.saved_tensors
    # cos/sin are fixed tables: no gradient. The ints get None.
    return rope_qkv_bwd_op(dq, dk, dv, cos, sin), None, None, None, None


rope_qkv_op.register_autograd(_backward, setup_context=_setup_context)


def check_rope_args(qkv, cos, sin, n_heads: int, n_kv_heads: int) -> None:
    """Raise a ValueError/TypeError naming the offending numbers when the arguments are not usable."""
    for name, t in (("qkv", qkv), ("cos", cos), ("sin", sin)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not (isinstance(n_heads, int) and isinstance(n_kv_heads, int)) or n_heads < 1 or n_kv_heads < 1:
        raise ValueError(f"n_heads and n_kv_heads must be positive ints, got {n_heads!r} and {n_kv_heads!r}")
    if qkv.dim() != 3:
        raise ValueError(f"qkv must be (B, T, (n_heads + 2*n_kv_heads) * D), got shape {tuple(qkv.shape)}")
    b, t, width = qkv.shape
    n_total = n_heads + 2 * n_kv_heads
    if width % n_total != 0 or (width // n_total) % 2 != 0:
        raise ValueError(
            f"qkv's last dim {width} must be (n_heads + 2*n_kv_heads) * D = {n_total} * D with D even"
        )
    d = width // n_total
    if qkv.dtype not in DTYPES:
        raise TypeError(f"qkv must be float16, bfloat16 or float32, got {qkv.dtype}")
    if not qkv.is_contiguous():
        raise ValueError(f"qkv must be contiguous, got shape {tuple(qkv.shape)} strides {qkv.stride()}")
    for name, table in (("cos", cos), ("sin", sin)):
        if table.dim() != 2 or table.shape[0] < t or table.shape[1] != d // 2:
            raise ValueError(
                f"{name} must be (T_max >= {t}, D/2 = {d // 2}) for qkv of shape {tuple(qkv.shape)} "
                f"and {n_total} heads, got {tuple(table.shape)}"
            )
        if table.dtype != torch.float32:
            raise TypeError(f"{name} must be float32, got {table.dtype}")
        if not table.is_contiguous():
            raise ValueError(f"{name} must be contiguous, got strides {table.stride()}")
        if table.device != qkv.device:
            raise ValueError(f"{name} is on {table.device} but qkv is on {qkv.device}")


def rope_qkv(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, n_heads: int, n_kv_heads: int):
    """Split a fused QKV projection into heads and apply RoPE to q and k.

    qkv: (B, T, (n_heads + 2 * n_kv_heads) * D) contiguous, float16/bfloat16/float32: q heads, then
        k heads, then v heads.
    cos, sin: (T_max >= T, D/2) float32 contiguous; rows 0..T-1 are used (as from `rope_tables`).
    Returns q (B, T, n_heads, D), k (B, T, n_kv_heads, D), v (B, T, n_kv_heads, D): new contiguous
    tensors in qkv's dtype, q and k rotated in the half-split layout (math in float32), v copied.
    Differentiable in qkv (cos/sin get no gradient); the backward accepts gradients of any strides
    and writes d_qkv in one kernel. Safe inside torch.compile(fullgraph=True).
    """
    check_rope_args(qkv, cos, sin, n_heads, n_kv_heads)
    return rope_qkv_op(qkv, cos, sin, n_heads, n_kv_heads)
