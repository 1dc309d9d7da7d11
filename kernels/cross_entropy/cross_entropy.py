"""Cross-entropy of a chunk of logits: loss sum and the logits' gradient, in place, in one kernel.

The chunked linear cross-entropy forms (rows x vocab) logits one chunk at a time; this kernel turns
them into the summed loss and overwrites them with d(loss * scale)/d(logits) in their own dtype, so
no float32 copy of the chunk and no separate down-cast pass exist. Each program owns one row and
reads it twice: pass 1 keeps a running max and sum of exp (an online logsumexp), pass 2 writes (softmax - onehot(target)) * scale over the row. A row
of a 50k vocabulary is 100 KB in bf16, so pass 2's re-read largely hits L2.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# 4096 values of a row per step: 16 per thread at 8 warps (two 16-byte loads of bf16). One config.
BLOCK_V = 4096
NUM_WARPS = 8
DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# Start value of the running max: finite, so exp(m_old - m_new) is 0 rather than exp(-inf + inf) = NaN
# when a block holds only -inf logits. A tl.constexpr: jit code may read no other globals.
_MIN_FINITE = tl.constexpr(-3.0e38)


@triton.jit
def cross_entropy_kernel(logits, targets, loss, scale, V, s_tgt, BLOCK: tl.constexpr):
    i_n = tl.program_id(0).to(tl.int64)
    p_row = logits + i_n * V
    i_tgt = tl.load(targets + i_n * s_tgt)
    # An out-of-range target reads nothing and makes this row's loss NaN instead of faulting; the
    # host does not check targets (that would cost a device sync per chunk).
    m_tgt = (i_tgt >= 0) & (i_tgt < V)
    # The target's logit, read before pass 2 overwrites the row.
    b_tgt = tl.load(p_row + i_tgt, mask=m_tgt, other=float("nan")).to(tl.float32)

    # Pass 1: running max m and sum s of exp(x - m) over the row (online logsumexp). Block-wide
    # max/sum reductions keep exp at one per element: a per-lane running max would need a second
    # exp per element for the rescale, and exp (not memory) would then bound the H200's pass.
    m = tl.full([], _MIN_FINITE, dtype=tl.float32)
    s = tl.zeros([], dtype=tl.float32)
    for i_v in range(0, V, BLOCK):
        o_v = i_v + tl.arange(0, BLOCK)
        b_x = tl.load(p_row + o_v, mask=o_v < V, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(b_x, axis=0))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(b_x - m_new), axis=0)
        m = m_new
    lse = m + tl.log(s)
    tl.store(loss + i_n, lse - b_tgt)

    # Pass 2: gradient (softmax - onehot) * scale, over the logits.
    for i_v in range(0, V, BLOCK):
        o_v = i_v + tl.arange(0, BLOCK)
        m_v = o_v < V
        b_x = tl.load(p_row + o_v, mask=m_v, other=0.0).to(tl.float32)
        b_g = tl.exp(b_x - lse) - tl.where(o_v == i_tgt, 1.0, 0.0)
        tl.store(p_row + o_v, (b_g * scale).to(logits.dtype.element_ty), mask=m_v)


def cross_entropy_chunk(logits: torch.Tensor, targets: torch.Tensor, scale: float) -> torch.Tensor:
    """Summed cross-entropy of a chunk; overwrites `logits` with the scaled gradient.

    logits: (N, V) contiguous, float16/bfloat16/float32; OVERWRITTEN in place with
        (softmax(row) - onehot(target)) * scale, computed in float32, stored in logits' dtype.
    targets: (N,) int64 in [0, V), same device (not range-checked on the host: a row with an
        out-of-range target gets a NaN loss).
    scale: Python float multiplying the gradient (e.g. 1 / total_rows for a mean loss).
    Returns: 0-dim float32 tensor, sum over rows of logsumexp(row) - row[target]. No autograd.
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(
            f"logits and targets must be tensors, got {type(logits).__name__}, {type(targets).__name__}"
        )
    if logits.dim() != 2 or targets.dim() != 1 or targets.shape[0] != logits.shape[0]:
        raise ValueError(
            f"logits must be (N, V) and targets (N,), got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if logits.dtype not in DTYPES:
        raise TypeError(f"logits must be float16, bfloat16 or float32, got {logits.dtype}")
    if targets.dtype != torch.int64:
        raise TypeError(f"targets must be int64, got {targets.dtype}")
    if not logits.is_contiguous():
        raise ValueError(
            f"logits must be contiguous, got shape {tuple(logits.shape)} strides {logits.stride()}"
        )
    if targets.device != logits.device:
        raise ValueError(f"targets are on {targets.device} but logits on {logits.device}")
    if logits.requires_grad:
        raise ValueError("logits must not require grad: they are overwritten in place (call under no_grad)")
    n, v = logits.shape
    if v == 0:
        raise ValueError(f"logits must have a non-empty vocabulary dim, got {tuple(logits.shape)}")
    return cross_entropy_chunk_op(logits, targets, float(scale))


# A custom op so that torch.compile keeps the call (and its in-place write) in its graph.
@torch.library.custom_op("redpajama::cross_entropy_chunk", mutates_args=("logits",))
def cross_entropy_chunk_op(logits: torch.Tensor, targets: torch.Tensor, scale: float) -> torch.Tensor:
    n, v = logits.shape
    loss = torch.empty(n, dtype=torch.float32, device=logits.device)
    if n > 0:
        block = min(BLOCK_V, triton.next_power_of_2(v))
        cross_entropy_kernel[(n,)](
            logits, targets, loss, float(scale), v, targets.stride(0), BLOCK=block, num_warps=NUM_WARPS
        )
    return loss.sum()


@cross_entropy_chunk_op.register_fake
def _(logits: torch.Tensor, targets: torch.Tensor, scale: float) -> torch.Tensor:
    return logits.new_empty((), dtype=torch.float32)
