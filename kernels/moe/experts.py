"""MoE experts over an expert-major assignment list: host functions, torch custom ops, public function.

    out[t] = sum over assignments a with token_indices[a] == t of
             scores[a] * (silu(h_a[:n]) * h_a[n:]) @ w2[e],   h_a = x[t] @ w1[e],
where e is the expert owning row a (expert_offsets[e] <= a < expert_offsets[e+1]); the same
function as `naive.expert_outputs`, differentiable in x, w1, w2 and scores.

Kernels (SonicMoE's design, `grouped_gemm.py` forward, `grouped_gemm_bwd.py` backward):
- forward: up projection with the gather of x fused and SwiGLU in the epilogue (writes H, A); down
  projection scaled by the scores (writes Y (M, d), transient); a combine kernel sums each token's
  rows of Y.
- backward: saved are x, H and the routing only (no tensor of size M * d; see REFERENCE C.2).
  dA' = dOut[t] @ w2[e]^T (gather of dOut fused, float32, transient), then a row pass for dH and
  dScores (A recomputed from H, scaled by the scores into a transient (M, n) buffer for dW2), dW2
  and dW1 per expert (gathers fused), dX per assignment then the same combine.

Reduction over a token's K assignments (forward out, backward dX): deterministic and atomic-free.
Each assignment's row is written to an (M, d) buffer, then `moe_combine_kernel` sums the rows of
each token in ascending assignment order, found through a stable sort of token_indices
(`token_order`). Bit-identical results from run to run, at the cost of writing and re-reading one
(M, d) buffer (transient, freed before the op returns). dScores is one sum over each whole row
of n in the row pass, also deterministic.

Tile map (`tile_map.py`): row-tile programs work on BLOCK_M rows of one expert. The map tile ->
(expert, first row) is built on the offsets' device by one small kernel, with NO device-to-host
sync: the grid is the upper bound M // BLOCK_M + min(E, M) tiles, the real tiles come first and the
at most E padding tiles carry expert index E, so their programs return on their first load: no
program computes an empty or partly foreign tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton

from redpajama.kernels.moe.grouped_gemm import moe_combine_kernel, moe_down_proj_kernel, moe_up_proj_kernel
from redpajama.kernels.moe.grouped_gemm_bwd import (
    moe_down_bwd_kernel,
    moe_dw1_kernel,
    moe_dw2_kernel,
    moe_dx_kernel,
    moe_swiglu_bwd_kernel,
)
from redpajama.kernels.moe.small_int_sort import group_ids
from redpajama.kernels.moe.tile_map import tile_map

DTYPES = (torch.float16, torch.bfloat16, torch.float32)


@dataclass(frozen=True)
class Config:
    """One tile configuration (no autotuning). block_m: rows of a GEMM tile (assignments in the
    row-tile kernels, weight rows in the weight-gradient kernels); block_n: output columns;
    block_k: the reduction step; block_d: columns per program of the combine kernel;
    swiglu_block: elements per program of the SwiGLU backward, in whole rows of n (at least one)."""

    block_m: int
    block_n: int
    block_k: int
    num_warps: int
    num_stages: int
    block_d: int
    combine_warps: int
    swiglu_block: int


# H100/H200 class GPUs: 128 x 128 output tiles, 64-wide reduction steps, 3 pipeline stages (the up
# projection's two weight blocks and the x block are 48 KB of shared memory per stage in bf16).
# The combine moves 512 columns per program: 8 bf16 values (16 bytes) per thread at 2 warps; the
# SwiGLU backward 1024 elements (4 rows at n = 256) at 4 warps: 64 registers a thread, so 8 programs
# an SM keep enough loads in flight for a pass that only moves memory (16 rows took 219 registers,
# 2 programs an SM; offline ptxas for sm_90a).
GPU_CONFIG = Config(
    block_m=128,
    block_n=128,
    block_k=64,
    num_warps=8,
    num_stages=3,
    block_d=512,
    combine_warps=2,
    swiglu_block=1024,
)
# Triton's CPU interpreter (tests): small tiles so that tiny awkward shapes span several tiles.
INTERPRETER_CONFIG = Config(
    block_m=16,
    block_n=16,
    block_k=16,
    num_warps=1,
    num_stages=1,
    block_d=16,
    combine_warps=1,
    swiglu_block=64,
)


def config_for(device: torch.device) -> Config:
    return GPU_CONFIG if device.type == "cuda" else INTERPRETER_CONFIG


def _precision(dtype: torch.dtype) -> str:
    # float32 inputs get exact float32 products (tests compare at 1e-5; TF32 would give ~1e-3);
    # the setting does not apply to 16-bit inputs.
    return "ieee" if dtype == torch.float32 else "tf32"


def token_order(token_indices: torch.Tensor, num_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The token -> assignment index of the combine: (order (M,), token_start (T+1,)), int64.

    Assignments of token t are order[token_start[t] .. token_start[t+1]-1], in ascending assignment
    order (a stable sort, on 16-bit keys where T allows: `small_int_sort`), so each token's sum has
    one fixed order. One sort of M integers and a searchsorted of T+1; no host sync.
    """
    _, order, token_start = group_ids(token_indices, num_tokens)
    return order, token_start


def _combine(
    rows: torch.Tensor, order: torch.Tensor, token_start: torch.Tensor, out: torch.Tensor, cfg: Config
):
    """out (T, d) = per-token sums of rows (M, d) (see `token_order`)."""
    t, d = out.shape
    block = min(cfg.block_d, triton.next_power_of_2(d))
    moe_combine_kernel[(t, triton.cdiv(d, block))](
        rows, order, token_start, out, d, BLOCK_D=block, num_warps=cfg.combine_warps
    )


def moe_experts_fwd(
    x: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    token_indices: torch.Tensor,
    expert_offsets: torch.Tensor,
    scores: torch.Tensor,
    cfg: Config | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(out (T, d), H (M, 2n)), both x's dtype. Arguments are assumed checked (see `moe_experts`).
    `cfg` overrides the tiles (benchmarks/moe_experts.py --sweep); None takes `config_for`."""
    t, d = x.shape
    e, _, n2 = w1.shape
    n = n2 // 2
    m = token_indices.shape[0]
    dev = x.device
    h = torch.empty((m, n2), dtype=x.dtype, device=dev)
    out = torch.empty((t, d), dtype=x.dtype, device=dev)
    if t == 0:
        return out, h
    if m == 0:
        return out.zero_(), h
    cfg = cfg or config_for(dev)
    prec = _precision(x.dtype)
    tile_expert, tile_row = tile_map(expert_offsets, m, cfg.block_m)
    num_tiles = tile_expert.shape[0]
    gemm = dict(
        BLOCK_M=cfg.block_m,
        BLOCK_N=cfg.block_n,
        BLOCK_K=cfg.block_k,
        PRECISION=prec,
        num_warps=cfg.num_warps,
        num_stages=cfg.num_stages,
    )
    a = torch.empty((m, n), dtype=x.dtype, device=dev)
    nb_n = triton.cdiv(n, cfg.block_n)
    moe_up_proj_kernel[(num_tiles * nb_n,)](
        x, w1, token_indices, tile_expert, tile_row, expert_offsets, h, a, e, d, n, nb_n, **gemm
    )
    y = torch.empty((m, d), dtype=x.dtype, device=dev)
    nb_d = triton.cdiv(d, cfg.block_n)
    moe_down_proj_kernel[(num_tiles * nb_d,)](
        a, w2, scores, tile_expert, tile_row, expert_offsets, y, e, d, n, nb_d, **gemm
    )
    del a
    order, token_start = token_order(token_indices, t)
    _combine(y, order, token_start, out, cfg)
    return out, h


def moe_experts_bwd(
    d_out: torch.Tensor,
    x: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    h: torch.Tensor,
    token_indices: torch.Tensor,
    expert_offsets: torch.Tensor,
    scores: torch.Tensor,
    cfg: Config | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx (T, d), dw1 (E, d, 2n), dw2 (E, n, d), dscores (M,)) from d_out (T, d) and the saved tensors.

    d_out is made contiguous in x's dtype (on the training path it already is). `cfg` as in
    `moe_experts_fwd`.
    """
    t, d = x.shape
    e, _, n2 = w1.shape
    n = n2 // 2
    m = token_indices.shape[0]
    dev = x.device
    d_out = d_out.to(x.dtype).contiguous()
    dx = torch.empty((t, d), dtype=x.dtype, device=dev)
    dw1 = torch.empty(w1.shape, dtype=w1.dtype, device=dev)
    dw2 = torch.empty(w2.shape, dtype=w2.dtype, device=dev)
    if m == 0:
        return dx.zero_(), dw1.zero_(), dw2.zero_(), torch.zeros_like(scores)
    cfg = cfg or config_for(dev)
    gemm = dict(
        BLOCK_M=cfg.block_m,
        BLOCK_N=cfg.block_n,
        BLOCK_K=cfg.block_k,
        PRECISION=_precision(x.dtype),
        num_warps=cfg.num_warps,
        num_stages=cfg.num_stages,
    )
    tile_expert, tile_row = tile_map(expert_offsets, m, cfg.block_m)
    num_tiles = tile_expert.shape[0]

    nb_n = triton.cdiv(n, cfg.block_n)
    da = torch.empty((m, n), dtype=torch.float32, device=dev)  # dOut[t] @ w2[e]^T (transient)
    moe_down_bwd_kernel[(num_tiles * nb_n,)](
        d_out, w2, token_indices, tile_expert, tile_row, expert_offsets, da, e, d, n, nb_n, **gemm
    )
    dh = torch.empty((m, n2), dtype=x.dtype, device=dev)
    d_scores = torch.empty((m,), dtype=torch.float32, device=dev)
    a = torch.empty((m, n), dtype=x.dtype, device=dev)  # scores * A recomputed once, for dW2 (transient)
    bn_rows = triton.next_power_of_2(n)
    rows = max(1, cfg.swiglu_block // bn_rows)
    moe_swiglu_bwd_kernel[(triton.cdiv(m, rows),)](
        da,
        h,
        scores,
        dh,
        d_scores,
        a,
        m,
        n,
        BLOCK_R=rows,
        BLOCK_N=bn_rows,
        num_warps=4,
    )
    del da
    d_scores = d_scores.to(scores.dtype)

    nb_nm, nb_dn = triton.cdiv(n, cfg.block_m), triton.cdiv(d, cfg.block_n)
    moe_dw2_kernel[(e * nb_nm * nb_dn,)](
        d_out, a, token_indices, expert_offsets, dw2, d, n, nb_nm, nb_dn, **gemm
    )
    del a
    nb_dm, nb_c = triton.cdiv(d, cfg.block_m), triton.cdiv(n2, cfg.block_n)
    moe_dw1_kernel[(e * nb_dm * nb_c,)](x, dh, token_indices, expert_offsets, dw1, d, n, nb_dm, nb_c, **gemm)

    dx_rows = torch.empty((m, d), dtype=x.dtype, device=dev)
    moe_dx_kernel[(num_tiles * nb_dn,)](
        dh, w1, tile_expert, tile_row, expert_offsets, dx_rows, e, d, n, nb_dn, **gemm
    )
    del dh
    # The forward built this same order; keeping it would add 8 bytes per assignment to the saved
    # state (past REFERENCE C.2's 16 bytes of routing per assignment), so it is sorted again here.
    order, token_start = token_order(token_indices, t)
    _combine(dx_rows, order, token_start, dx, cfg)
    return dx, dw1, dw2, d_scores


# Custom ops: torch.compile keeps them in its graph (no graph break) as opaque calls. The forward
# returns H as a second, non-differentiable output so that autograd can save it.
@torch.library.custom_op("redpajama::moe_experts", mutates_args=())
def moe_experts_op(
    x: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    token_indices: torch.Tensor,
    expert_offsets: torch.Tensor,
    scores: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    return moe_experts_fwd(x, w1, w2, token_indices, expert_offsets, scores)


@moe_experts_op.register_fake
def _(x, w1, w2, token_indices, expert_offsets, scores):
    return x.new_empty(x.shape), x.new_empty((token_indices.shape[0], w1.shape[2]))


@torch.library.custom_op("redpajama::moe_experts_bwd", mutates_args=())
def moe_experts_bwd_op(
    d_out: torch.Tensor,
    x: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    h: torch.Tensor,
    token_indices: torch.Tensor,
    expert_offsets: torch.Tensor,
    scores: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return moe_experts_bwd(d_out, x, w1, w2, h, token_indices, expert_offsets, scores)


@moe_experts_bwd_op.register_fake
def _(d_out, x, w1, w2, h, token_indices, expert_offsets, scores):
    return (
        x.new_empty(x.shape),
        w1.new_empty(w1.shape),
        w2.new_empty(w2.shape),
        scores.new_empty(scores.shape),
    )


def _setup_context(ctx, inputs, output):
    x, w1, w2, token_indices, expert_offsets, scores = inputs
    _, h = output
    # The whole saved state: x, H and the routing (w1, w2 are the parameters themselves).
    ctx.save_for_backward(x, w1, w2, h, token_indices, expert_offsets, scores)
    ctx.mark_non_differentiable(h)
    ctx.set_materialize_grads(False)  # no zero-filled (M, 2n) gradient for H


def _backward(ctx, d_out, _d_h):
    if d_out is None:
        return None, None, None, None, None, None
    x, w1, w2, h, token_indices, expert_offsets, scores = ctx.saved_tensors
    dx, dw1, dw2, d_scores = moe_experts_bwd_op(d_out, x, w1, w2, h, token_indices, expert_offsets, scores)
    return dx, dw1, dw2, None, None, d_scores


moe_experts_op.register_autograd(_backward, setup_context=_setup_context)


def check_arguments(x, w1, w2, token_indices, expert_offsets, scores) -> None:
    """Raise TypeError/ValueError naming the offending numbers; checks shapes, dtypes, devices and
    layout only (no values: that needs a device sync, see `check_routing_values`)."""
    named = dict(x=x, w1=w1, w2=w2, token_indices=token_indices, expert_offsets=expert_offsets, scores=scores)
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if x.dim() != 2 or x.shape[1] == 0:
        raise ValueError(f"x must be (T, d) with d > 0, got {tuple(x.shape)}")
    t, d = x.shape
    if w1.dim() != 3 or w1.shape[0] == 0 or w1.shape[1] != d or w1.shape[2] == 0 or w1.shape[2] % 2:
        raise ValueError(
            f"w1 must be (E, d, 2n) with E > 0, d = {d} and an even 2n > 0, got {tuple(w1.shape)}"
        )
    e, n = w1.shape[0], w1.shape[2] // 2
    if tuple(w2.shape) != (e, n, d):
        raise ValueError(
            f"w2 must be (E, n, d) = {(e, n, d)} to match w1 {tuple(w1.shape)}, got {tuple(w2.shape)}"
        )
    if x.dtype not in DTYPES:
        raise TypeError(f"x must be float16, bfloat16 or float32, got {x.dtype}")
    if w1.dtype != x.dtype or w2.dtype != x.dtype:
        raise TypeError(f"w1 and w2 must have x's dtype {x.dtype}, got {w1.dtype} and {w2.dtype}")
    if token_indices.dim() != 1 or token_indices.dtype != torch.int64:
        raise TypeError(
            f"token_indices must be a 1-D int64 tensor, got {token_indices.dtype} of shape {tuple(token_indices.shape)}"
        )
    m = token_indices.shape[0]
    if expert_offsets.dtype != torch.int64 or tuple(expert_offsets.shape) != (e + 1,):
        raise ValueError(
            f"expert_offsets must be int64 of shape (E+1,) = ({e + 1},), got {expert_offsets.dtype} "
            f"of shape {tuple(expert_offsets.shape)}"
        )
    if tuple(scores.shape) != (m,) or scores.dtype not in DTYPES:
        raise ValueError(
            f"scores must be a float (M,) = ({m},) tensor (one per assignment), got {scores.dtype} "
            f"of shape {tuple(scores.shape)}"
        )
    for name, value in named.items():
        if value.device != x.device:
            raise ValueError(f"{name} is on {value.device} but x on {x.device}")
        if not value.is_contiguous():
            raise ValueError(
                f"{name} must be contiguous, got shape {tuple(value.shape)} strides {value.stride()}"
            )


def check_routing_values(token_indices: torch.Tensor, expert_offsets: torch.Tensor, num_tokens: int) -> None:
    """Raise ValueError unless offsets[0] = 0, offsets[E] = M, offsets non-decreasing and every token
    index in [0, T). Reads the values: one device sync (and a graph break under torch.compile)."""
    m = token_indices.shape[0]
    # The offsets and the token range come back together: one sync.
    bounds = torch.stack([token_indices.min(), token_indices.max()]) if m else token_indices.new_zeros(2)
    *offsets, lo, hi = torch.cat([expert_offsets, bounds]).tolist()
    if offsets[0] != 0 or offsets[-1] != m:
        raise ValueError(
            f"expert_offsets must start at 0 and end at M = {m}, got {offsets[0]} .. {offsets[-1]}"
        )
    steps = [b - a for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    if min(steps) < 0:
        bad = steps.index(min(steps))
        raise ValueError(
            f"expert_offsets must be non-decreasing, got offsets[{bad}] = {offsets[bad]} > "
            f"offsets[{bad + 1}] = {offsets[bad + 1]}"
        )
    if m and (lo < 0 or hi >= num_tokens):
        raise ValueError(f"token_indices must lie in [0, T) = [0, {num_tokens}), got min {lo}, max {hi}")


def moe_experts(
    x: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    token_indices: torch.Tensor,
    expert_offsets: torch.Tensor,
    scores: torch.Tensor,
    *,
    validate: bool = False,
) -> torch.Tensor:
    """SwiGLU experts over an expert-major assignment list, summed per token with the router scores.

    x: (T, d) float16/bfloat16/float32, contiguous (the tokens).
    w1: (E, d, 2n) in x's dtype, [gate | up] along the last dim; w2: (E, n, d) in x's dtype.
    token_indices: (M,) int64, the token of each assignment, sorted expert-major: expert e owns rows
        expert_offsets[e] .. expert_offsets[e+1]-1 (any token order within an expert).
    expert_offsets: (E+1,) int64, offsets[0] = 0, non-decreasing, offsets[E] = M.
    scores: (M,) float (normally float32), the router weight of each assignment.
    validate: also check the routing's values (offsets, token range): one device sync. Without it,
        out-of-range values are not detected (a token index >= T reads out of bounds).
    Returns: out (T, d) in x's dtype, out[t] = sum over a with token_indices[a] == t of
        scores[a] * (silu(h_a[:n]) * h_a[n:]) @ w2[e], h_a = x[t] @ w1[e]; math in float32. Tokens
        without assignments get zeros. Differentiable in x, w1, w2 and scores; saves x, H = the
        (M, 2n) pre-activation and the routing only. Deterministic (no atomics). Safe inside
        torch.compile(fullgraph=True) when validate is False.
    """
    check_arguments(x, w1, w2, token_indices, expert_offsets, scores)
    if validate:
        check_routing_values(token_indices, expert_offsets, x.shape[0])
    out, _ = moe_experts_op(x, w1, w2, token_indices, expert_offsets, scores)
    return out
