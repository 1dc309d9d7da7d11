"""Run the chosen evaluation tasks on one model and return (and optionally write) results.json.

Layout of the results (`aggregate.comparison_table` reads it):

    {"tasks": {"held_out": {...}, "wikitext2": {...}, "blimp": {...}, "piqa": {...}},
     "settings": {"tasks": [...], "limits": {...}, "max_len": ..., "batch_size": ..., "device": ...},
     "seconds": {"wikitext2": ..., ...}}

Accuracies are fractions in [0, 1] as each task returns them; `aggregate` turns them into the
paper's percent scores. `held_out` is present only when held-out windows are given.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from redpajama.errors import UserError
from redpajama.io import atomic
from redpajama.training.evaluation import blimp, perplexity, piqa
from redpajama.training.evaluation.scoring import Model, TokenizerLike

TASKS = ("wikitext2", "blimp", "piqa")


@dataclass(kw_only=True, frozen=True)
class Limits:
    """How much of each benchmark to run; None runs it whole. Limited runs take the first items."""

    wikitext_documents: int | None = None
    blimp_per_paradigm: int | None = None
    piqa: int | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserError(f"evaluation limit {field.name} must be a positive integer, got {value!r}")


def run(
    model: Model,
    tokenizer: TokenizerLike,
    *,
    tasks: Iterable[str] = TASKS,
    limits: Limits | None = None,
    max_len: int = 1024,
    batch_size: int = 16,
    wikitext_split: str = "test",
    blimp_paradigms: list[str] | None = None,
    held_out_windows: Iterable[torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    out_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Evaluate `model` on `tasks` (any of "wikitext2", "blimp", "piqa") and held-out windows if given.

    `max_len` is the model's input length. Writes the results to `out_path` atomically when given.
    """
    tasks = _check_tasks(tasks)
    limits = limits or Limits()
    shared: dict[str, Any] = {"max_len": max_len, "batch_size": batch_size, "device": device}
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "wikitext2": lambda: perplexity.wikitext2(
            model,
            tokenizer,
            wikitext_split,
            max_documents=limits.wikitext_documents,
            data_dir=data_dir,
            **shared,
        ),
        "blimp": lambda: blimp.evaluate(
            model,
            tokenizer,
            paradigms=blimp_paradigms,
            limit_per_paradigm=limits.blimp_per_paradigm,
            data_dir=data_dir,
            **shared,
        ),
        "piqa": lambda: piqa.evaluate(model, tokenizer, limit=limits.piqa, data_dir=data_dir, **shared),
    }
    if held_out_windows is not None:
        runners = {"held_out": lambda: perplexity.held_out(model, held_out_windows, device=device), **runners}
        tasks = ("held_out", *tasks)
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for task in tasks:
        started = time.perf_counter()
        results[task] = runners[task]()
        seconds[task] = round(time.perf_counter() - started, 3)
    report = {
        "tasks": results,
        "settings": {
            "tasks": list(tasks),
            "limits": dataclasses.asdict(limits),
            "max_len": max_len,
            "batch_size": batch_size,
            "wikitext_split": wikitext_split,
            "blimp_paradigms": blimp_paradigms,
            "device": str(device),
        },
        "seconds": seconds,
    }
    if out_path is not None:
        atomic.write_json(out_path, report)
    return report


def _check_tasks(tasks: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(tasks))
    unknown = [task for task in chosen if task not in TASKS]
    if unknown:
        raise UserError(
            f"unknown evaluation task(s) {', '.join(unknown)}", hint=f"choose from {', '.join(TASKS)}"
        )
    if not chosen:
        raise UserError("no evaluation tasks chosen", hint=f"choose from {', '.join(TASKS)}")
    return chosen
