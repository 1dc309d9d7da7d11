"""SwiGLU activation over a fused gate/up projection: Triton kernels and a torch custom op.

Forward reads gate_up (M, 2H) once and writes silu(gate) * up (M, H). Backward saves only gate_up
and writes d_gate_up (M, 2H) in one kernel from d_out (M, H): no activation is kept for backward
and no `cat` of the two gradient halves is needed. The ops are registered with
`torch.library.custom_op` so torch.compile keeps them in its graph (no graph break) as opaque calls.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# Elements of one half-row per program: 1024 16-bit values are 8 per thread at 4 warps (a 16-byte
# load each), enough bytes in flight per SM with many resident programs. One config, no autotune.
BLOCK_H = 1024
NUM_WARPS = 4
DTYPES = (torch.float16, torch.bfloat16, torch.float32)


@triton.jit
def swiglu_fwd_kernel(gate_up, out, H, BLOCK: tl.constexpr):
    # Rows on grid axis 0 (up to 2^31 - 1 programs); axis 1 (limit 65535) only holds H / BLOCK.
    i_m, i_h = tl.program_id(0), tl.program_id(1)
    o_h = i_h * BLOCK + tl.arange(0, BLOCK)
    m_h = o_h < H
    # int64 row offsets: M * 2H passes 2^31 elements at large token counts.
    p_gate = gate_up + i_m.to(tl.int64) * 2 * H + o_h
    b_gate = tl.load(p_gate, mask=m_h, other=0.0).to(tl.float32)
    b_up = tl.load(p_gate + H, mask=m_h, other=0.0).to(tl.float32)
    b_out = b_gate * tl.sigmoid(b_gate) * b_up
    p_out = out + i_m.to(tl.int64) * H + o_h
    tl.store(p_out, b_out.to(p_out.dtype.element_ty), mask=m_h)


@triton.jit
def swiglu_bwd_kernel(d_out, gate_up, d_gate_up, H, BLOCK: tl.constexpr):
    i_m, i_h = tl.program_id(0), tl.program_id(1)
    o_h = i_h * BLOCK + tl.arange(0, BLOCK)
    m_h = o_h < H
    p_gate = gate_up + i_m.to(tl.int64) * 2 * H + o_h
    b_gate = tl.load(p_gate, mask=m_h, other=0.0).to(tl.float32)
    b_up = tl.load(p_gate + H, mask=m_h, other=0.0).to(tl.float32)
    b_do = tl.load(d_out + i_m.to(tl.int64) * H + o_h, mask=m_h, other=0.0).to(tl.float32)
    b_sig = tl.sigmoid(b_gate)
    b_silu = b_gate * b_sig
    # d silu(g)/dg = s + g * s * (1 - s) = s * (1 + g * (1 - s)).
    b_dgate = b_do * b_up * b_sig * (1.0 + b_gate * (1.0 - b_sig))
    b_dup = b_do * b_silu
    p_dgate = d_gate_up + i_m.to(tl.int64) * 2 * H + o_h
    tl.store(p_dgate, b_dgate.to(p_dgate.dtype.element_ty), mask=m_h)
    tl.store(p_dgate + H, b_dup.to(p_dgate.dtype.element_ty), mask=m_h)


def _block(h: int) -> int:
    # A narrow H (tests, tiny models) gets a block its own size instead of 1024 mostly-masked lanes.
    return min(BLOCK_H, triton.next_power_of_2(h))


def swiglu_fwd(gate_up: torch.Tensor) -> torch.Tensor:
    """gate_up (..., 2H) contiguous -> out (..., H), same dtype. Arguments are assumed checked."""
    h = gate_up.shape[-1] // 2
    out = torch.empty((*gate_up.shape[:-1], h), dtype=gate_up.dtype, device=gate_up.device)
    m = out.numel() // h if h else 0
    if m == 0:
        return out
    block = _block(h)
    swiglu_fwd_kernel[(m, triton.cdiv(h, block))](gate_up, out, h, BLOCK=block, num_warps=NUM_WARPS)
    return out


def swiglu_bwd(d_out: torch.Tensor, gate_up: torch.Tensor) -> torch.Tensor:
    """d_out (..., H), gate_up (..., 2H) contiguous -> d_gate_up (..., 2H) in gate_up's dtype.

    d_out is made contiguous: on the training path it is the output of the down projection's
    backward matmul, already contiguous, so this costs nothing there.
    """
    h = gate_up.shape[-1] // 2
    d_out = d_out.contiguous()
    d_gate_up = torch.empty(gate_up.shape, dtype=gate_up.dtype, device=gate_up.device)
    m = d_out.numel() // h if h else 0
    if m == 0:
        return d_gate_up
    block = _block(h)
    swiglu_bwd_kernel[(m, triton.cdiv(h, block))](
        d_out, gate_up, d_gate_up, h, BLOCK=block, num_warps=NUM_WARPS
    )
    return d_gate_up


@torch.library.custom_op("redpajama::swiglu", mutates_args=())
def swiglu_op(gate_up: torch.Tensor) -> torch.Tensor:
    return swiglu_fwd(gate_up)


@swiglu_op.register_fake
def _(gate_up):
    return gate_up.new_empty((*gate_up.shape[:-1], gate_up.shape[-1] // 2))


@torch.library.custom_op("redpajama::swiglu_bwd", mutates_args=())
def swiglu_bwd_op(d_out: torch.Tensor, gate_up: torch.Tensor) -> torch.Tensor:
    return swiglu_bwd(d_out, gate_up)


@swiglu_bwd_op.register_fake
def _(d_out, gate_up):
    return torch.empty_like(gate_up, memory_format=torch.contiguous_format)


def _setup_context(ctx, inputs, output):
    (gate_up,) = inputs
    ctx.save_for_backward(gate_up)


def _backward(ctx, d_out):
    (gate_up,) = ctx.saved_tensors
    return swiglu_bwd_op(d_out, gate_up)


swiglu_op.register_autograd(_backward, setup_context=_setup_context)


def check_gate_up(gate_up: torch.Tensor) -> None:
    """Raise a ValueError/TypeError naming the offending numbers when gate_up is not usable."""
    if not isinstance(gate_up, torch.Tensor):
        raise TypeError(f"gate_up must be a torch.Tensor, got {type(gate_up).__name__}")
    if gate_up.dim() < 1 or gate_up.shape[-1] % 2 != 0 or gate_up.shape[-1] == 0:
        raise ValueError(
            f"gate_up must be (..., 2H) with an even, non-zero last dim, got {tuple(gate_up.shape)}"
        )
    if gate_up.dtype not in DTYPES:
        raise TypeError(f"gate_up must be float16, bfloat16 or float32, got {gate_up.dtype}")
    if not gate_up.is_contiguous():
        raise ValueError(
            f"gate_up must be contiguous, got shape {tuple(gate_up.shape)} strides {gate_up.stride()}"
        )


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up, gate = gate_up[..., :H], up = gate_up[..., H:]; math in float32.

    gate_up: (..., 2H) contiguous, float16/bfloat16/float32 (the fused gate/up projection's output).
    Returns: (..., H) contiguous, gate_up's dtype. Differentiable (saves gate_up only; the backward
    writes d_gate_up (..., 2H) in one kernel). Safe inside torch.compile(fullgraph=True).
    """
    check_gate_up(gate_up)
    return swiglu_op(gate_up)
