"""Learning rate: linear warmup, then cosine decay to min_lr_ratio * lr (the paper's schedule)."""

from __future__ import annotations

import math


def learning_rate(
    step: int, total_steps: int, lr: float, warmup_fraction: float, min_lr_ratio: float
) -> float:
    """The rate for optimizer step `step` (0-based) of `total_steps`."""
    warmup = max(1, round(warmup_fraction * total_steps)) if warmup_fraction > 0 else 0
    if step < warmup:
        return lr * (step + 1) / warmup
    span = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    floor = lr * min_lr_ratio
    return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
