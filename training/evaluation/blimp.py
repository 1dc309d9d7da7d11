"""BLiMP: 67 paradigms x 1000 minimal pairs; a pair is right when the good sentence is likelier.

Follows lm-evaluation-harness's `blimp` tasks (`lm_eval/tasks/blimp/_template_yaml`): no prompt, the
choices `[sentence_good, sentence_bad]`, each scored as the continuation `" " + sentence` (its
default target delimiter) of an empty context, i.e. conditioned on EOS alone; the benchmark score
is the mean of the per-paradigm accuracies. One deliberate difference: a tie counts as wrong
(`logp(good) > logp(bad)` strictly), where lm-eval's argmax credits ties to the good sentence and
so gives a constant model 100% on every paradigm whose two sentences have equally many tokens.

The data is read straight from the published archive (`data/<paradigm>.jsonl` members), never
unpacked to disk.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from redpajama.errors import UserError
from redpajama.training.evaluation import find_data
from redpajama.training.evaluation.scoring import Model, TokenizerLike, encode_pairs, loglikelihoods

BLIMP_FOLDER = "bench-blimp"
BLIMP_ARCHIVE = "blimp_data.tar.gz"
TARGET_DELIMITER = " "

Pair = tuple[str, str]  # (sentence_good, sentence_bad)


def blimp_archive(data_dir: str | os.PathLike[str] | None = None) -> Path:
    return find_data(BLIMP_FOLDER, data_dir) / BLIMP_ARCHIVE


def load_blimp(
    *,
    paradigms: Sequence[str] | None = None,
    limit_per_paradigm: int | None = None,
    archive: str | os.PathLike[str] | None = None,
) -> dict[str, list[Pair]]:
    """`{paradigm: [(good, bad), ...]}` in file order, paradigms sorted by name.

    `limit_per_paradigm` keeps the first N pairs of each paradigm, so limited runs are comparable.
    `archive` defaults to the shared `bench-blimp/blimp_data.tar.gz`.
    """
    if limit_per_paradigm is not None and limit_per_paradigm < 1:
        raise UserError(f"limit_per_paradigm must be at least 1, got {limit_per_paradigm}")
    path = Path(archive) if archive is not None else blimp_archive()
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {
                PurePosixPath(member.name).stem: member
                for member in tar.getmembers()
                if member.isfile() and member.name.endswith(".jsonl")
            }
            wanted = _check_paradigms(paradigms, members, path)
            return {
                name: _read_pairs(tar, members[name], limit_per_paradigm, path) for name in sorted(wanted)
            }
    except (OSError, tarfile.TarError, EOFError) as error:
        raise UserError(f"cannot read BLiMP archive {path}: {error}") from error


def pair_is_right(logprob_good: float, logprob_bad: float) -> bool:
    # Strict: a tie (e.g. a constant model on a reordering pair) is not evidence of grammar.
    return logprob_good > logprob_bad


def score_pairs(
    model: Model,
    tokenizer: TokenizerLike,
    pairs: Sequence[Pair],
    *,
    max_len: int = 1024,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> list[bool]:
    """Whether each pair's good sentence gets the higher log-probability (conditioned on EOS)."""
    texts = [("", TARGET_DELIMITER + sentence) for pair in pairs for sentence in pair]
    requests = encode_pairs(tokenizer, texts)
    scores = loglikelihoods(
        model, requests, max_len=max_len, batch_size=batch_size, device=device, eos_id=tokenizer.eos_id
    )
    return [pair_is_right(scores[2 * i][0], scores[2 * i + 1][0]) for i in range(len(pairs))]


def evaluate(
    model: Model,
    tokenizer: TokenizerLike,
    *,
    paradigms: Sequence[str] | None = None,
    limit_per_paradigm: int | None = None,
    max_len: int = 1024,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """BLiMP accuracy (mean over paradigms, as lm-eval aggregates), per paradigm, and pair counts."""
    data = load_blimp(
        paradigms=paradigms, limit_per_paradigm=limit_per_paradigm, archive=blimp_archive(data_dir)
    )
    names = list(data)
    # One scoring call for every pair: sentences of all paradigms share batches.
    right = score_pairs(
        model,
        tokenizer,
        [pair for name in names for pair in data[name]],
        max_len=max_len,
        batch_size=batch_size,
        device=device,
    )
    per_paradigm: dict[str, float] = {}
    start = 0
    for name in names:
        outcomes = right[start : start + len(data[name])]
        start += len(outcomes)
        per_paradigm[name] = sum(outcomes) / len(outcomes)
    return {
        "accuracy": sum(per_paradigm.values()) / len(per_paradigm),
        "per_paradigm": per_paradigm,
        "n_pairs": len(right),
        "n_paradigms": len(per_paradigm),
        "limit_per_paradigm": limit_per_paradigm,
    }


def _check_paradigms(
    paradigms: Sequence[str] | None, members: dict[str, tarfile.TarInfo], path: Path
) -> list[str]:
    if not members:
        raise UserError(f"BLiMP archive {path} holds no .jsonl paradigm files")
    if paradigms is None:
        return list(members)
    unknown = [name for name in paradigms if name not in members]
    if unknown:
        raise UserError(
            f"unknown BLiMP paradigm(s) {', '.join(unknown)} (not in {path})",
            hint=f"known paradigms include {', '.join(sorted(members)[:5])}, ... ({len(members)} in all)",
        )
    if not paradigms:
        raise UserError("the list of BLiMP paradigms is empty", hint="leave it out to run all of them")
    return list(dict.fromkeys(paradigms))


def _read_pairs(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int | None, path: Path) -> list[Pair]:
    handle = tar.extractfile(member)
    if handle is None:
        raise UserError(f"BLiMP archive {path}: member {member.name} cannot be read")
    pairs: list[Pair] = []
    with handle:
        for line_number, raw in enumerate(handle, start=1):
            if limit is not None and len(pairs) >= limit:
                break
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                pairs.append((str(record["sentence_good"]), str(record["sentence_bad"])))
            except (ValueError, KeyError, TypeError) as error:
                raise UserError(
                    f"BLiMP archive {path}: {member.name} line {line_number} is not a minimal pair "
                    f"({type(error).__name__}: {error})",
                    hint="each line must be JSON with sentence_good and sentence_bad",
                ) from error
    if not pairs:
        raise UserError(f"BLiMP archive {path}: {member.name} holds no pairs")
    return pairs
