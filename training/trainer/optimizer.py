"""AdamW with weight decay on matrices only (norm gains are not decayed), fused kernels on CUDA."""

from __future__ import annotations

import torch
from torch import nn

from redpajama.training.trainer.config import TrainConfig


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    on_cuda = params[0].device.type == "cuda"
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
        fused=on_cuda,
    )
