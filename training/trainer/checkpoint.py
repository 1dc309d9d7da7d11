"""Checkpoints that resume a run exactly: model, optimizer, data position, step and RNG states.

Written atomically (temp file + rename) and pointed to by `latest.json`, so a crash while saving
leaves the previous checkpoint in charge. Under FSDP2 the full state is gathered to rank 0, which
writes it; every rank reads the same file back, so a run may resume on another number of ranks.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from redpajama.io.atomic import atomic_path, write_json
from redpajama.training.trainer.distributed import World

LATEST = "latest.json"


def _full_state(model: nn.Module, optimizer: torch.optim.Optimizer, world: World):
    if not world.distributed:
        return model.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    return get_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def save_checkpoint(
    folder: Path, step: int, model, optimizer, loader_state: dict, world: World
) -> Path | None:
    model_state, optim_state = _full_state(model, optimizer, world)
    if not world.is_main:
        return None
    path = folder / f"step-{step:08d}.pt"
    payload = {
        "step": step,
        "model": model_state,
        "optimizer": optim_state,
        "loader": loader_state,
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
    }
    with atomic_path(path) as temp:
        torch.save(payload, temp)
    write_json(folder / LATEST, {"step": step, "file": path.name})
    return path


def latest_checkpoint(folder: Path) -> Path | None:
    pointer = folder / LATEST
    if not pointer.exists():
        return None
    return folder / json.loads(pointer.read_text())["file"]


def load_checkpoint(path: Path, model, optimizer, world: World) -> dict:
    """Restore model and optimizer in place; return the payload (step, loader state)."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if world.distributed:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        set_state_dict(
            model,
            optimizer,
            model_state_dict=payload["model"],
            optim_state_dict=payload["optimizer"],
            options=StateDictOptions(full_state_dict=True),
        )
    else:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["rng"]["torch"])
    np.random.set_state(payload["rng"]["numpy"])
    random.setstate(payload["rng"]["python"])
    return payload
