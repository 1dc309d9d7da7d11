"""Cross-entropy loss and logits gradient of one chunk in plain PyTorch: the ground truth.

Same math as `_loss_and_grad` in `redpajama.training.model.loss` (one float32 softmax), with the
kernel's contract: the gradient overwrites the logits in their own dtype.
"""

from __future__ import annotations

import torch


def cross_entropy_chunk(logits: torch.Tensor, targets: torch.Tensor, scale: float) -> torch.Tensor:
    """Return sum over rows of logsumexp(row) - row[target] (0-dim float32); logits <- grad * scale.

    logits (N, V), targets (N,) int64 in [0, V). The gradient (softmax(row) - onehot(target)) * scale
    is computed in float32 and written into logits in their dtype.
    """
    x = logits.float()
    lse = torch.logsumexp(x, dim=-1)
    picked = x.gather(1, targets[:, None]).squeeze(1)
    grad = torch.softmax(x, dim=-1)
    grad.scatter_add_(1, targets[:, None], torch.full_like(picked[:, None], -1.0))
    logits.copy_(grad.mul_(scale))
    return (lse - picked).sum()
