"""Held-out loss during and after training: the training objective on the tokenize stage's held-out split."""

from __future__ import annotations

import torch

from redpajama.training.loader import held_out_batches
from redpajama.training.token_shards import HELD_OUT, TokenShards
from redpajama.training.trainer.config import TrainConfig
from redpajama.training.trainer.distributed import World, mean_across_ranks


def held_out_loss(model, config: TrainConfig, world: World, autocast) -> float | None:
    """Mean loss over the first `eval_batches` held-out batches; None when the split is too short.

    Every rank evaluates the same batches (FSDP needs every rank in each forward); the mean across
    ranks then only guards against rounding differences.
    """
    shards = TokenShards.open(config.data, split=HELD_OUT)
    if shards.sequences(config.seq_len) == 0:
        return None
    was_training = model.training
    model.eval()
    total, rows = torch.zeros((), device=world.device, dtype=torch.float64), 0
    with torch.no_grad():
        for inputs, targets in held_out_batches(
            shards, config.seq_len, config.batch_size, config.eval_batches
        ):
            with autocast:
                loss = model(inputs.to(world.device), targets.to(world.device))
            total += loss.double() * len(inputs)
            rows += len(inputs)
    model.train(was_training)
    return float(mean_across_ranks(total / rows, world))
