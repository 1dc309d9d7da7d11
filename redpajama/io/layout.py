"""The output tree (fixed; it mirrors RedPajama-V2 so its tools and users feel at home).

<out>/<component>/<snapshot>/<shard>/<lang>_<bucket>.parquet   component: documents, ...
<out>/_runs/<stage>/tasks/<task>.json      a finished task: its outputs and stats
<out>/_runs/<stage>/errors/<task>.jsonl    bad input records of that task (file, offset, why)
<out>/_runs/<stage>/stats.json             merged stats of every finished task (earlier runs included)
<out>/_runs/<stage>/errors.jsonl           every bad record of the latest run, merged
"""

from __future__ import annotations

import re
from pathlib import Path

DOCUMENTS = "documents"
RUNS = "_runs"

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def safe_name(text: str) -> str:
    """A file-name-safe rendering of `text` (used for shard names and task keys)."""
    cleaned = _UNSAFE.sub("_", text).strip("._")
    return cleaned or "_"


def data_file(root: Path, component: str, snapshot: str, shard: str, lang: str, bucket: str) -> Path:
    return root / component / snapshot / shard / f"{lang}_{bucket}.parquet"


def stage_dir(root: Path, stage: str) -> Path:
    return root / RUNS / stage


def task_marker(root: Path, stage: str, task_key: str) -> Path:
    return stage_dir(root, stage) / "tasks" / f"{safe_name(task_key)}.json"


def task_errors(root: Path, stage: str, task_key: str) -> Path:
    return stage_dir(root, stage) / "errors" / f"{safe_name(task_key)}.jsonl"
