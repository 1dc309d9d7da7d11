"""Evaluate small ablation LMs from local files: held-out and WikiText-2 perplexity, BLiMP, PIQA.

Modules: `scoring` (log-likelihood machinery every task shares), `perplexity`, `blimp`, `piqa`
(one task each, following lm-evaluation-harness's definitions), `suite` (runs the chosen tasks and
writes results.json), `aggregate` (Table-5-style comparison of subsets: Avg, Norm.Avg, plot).

A model is any callable taking `input_ids: LongTensor (B, T)` and returning logits `(B, T, V)`; a
tokenizer is any object with `encode`, `encode_batch`, `eos_id` and `vocab_size`.

This module only locates the benchmark files; it imports no submodule, so they can import it.
"""

from __future__ import annotations

import os
from pathlib import Path

from redpajama.errors import UserError

# Folder holding `lm-wikitext-2-valid-test/`, `bench-blimp/`, `bench-piqa-valid/`.
DATA_ENV = "REDPAJAMA_EVAL_DATA"


def find_data(folder: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The benchmark folder `folder`, from `data_dir`, $REDPAJAMA_EVAL_DATA, or a `shared/data` above.

    The upward search starts at the working directory and at this source file, so a checkout that
    sits next to `shared/` (the project's layout) needs no setting.
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_ENV) or None
    if data_dir is not None:
        path = Path(data_dir) / folder
        if not path.is_dir():
            raise UserError(
                f"benchmark folder {path} not found",
                hint=f"pass the folder that holds {folder}/ (or set {DATA_ENV})",
            )
        return path
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for base in (start, *start.parents):
            path = base / "shared" / "data" / folder
            if path.is_dir():
                return path
    raise UserError(
        f"benchmark folder {folder}/ not found in any shared/data above the working directory",
        hint=f"set {DATA_ENV} to the folder that holds {folder}/",
    )
