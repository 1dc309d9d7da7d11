"""Cross-entropy of the output projection, computed in row chunks without storing the logits.

The (tokens x vocab) logits of a 468m step (32768 x 50304) are 3.3 GB in bf16 and twice that in
float32; storing them for backward costs memory and several full passes of HBM traffic. Here each
chunk's logits are formed, turned into its loss and its gradient at once, and freed: forward already
leaves d(hidden) and d(weight), and backward only scales them by the incoming gradient. The same idea
as Liger's fused linear cross-entropy, written with plain matmuls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from redpajama.kernels.cross_entropy import cross_entropy_chunk

# Rows per chunk: 8192 x 50304 float32 logits are 1.6 GB, freed before the next chunk.
DEFAULT_CHUNK_ROWS = 8192


def _loss_and_grad(logits: torch.Tensor, targets: torch.Tensor, scale: float):
    """Summed loss of one chunk and d(loss*scale)/d(logits), both from one float32 softmax."""
    logits = logits.to(_at_least_float32(logits.dtype))
    lse = torch.logsumexp(logits, dim=-1)
    picked = logits.gather(1, targets[:, None]).squeeze(1)
    grad = torch.softmax(logits, dim=-1)
    grad.scatter_add_(1, targets[:, None], torch.full_like(picked[:, None], -1.0))
    return (lse - picked).sum(), grad.mul_(scale)


_compiled_loss_and_grad = None


def _at_least_float32(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def _chunk_kernel(device: torch.device):
    # On CUDA one fused pass over each chunk's logits instead of eager's five; CPU stays eager so the
    # tests need no compiler.
    global _compiled_loss_and_grad
    if device.type != "cuda":
        return _loss_and_grad
    if _compiled_loss_and_grad is None:
        _compiled_loss_and_grad = torch.compile(_loss_and_grad, dynamic=False)
    return _compiled_loss_and_grad


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_rows, use_kernel):
        n = hidden.shape[0]
        device = hidden.device.type
        # Under autocast the matmuls run in its dtype; cast once here and keep autocast out of the
        # way so no operand is cast twice per chunk.
        compute = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
        acc = _at_least_float32(hidden.dtype)
        w = weight.to(compute)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros(weight.shape, dtype=acc, device=weight.device)
        total = torch.zeros((), dtype=acc, device=hidden.device)
        kernel = None if use_kernel and hidden.is_cuda else _chunk_kernel(hidden.device)
        with torch.autocast(device, enabled=False):
            for start in range(0, n, chunk_rows):
                rows = slice(start, start + chunk_rows)
                h = hidden[rows].to(compute)
                if kernel is None:
                    # Our Triton kernel: the loss, and the gradient written over the logits.
                    grad_logits = h @ w.t()
                    total += cross_entropy_chunk(grad_logits, targets[rows], 1.0 / n)
                else:
                    loss_sum, grad_logits = kernel(h @ w.t(), targets[rows], 1.0 / n)
                    total += loss_sum
                    grad_logits = grad_logits.to(compute)
                grad_hidden[rows] = grad_logits @ w
                grad_weight += (grad_logits.t() @ h).to(acc)
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return total / n

    @staticmethod
    def backward(ctx, grad_output):
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_output.to(grad_hidden.dtype), grad_weight * grad_output, None, None, None


def chunked_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    use_kernel: bool = True,
) -> torch.Tensor:
    """Mean cross-entropy of `hidden @ weight.T` against `targets`.

    hidden (N, d) in the compute dtype, weight (V, d), targets (N,) int64 in [0, V). Gradients flow
    to hidden and weight; the logits are never stored.
    """
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(
            f"hidden must be (N, d) and targets (N,), got {tuple(hidden.shape)} and {tuple(targets.shape)}"
        )
    return _ChunkedLinearCrossEntropy.apply(hidden, weight, targets, chunk_rows, use_kernel)


def full_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The plain path (logits materialized): the reference the chunked one is tested against."""
    logits = hidden @ weight.to(hidden.dtype).t()
    return F.cross_entropy(logits.to(_at_least_float32(logits.dtype)), targets)
