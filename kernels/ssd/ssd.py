"""Mamba-2 SSD forward in Triton (three kernels), backward by recomputation through the PyTorch
chunked path.

Kernels, one program per (chunk, batch * head) unless stated:
1. `ssd_chunk_state_fwd_kernel`: the in-chunk cumsum a of dt A (tl.cumsum), the chunk total, and the
   chunk's state S_c = (B * exp(a_end - a) dt)^T x, (N, P) in float32.
2. `ssd_state_passing_fwd_kernel`: one program per (batch * head, block of the N * P state), a
   sequential loop over chunks: h_c = exp(total_{c-1}) h_{c-1} + S_{c-1}; writes the state entering
   every chunk and the final state.
3. `ssd_chunk_scan_fwd_kernel`: intra-chunk output and state-to-output fused: recomputes a,
   y = ((C B^T) * exp(segsum a) * dt) x + exp(a) * (C h_c) + D x.
T need not be a multiple of the chunk: loads past T are masked to zero (dt = 0 neither decays nor
feeds the state) and stores past T are masked off.

Backward: NOT in Triton. `SSDFunction.backward` recomputes the forward with
`redpajama.kernels.ssd.chunked.ssd_chunked` under autograd (float32) and differentiates it; it is
exact but costs a PyTorch chunked forward+backward (memory O(B H T chunk) for the decay blocks).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from redpajama.kernels.ssd.chunked import ssd_chunked

DTYPES = (torch.float16, torch.bfloat16, torch.float32)
NUM_WARPS = 4
# Elements of the flattened (N, P) state per state-passing program.
BLOCK_STATE = 1024


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
    i_c, i_bh = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    i_g = i_h // (H // G)
    NC = tl.cdiv(T, BT)
    o_t = (i_c * BT + tl.arange(0, BT)).to(tl.int64)
    o_n = tl.arange(0, BLOCK_N)
    o_p = tl.arange(0, BLOCK_P)
    m_t = o_t < T
    m_n = o_n < N
    m_p = o_p < P
    i_b64 = i_b.to(tl.int64)

    p_dt = dt + i_b64 * T * H + o_t * H + i_h
    b_dt = tl.load(p_dt, mask=m_t, other=0.0).to(tl.float32)
    b_a = b_dt * tl.load(A + i_h).to(tl.float32)
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
    i_bh, i_k = tl.program_id(0), tl.program_id(1)
    i_b, i_h = i_bh // H, i_bh % H
    i_b64 = i_b.to(tl.int64)
    o_k = i_k * BLOCK + tl.arange(0, BLOCK)
    m_k = o_k < NP
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


def _block(d: int) -> int:
    # tl.dot needs every dimension >= 16.
    return max(16, triton.next_power_of_2(d))


def ssd_fwd(x, dt, A, Bm, Cm, D, chunk_size: int):
    """Contiguous, checked inputs -> (y (B, T, H, P) in x's dtype, final state (B, H, N, P) float32)."""
    b, t, h, p = x.shape
    g, n = Bm.shape[2], Bm.shape[3]
    nc = triton.cdiv(t, chunk_size)
    dev = x.device
    states = torch.empty(b, nc, h, n, p, dtype=torch.float32, device=dev)
    a_last = torch.empty(b, h, nc, dtype=torch.float32, device=dev)
    h_in = torch.empty(b, nc, h, n, p, dtype=torch.float32, device=dev)
    final = torch.empty(b, h, n, p, dtype=torch.float32, device=dev)
    y = torch.empty_like(x)
    # float32 inputs get IEEE float32 products (TF32 would cost ~1e-3 relative); 16-bit inputs are
    # upcast on load and the dots run in TF32, finer than their own rounding.
    prec = "ieee" if x.dtype == torch.float32 else "tf32"
    meta = dict(H=h, G=g, P=p, N=n, BT=chunk_size, BLOCK_N=_block(n), BLOCK_P=_block(p), DOT_PREC=prec)
    ssd_chunk_state_fwd_kernel[(nc, b * h)](x, dt, A, Bm, states, a_last, t, **meta, num_warps=NUM_WARPS)
    block = min(BLOCK_STATE, triton.next_power_of_2(n * p))
    ssd_state_passing_fwd_kernel[(b * h, triton.cdiv(n * p, block))](
        states, a_last, h_in, final, nc, H=h, NP=n * p, BLOCK=block, num_warps=NUM_WARPS
    )
    ssd_chunk_scan_fwd_kernel[(nc, b * h)](x, dt, A, Bm, Cm, D, h_in, y, t, **meta, num_warps=NUM_WARPS)
    return y, final


class SSDFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dt, A, Bm, Cm, D, chunk_size):
        y, final = ssd_fwd(x, dt, A, Bm, Cm, D, chunk_size)
        ctx.save_for_backward(x, dt, A, Bm, Cm, D)
        ctx.chunk_size = chunk_size
        return y, final

    @staticmethod
    def backward(ctx, d_y, d_final):
        # Recomputation through the differentiable PyTorch chunked path, in float32.
        inputs = ctx.saved_tensors
        leaves = [t.detach().float().requires_grad_() for t in inputs]
        with torch.enable_grad():
            y, final = ssd_chunked(*leaves, chunk_size=ctx.chunk_size, return_final_state=True)
            outs, grads_out = [y], [d_y.float() if d_y is not None else torch.zeros_like(y)]
            if d_final is not None:
                outs.append(final)
                grads_out.append(d_final.float())
            grads = torch.autograd.grad(outs, leaves, grads_out, allow_unused=True)
        grads = [
            torch.zeros_like(t) if g is None else g.to(t.dtype) for g, t in zip(grads, inputs, strict=True)
        ]
        return (*grads, None)


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
    (B, H, N, P) float32. Differentiable in all six tensors (backward recomputes through the PyTorch
    chunked path; see the module doc).
    """
    check_ssd_args(x, dt, A, Bm, Cm, D, chunk_size)
    args = [v.contiguous() for v in (x, dt, A, Bm, Cm, D)]
    y, final = SSDFunction.apply(*args, chunk_size)
    return (y, final) if return_final_state else y
