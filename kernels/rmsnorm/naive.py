"""RMSNorm and residual-add + RMSNorm in plain PyTorch: the ground truth the Triton kernels are tested against."""

from __future__ import annotations

import torch


def rmsnorm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """x / rms(x) * weight over the last dim; normalized in float32, returned in x's dtype.

    The math of `redpajama.training.model.layers.RMSNorm.forward`, rounding order included: the
    float32 normalized row is rounded to x's dtype, then multiplied by weight cast to x's dtype.
    Autograd gives the backward.
    """
    normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)
    return normed.type_as(x) * weight.type_as(x)


def add_rmsnorm(
    x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """h = x + y (in x's dtype, as PyTorch adds it) and rmsnorm(h, weight, eps): the residual stream
    and the next block's normalized input."""
    h = x + y
    return h, rmsnorm(h, weight, eps)
