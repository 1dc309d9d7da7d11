"""Load a trained model back from a run folder (its train_config.json and latest checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from redpajama.errors import UserError
from redpajama.training.model import Transformer
from redpajama.training.token_shards import read_index
from redpajama.training.tokenizer import Tokenizer, load_tokenizer
from redpajama.training.trainer.checkpoint import latest_checkpoint
from redpajama.training.trainer.config import TrainConfig
from redpajama.training.trainer.loop import build_model


def load_trained(run: Path, device: str | torch.device = "cpu") -> tuple[Transformer, Tokenizer, TrainConfig]:
    """The run's model (eval mode, on `device`), the tokenizer its data was made with, its config."""
    config_path = run / "train_config.json"
    if not config_path.exists():
        raise UserError(f"{config_path} not found: is {run} a `redpajama train` output folder?")
    config = TrainConfig.from_json(json.loads(config_path.read_text()))
    checkpoint = latest_checkpoint(run / "checkpoints")
    if checkpoint is None:
        raise UserError(
            f"{run / 'checkpoints'} holds no checkpoint", hint="train the run to completion first"
        )
    index = read_index(config.data)
    model = build_model(config, index["vocab_size"])
    payload = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), load_tokenizer(index["tokenizer"]["spec"]), config
