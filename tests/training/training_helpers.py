"""Curated folders of real text (Tiny Shakespeare) for the training tests."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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
