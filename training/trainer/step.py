"""One optimizer step: the unit the training loop repeats and the throughput benchmark times."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def train_step(
    model, optimizer, micro_batches: Iterable[tuple[torch.Tensor, torch.Tensor]], autocast, grad_clip: float
):
    """Accumulate gradients over the micro-batches (already on the device), clip, step.

    Returns the step's mean loss and the pre-clip gradient norm as device tensors: reading them
    forces a device sync, which the caller does only when it logs.
    """
    micro_batches = list(micro_batches)
    step_loss = None
    for inputs, targets in micro_batches:
        with autocast:
            loss = model(inputs, targets) / len(micro_batches)
        loss.backward()
        # A copy, not the output itself: under CUDA graphs the next replay overwrites outputs.
        step_loss = loss.detach().clone() if step_loss is None else step_loss + loss.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return step_loss, grad_norm
