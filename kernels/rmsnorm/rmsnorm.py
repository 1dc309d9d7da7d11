"""RMSNorm and fused residual-add + RMSNorm: Triton kernels and torch custom ops.

A pre-norm transformer block adds its output to the residual stream and normalizes the sum for the
next block: `h = x + y; out = rmsnorm(h)`. In PyTorch that is several passes over (rows, D) (the
add, the float32 upcast, the square-mean, the scale, the weight multiply, each a kernel of its own
outside torch.compile). Here the forward reads x and y once and writes h and out in one kernel, one
program per row (a whole row of up to 8192 values lives in registers, so the row is read once).

The forward also writes rstd (one float32 per row, 4 bytes against 2D bytes of a bf16 row) for
backward, which then needs h, weight and rstd only: no normalized activation is kept. The backward
kernel writes dx (the gradient of both x and y, plus the gradient h gets from its other consumers)
and per-program float32 partial sums of d_weight, which torch adds up: deterministic, no atomics.
Each backward program walks several rows so the partial buffer stays (programs, D), small.

The ops are registered with `torch.library.custom_op`, so torch.compile keeps them in its graph (no
graph break) as opaque calls.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

# Widest row: one program holds a whole row in registers (8192 values are 16 per thread at 16 warps).
MAX_D = 8192
DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# Backward programs per SM on a GPU: each has one row's loads in flight at a time, and an SM needs
# ~30 KB in flight to stream at full bandwidth, hence 16 (8 KB of partials a program at D=1024: 8.6
# MB at 132 SMs, summed in ~3 us). Offline ptxas gives the kernel 55 registers, so only 9 are
# resident and the launch runs in two rounds; it measured 0.086 ms at the 468m shape, 75% of the
# copy bandwidth (docs/benchmarks.md). Neither one round nor more rows in flight a program beat it:
# 8 or 10 programs an SM took 82.8 and 101.5 us, blocks of 2 or 4 rows a step 88.6-97.0 us.
PROGRAMS_PER_SM = 16
# In the CPU interpreter a program costs per program, not per value: a few, each walking many rows.
CPU_PROGRAMS = 4


@triton.jit
def rmsnorm_fwd_kernel(x, y, weight, h, out, rstd, D, eps, HAS_Y: tl.constexpr, BLOCK: tl.constexpr):
    # One row per program; rows on grid axis 0 (up to 2^31 - 1 programs).
    i_m = tl.program_id(0).to(tl.int64)  # int64 row offsets: rows * D passes 2^31 elements
    o_d = tl.arange(0, BLOCK)
    m_d = o_d < D
    b_x = tl.load(x + i_m * D + o_d, mask=m_d, other=0.0)
    if HAS_Y:
        b_y = tl.load(y + i_m * D + o_d, mask=m_d, other=0.0)
        # Added in float32 and rounded once to x's dtype, as PyTorch adds two bf16 tensors.
        b_h = (b_x.to(tl.float32) + b_y.to(tl.float32)).to(x.dtype.element_ty)
        tl.store(h + i_m * D + o_d, b_h, mask=m_d)
    else:
        b_h = b_x
    b_hf = b_h.to(tl.float32)
    # Masked lanes hold 0: they add nothing to the sum of squares.
    b_rstd = tl.rsqrt(tl.sum(b_hf * b_hf, axis=0) / D + eps)
    tl.store(rstd + i_m, b_rstd)
    # The reference's rounding: normalized row rounded to x's dtype, weight cast to x's dtype; their
    # product is formed in float32 and rounded once (PyTorch's bf16 multiply does the same).
    b_w = tl.load(weight + o_d, mask=m_d, other=0.0).to(x.dtype.element_ty).to(tl.float32)
    b_n = (b_hf * b_rstd).to(x.dtype.element_ty).to(tl.float32)
    tl.store(out + i_m * D + o_d, (b_n * b_w).to(out.dtype.element_ty), mask=m_d)


@triton.jit
def rmsnorm_bwd_kernel(
    d_out, d_h, h, weight, rstd, dx, d_w_part, M, D, HAS_DH: tl.constexpr, BLOCK: tl.constexpr
):
    # Program i_p takes rows i_p, i_p + P, i_p + 2P, ... and keeps its d_weight sum in registers.
    i_p = tl.program_id(0)
    n_p = tl.num_programs(0)
    o_d = tl.arange(0, BLOCK)
    m_d = o_d < D
    # The weight the forward multiplied by: cast to h's dtype first, as the reference does.
    b_w = tl.load(weight + o_d, mask=m_d, other=0.0).to(h.dtype.element_ty).to(tl.float32)
    b_dw = tl.zeros([BLOCK], dtype=tl.float32)
    # int64 offset of row i_m, advanced by P rows a step (i_m itself is a plain int in the interpreter).
    o_m = i_p.to(tl.int64) * D
    for i_m in range(i_p, M, n_p):
        b_h = tl.load(h + o_m + o_d, mask=m_d, other=0.0).to(tl.float32)
        b_do = tl.load(d_out + o_m + o_d, mask=m_d, other=0.0).to(tl.float32)
        b_rstd = tl.load(rstd + i_m)
        b_xhat = b_h * b_rstd
        b_g = b_do * b_w
        # d/dh of h * rstd(h) applied to g: rstd * (g - x_hat * mean(g * x_hat)).
        b_dx = b_rstd * (b_g - b_xhat * (tl.sum(b_g * b_xhat, axis=0) / D))
        if HAS_DH:
            b_dx += tl.load(d_h + o_m + o_d, mask=m_d, other=0.0).to(tl.float32)
        tl.store(dx + o_m + o_d, b_dx.to(dx.dtype.element_ty), mask=m_d)
        b_dw += b_do * b_xhat
        o_m += n_p.to(tl.int64) * D
    tl.store(d_w_part + i_p.to(tl.int64) * D + o_d, b_dw, mask=m_d)


def _config(d: int) -> dict:
    # The whole row in one block; warps grow with it so a thread holds at most 16 values of a row
    # (the backward keeps several row-sized float32 temporaries live). D=1024: 8 bf16 per thread at
    # 4 warps, one 16-byte load.
    block = triton.next_power_of_2(d)
    return dict(BLOCK=block, num_warps=4 if block <= 1024 else 8 if block <= 4096 else 16)


@functools.cache
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _programs(rows: int, device: torch.device) -> int:
    if device.type == "cuda":
        cap = PROGRAMS_PER_SM * _sm_count(device.index if device.index is not None else 0)
    else:
        cap = CPU_PROGRAMS
    return max(1, min(rows, cap))


def rmsnorm_fwd(x: torch.Tensor, y: torch.Tensor | None, weight: torch.Tensor, eps: float):
    """x (..., D), optional y like x, weight (D,), all contiguous -> (h, out, rstd).

    h = x + y in x's dtype (None when y is None: h is x), out like x, rstd (...,) float32. Arguments
    are assumed checked.
    """
    # Inductor may hand an allowed fallback (kernels/_inductor.py) inputs in a layout of its choosing:
    # a no-op for the contiguous tensors the public functions were checked with.
    x, weight = x.contiguous(), weight.contiguous()
    y = y.contiguous() if y is not None else None
    d = x.shape[-1]
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    h = torch.empty(x.shape, dtype=x.dtype, device=x.device) if y is not None else None
    rstd = torch.empty(x.shape[:-1], dtype=torch.float32, device=x.device)
    m = x.numel() // d
    if m == 0:
        return h, out, rstd
    # Without y the kernel never touches the y and h pointers (HAS_Y is a constexpr): x stands in.
    rmsnorm_fwd_kernel[(m,)](
        x,
        y if y is not None else x,
        weight,
        h if h is not None else x,
        out,
        rstd,
        d,
        float(eps),
        HAS_Y=y is not None,
        **_config(d),
    )
    return h, out, rstd


def rmsnorm_bwd(
    d_out: torch.Tensor,
    d_h: torch.Tensor | None,
    h: torch.Tensor,
    weight: torch.Tensor,
    rstd: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """d_out like h, optional d_h like h, h (..., D), weight (D,), rstd (...,) -> (dx, d_weight).

    dx = d_h + d(out)/d(h) applied to d_out, in h's dtype (the gradient of both x and y of the fused
    add); d_weight in weight's dtype. Inputs are made contiguous: on the training path they come out
    of matmul backwards and adds, already contiguous, so this costs nothing there.
    """
    d = h.shape[-1]
    d_out, h, weight, rstd = d_out.contiguous(), h.contiguous(), weight.contiguous(), rstd.contiguous()
    d_h = d_h.contiguous() if d_h is not None else None
    dx = torch.empty(h.shape, dtype=h.dtype, device=h.device)
    m = h.numel() // d
    if m == 0:
        return dx, torch.zeros(weight.shape, dtype=weight.dtype, device=weight.device)
    p = _programs(m, h.device)
    d_w_part = torch.empty((p, d), dtype=torch.float32, device=h.device)
    rmsnorm_bwd_kernel[(p,)](
        d_out,
        d_h if d_h is not None else d_out,
        h,
        weight,
        rstd,
        dx,
        d_w_part,
        m,
        d,
        HAS_DH=d_h is not None,
        **_config(d),
    )
    return dx, d_w_part.sum(0).to(weight.dtype)


# The forwards return rstd as a last, non-differentiable output so that autograd can save it.
@torch.library.custom_op("redpajama::rmsnorm", mutates_args=())
def rmsnorm_op(x: torch.Tensor, weight: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    _, out, rstd = rmsnorm_fwd(x, None, weight, eps)
    return out, rstd


@rmsnorm_op.register_fake
def _(x, weight, eps):
    return x.new_empty(x.shape), x.new_empty(x.shape[:-1], dtype=torch.float32)


@torch.library.custom_op("redpajama::add_rmsnorm", mutates_args=())
def add_rmsnorm_op(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return rmsnorm_fwd(x, y, weight, eps)


@add_rmsnorm_op.register_fake
def _(x, y, weight, eps):
    return x.new_empty(x.shape), x.new_empty(x.shape), x.new_empty(x.shape[:-1], dtype=torch.float32)


# One backward op for both: the plain norm is the fused one without d_h.
@torch.library.custom_op("redpajama::rmsnorm_bwd", mutates_args=())
def rmsnorm_bwd_op(
    d_out: torch.Tensor,
    d_h: torch.Tensor | None,
    h: torch.Tensor,
    weight: torch.Tensor,
    rstd: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    return rmsnorm_bwd(d_out, d_h, h, weight, rstd)


@rmsnorm_bwd_op.register_fake
def _(d_out, d_h, h, weight, rstd):
    return h.new_empty(h.shape), weight.new_empty(weight.shape)


def _rmsnorm_setup_context(ctx, inputs, output):
    x, weight, _ = inputs
    _, rstd = output
    ctx.save_for_backward(x, weight, rstd)
    ctx.mark_non_differentiable(rstd)
    ctx.set_materialize_grads(False)


def _rmsnorm_backward(ctx, d_out, _d_rstd):
    if d_out is None:
        return None, None, None
    x, weight, rstd = ctx.saved_tensors
    dx, d_weight = rmsnorm_bwd_op(d_out, None, x, weight, rstd)
    return dx, d_weight, None


rmsnorm_op.register_autograd(_rmsnorm_backward, setup_context=_rmsnorm_setup_context)


def _add_rmsnorm_setup_context(ctx, inputs, output):
    h, _, rstd = output
    ctx.save_for_backward(h, inputs[2], rstd)
    ctx.mark_non_differentiable(rstd)
    # An unused h or out gets None, not a zero-filled (rows, D) gradient to read.
    ctx.set_materialize_grads(False)


def _add_rmsnorm_backward(ctx, d_h, d_out, _d_rstd):
    if d_out is None:
        # Only h was used: it is x + y, and weight took no part in it.
        return d_h, d_h, None, None
    h, weight, rstd = ctx.saved_tensors
    dx, d_weight = rmsnorm_bwd_op(d_out, d_h, h, weight, rstd)
    # h = x + y: x and y get the same gradient.
    return dx, dx, d_weight, None


add_rmsnorm_op.register_autograd(_add_rmsnorm_backward, setup_context=_add_rmsnorm_setup_context)


def check_arguments(x, y, weight, eps) -> None:
    """Raise a ValueError/TypeError naming the offending numbers when the arguments are not usable.

    y is None for the plain norm. weight may differ in dtype from x (float32 parameters on a bf16
    stream under autocast): the kernels cast it to x's dtype, as the reference does.
    """
    named = dict(x=x, weight=weight) if y is None else dict(x=x, y=y, weight=weight)
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if value.dtype not in DTYPES:
            raise TypeError(f"{name} must be float16, bfloat16 or float32, got {value.dtype}")
        if not value.is_contiguous():
            raise ValueError(
                f"{name} must be contiguous, got shape {tuple(value.shape)} strides {value.stride()}"
            )
        if value.device != x.device:
            raise ValueError(f"{name} is on {value.device} but x is on {x.device}")
    if x.dim() < 1 or not 0 < x.shape[-1] <= MAX_D:
        raise ValueError(f"x must be (..., D) with 1 <= D <= {MAX_D}, got {tuple(x.shape)}")
    if y is not None:
        if y.shape != x.shape:
            raise ValueError(f"y must have x's shape {tuple(x.shape)}, got {tuple(y.shape)}")
        if y.dtype != x.dtype:
            raise TypeError(f"y must have x's dtype {x.dtype}, got {y.dtype}")
    if weight.dim() != 1 or weight.shape[0] != x.shape[-1]:
        raise ValueError(
            f"weight must be (D,) = ({x.shape[-1]},) for x of shape {tuple(x.shape)}, got {tuple(weight.shape)}"
        )
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise TypeError(f"eps must be a float, got {type(eps).__name__}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """x / sqrt(mean(x^2, -1) + eps) * weight, normalized in float32; the model's RMSNorm.

    x: (..., D) contiguous, float16/bfloat16/float32, 1 <= D <= 8192.
    weight: (D,) contiguous, float16/bfloat16/float32 (may differ from x's dtype; cast to it).
    Returns: (..., D) contiguous, x's dtype. Differentiable in x and weight (saves x, weight and one
    float32 rstd per row). Safe inside torch.compile(fullgraph=True).
    """
    check_arguments(x, None, weight, eps)
    out, _ = rmsnorm_op(x, weight, float(eps))
    return out


def add_rmsnorm(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """h = x + y and rmsnorm(h, weight, eps) in one pass: the residual add and the next pre-norm.

    x, y: (..., D) contiguous, same shape and dtype (float16/bfloat16/float32), 1 <= D <= 8192.
    weight: (D,) contiguous, float16/bfloat16/float32 (may differ from x's dtype; cast to it).
    Returns (h, out): both (..., D) contiguous in x's dtype; h is added in float32 and rounded once,
    as PyTorch adds. Differentiable in x, y and weight; h and out may both feed the loss (saves h,
    weight and one float32 rstd per row). Safe inside torch.compile(fullgraph=True).
    """
    check_arguments(x, y, weight, eps)
    h, out, _ = add_rmsnorm_op(x, y, weight, float(eps))
    return h, out
