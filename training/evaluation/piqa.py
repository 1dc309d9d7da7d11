"""PIQA (validation, 1838 two-way physical-commonsense questions), scored as lm-eval scores it.

Follows lm-evaluation-harness's `piqa` task (`lm_eval/tasks/piqa/piqa.yaml`) and its
multiple-choice metrics (`ConfigurableTask.process_results`):
- context `"Question: {goal}\\nAnswer:"`, continuations `" " + sol1` and `" " + sol2` (the default
  target delimiter), zero-shot;
- `acc`: the choice with the larger log-likelihood is the prediction;
- `acc_norm`: each log-likelihood is divided by its choice's length in *characters* (`len(sol)`,
  Python string length of the choice without the delimiter; lm-eval's `completion_len`), which the
  RedPajama-V2 paper reports for PIQA (REFERENCE A.6.2);
- ties go to the first choice (numpy's argmax), and the stderr is the sample standard deviation
  of the 0/1 outcomes over sqrt(n), as lm-eval's `mean_stderr`.
Labels come from the aligned `valid-labels.lst`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from redpajama.errors import UserError
from redpajama.training.evaluation import find_data
from redpajama.training.evaluation.scoring import Model, TokenizerLike, encode_pairs, loglikelihoods

PIQA_FOLDER = "bench-piqa-valid"
PIQA_QUESTIONS = "valid.jsonl"
PIQA_LABELS = "valid-labels.lst"
TARGET_DELIMITER = " "


@dataclass(frozen=True, slots=True)
class PiqaItem:
    goal: str
    solutions: tuple[str, str]
    label: int  # index of the right solution


def context_for(item: PiqaItem) -> str:
    return f"Question: {item.goal}\nAnswer:"


def load_piqa(*, limit: int | None = None, data_dir: str | os.PathLike[str] | None = None) -> list[PiqaItem]:
    """The validation items with their labels, in file order; `limit` keeps the first N."""
    if limit is not None and limit < 1:
        raise UserError(f"limit must be at least 1, got {limit}")
    folder = find_data(PIQA_FOLDER, data_dir)
    questions = _read_lines(folder / PIQA_QUESTIONS)
    labels = _read_lines(folder / PIQA_LABELS)
    if len(questions) != len(labels):
        raise UserError(
            f"PIQA files are not aligned: {folder / PIQA_QUESTIONS} has {len(questions)} items, "
            f"{folder / PIQA_LABELS} has {len(labels)} labels"
        )
    items = []
    for line_number, (question, label) in enumerate(zip(questions, labels, strict=True), start=1):
        if limit is not None and len(items) >= limit:
            break
        items.append(_parse_item(question, label, folder, line_number))
    return items


def choose(logprobs: Sequence[float], *, lengths: Sequence[int] | None = None) -> int:
    """The predicted choice: argmax of log-likelihoods, per character when `lengths` is given.

    Ties go to the first choice, as numpy's argmax does in lm-eval.
    """
    scores = list(logprobs) if lengths is None else [lp / n for lp, n in zip(logprobs, lengths, strict=True)]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def evaluate(
    model: Model,
    tokenizer: TokenizerLike,
    *,
    limit: int | None = None,
    max_len: int = 1024,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """PIQA `acc` and `acc_norm` (fractions in [0, 1]) with their stderr and the item count."""
    return score_items(
        model,
        tokenizer,
        load_piqa(limit=limit, data_dir=data_dir),
        max_len=max_len,
        batch_size=batch_size,
        device=device,
    )


def score_items(
    model: Model,
    tokenizer: TokenizerLike,
    items: Sequence[PiqaItem],
    *,
    max_len: int = 1024,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """`evaluate` on given items (the unit tests build their own)."""
    if not items:
        raise UserError("no PIQA items to score")
    texts = [(context_for(item), TARGET_DELIMITER + sol) for item in items for sol in item.solutions]
    requests = encode_pairs(tokenizer, texts)
    scores = loglikelihoods(
        model, requests, max_len=max_len, batch_size=batch_size, device=device, eos_id=tokenizer.eos_id
    )
    hits: list[int] = []
    hits_norm: list[int] = []
    for index, item in enumerate(items):
        logprobs = [scores[2 * index][0], scores[2 * index + 1][0]]
        lengths = [len(sol) for sol in item.solutions]
        hits.append(int(choose(logprobs) == item.label))
        hits_norm.append(int(choose(logprobs, lengths=lengths) == item.label))
    return {
        "acc": sum(hits) / len(hits),
        "acc_stderr": _mean_stderr(hits),
        "acc_norm": sum(hits_norm) / len(hits_norm),
        "acc_norm_stderr": _mean_stderr(hits_norm),
        "n": len(items),
    }


def _mean_stderr(values: Sequence[int]) -> float | None:
    n = len(values)
    if n < 2:
        return None  # undefined for one item; None keeps results.json strict JSON
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read PIQA file {path}: {error}") from error
    return text.splitlines()


def _parse_item(question: str, label: str, folder: Path, line_number: int) -> PiqaItem:
    try:
        record = json.loads(question)
        goal, solutions = str(record["goal"]), (str(record["sol1"]), str(record["sol2"]))
    except (ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"PIQA file {folder / PIQA_QUESTIONS} line {line_number} is not an item "
            f"({type(error).__name__}: {error})",
            hint="each line must be JSON with goal, sol1 and sol2",
        ) from error
    if label.strip() not in ("0", "1"):
        raise UserError(f"PIQA file {folder / PIQA_LABELS} line {line_number}: label {label!r} is not 0 or 1")
    if not solutions[0] or not solutions[1]:
        # acc_norm divides by the solution's length.
        raise UserError(f"PIQA file {folder / PIQA_QUESTIONS} line {line_number} has an empty solution")
    return PiqaItem(goal=goal, solutions=solutions, label=int(label))
