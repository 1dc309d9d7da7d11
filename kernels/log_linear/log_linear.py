"""Log-linear Mamba-2 forward in Triton (two kernels plus the per-level states in PyTorch), backward by
recomputation through the PyTorch chunked path. The layout of `redpajama.kernels.ssd.ssd`:
1. `ssd_chunk_state_fwd_kernel` (SSD's, reused): each chunk's own state S_c and its dt A total;
2. PyTorch (`chunked._bucket_states`): for every chunk c and chunk-level j = 1..J the state of c's
   level-j Fenwick bucket, decayed to c's start (a segment tree over the S_c: O(NC) states plus
   NC * J outputs, small next to the tokens);
3. `log_linear_chunk_scan_fwd_kernel`: one program per (chunk, batch * head): the intra-chunk block
   ((C B^T) * exp(segsum a) * lam_t^level(t, s) * dt) x, with level = bit_length(i xor j) computed in
   the kernel, plus sum_j lam_t^(k+j) exp(a_t) C_t . state_j + D x.
T need not be a multiple of the chunk: loads past T are masked to zero, stores past T masked off.

Backward: NOT in Triton. `LogLinearFunction.backward` recomputes the forward with
`redpajama.kernels.log_linear.chunked.log_linear_chunked` under autograd (float32) and differentiates it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from redpajama.kernels.log_linear.chunked import _bucket_states, log_linear_chunked
from redpajama.kernels.log_linear.masks import num_levels
from redpajama.kernels.ssd.ssd import DTYPES, NUM_WARPS, _block, check_ssd_args, ssd_chunk_state_fwd_kernel


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
    i_c, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    i_g = i_h // (H // G)
    NC = tl.cdiv(T, BT)
    o_i = tl.arange(0, BT)
    o_t = (i_c * BT + o_i).to(tl.int64)
    o_n = tl.arange(0, BLOCK_N)
    o_p = tl.arange(0, BLOCK_P)
    m_t = o_t < T
    m_n = o_n < N
    m_p = o_p < P
    i_b64 = i_b.to(tl.int64)

    p_dt = dt + i_b64 * T * H + o_t * H + i_h
    b_dt = tl.load(p_dt, mask=m_t, other=0.0).to(tl.float32)
    b_cs = tl.cumsum(b_dt * tl.load(A + i_h).to(tl.float32), axis=0)

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
        # Chunk NC-1 holds real tokens, so log2 BT + J < num_levels(T) <= L; the clamp only keeps the
        # read inside the row should that ever not hold (the state of an empty bucket is exactly zero).
        i_lv = tl.minimum(LOG2_BT + 1 + j, L - 1)
        b_l = tl.load(p_lam + i_lv, mask=m_t, other=0.0).to(tl.float32)
        i_s = (((i_b64 * NC + i_c) * J + j) * H + i_h) * N * P
        b_h = tl.load(h_lv + i_s + o_n[:, None] * P + o_p[None, :], mask=m_np, other=0.0)
        # (BT, BLOCK_N) @ (BLOCK_N, BLOCK_P) -> (BT, BLOCK_P)
        b_y += tl.dot(b_C, b_h, input_precision=DOT_PREC) * (b_l * b_decay)[:, None]
    b_y += tl.load(D + i_h).to(tl.float32) * b_x
    tl.store(y + o_x, b_y.to(y.dtype.element_ty), mask=m_tp)


def log_linear_fwd(x, dt, A, Bm, Cm, D, lam, chunk_size: int) -> torch.Tensor:
    """Contiguous, checked inputs -> y (B, T, H, P) in x's dtype."""
    b, t, h, p = x.shape
    g, n = Bm.shape[2], Bm.shape[3]
    nc = triton.cdiv(t, chunk_size)
    dev = x.device
    states = torch.empty(b, nc, h, n, p, dtype=torch.float32, device=dev)
    a_last = torch.empty(b, h, nc, dtype=torch.float32, device=dev)
    y = torch.empty_like(x)
    # As in SSD: IEEE float32 products for float32 inputs, TF32 for 16-bit ones.
    prec = "ieee" if x.dtype == torch.float32 else "tf32"
    meta = dict(H=h, G=g, P=p, N=n, BT=chunk_size, BLOCK_N=_block(n), BLOCK_P=_block(p), DOT_PREC=prec)
    ssd_chunk_state_fwd_kernel[(nc, b * h)](x, dt, A, Bm, states, a_last, t, **meta, num_warps=NUM_WARPS)
    levels = (nc - 1).bit_length()
    if levels:
        h_lv = _bucket_states(states, a_last, levels).contiguous()  # (B, NC, J, H, N, P)
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
    return y


class LogLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dt, A, Bm, Cm, D, lam, chunk_size):
        y = log_linear_fwd(x, dt, A, Bm, Cm, D, lam, chunk_size)
        ctx.save_for_backward(x, dt, A, Bm, Cm, D, lam)
        ctx.chunk_size = chunk_size
        return y

    @staticmethod
    def backward(ctx, d_y):
        # Recomputation through the differentiable PyTorch chunked path, in float32.
        inputs = ctx.saved_tensors
        leaves = [t.detach().float().requires_grad_() for t in inputs]
        with torch.enable_grad():
            y = log_linear_chunked(*leaves, chunk_size=ctx.chunk_size)
            grads = torch.autograd.grad(y, leaves, d_y.float(), allow_unused=True)
        grads = [
            torch.zeros_like(t) if g is None else g.to(t.dtype) for g, t in zip(grads, inputs, strict=True)
        ]
        return (*grads, None)


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
    tensors (backward recomputes through the PyTorch chunked path; see the module doc).
    """
    check_ssd_args(x, dt, A, Bm, Cm, D, chunk_size)
    check_lam(x, lam)
    args = [v.contiguous() for v in (x, dt, A, Bm, Cm, D, lam)]
    return LogLinearFunction.apply(*args, chunk_size)
