"""Curated folders of real text (Tiny Shakespeare) and the tiny training run of the training tests."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.training.trainer.config import TrainConfig
from redpajama.training.trainer.metrics import read_metrics

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write_curated(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({"id": [f"doc-{i:05d}" for i in range(len(texts))], "text": texts})
    pq.write_table(table, folder / "part-0.parquet")
    return folder


def shakespeare_documents() -> list[str]:
    text = (SHARED_DATA / "lm-tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    # One document per speech: blank lines separate them.
    return [part.strip() for part in text.split("\n\n") if part.strip()]


def tiny_run(tokens: Path, out: Path, **overrides) -> TrainConfig:
    """The tests' CPU run: the tiny model, 8 x 64 tokens a step, 40 steps, a loss logged every step."""
    base = dict(
        data=tokens,
        out=out,
        model="tiny",
        seq_len=64,
        batch_size=8,
        max_steps=40,
        lr=3e-3,
        log_every=1,
        seed=0,
    )
    return TrainConfig(**{**base, **overrides})


def losses(out: Path) -> dict[int, float]:
    """Step -> training loss of the run written to `out`."""
    return {r["step"]: r["loss"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r}


def first_and_last_loss(out: Path, steps: int) -> tuple[float, float]:
    """Mean loss of steps 1-3 and of the last three of `steps`: the tests' "the loss falls" pair."""
    curve = losses(out)
    assert len(curve) == steps, f"{len(curve)} logged losses, expected {steps}"
    return sum(curve[s] for s in (1, 2, 3)) / 3, sum(curve[s] for s in range(steps - 2, steps + 1)) / 3
