"""Perplexity cutoffs (lang,p30,p60): the 30th/60th percentiles CCNet buckets head/middle/tail by."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from redpajama.io.atomic import write_bytes

PERCENTILES = (30, 60)


def percentiles(values: Iterable[float]) -> tuple[float, float] | None:
    array = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if array.size == 0:
        return None
    p30, p60 = np.percentile(array, PERCENTILES)
    return round(float(p30), 1), round(float(p60), 1)


def cutoffs_csv(cutoffs: Mapping[str, tuple[float, float]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["lang", "p30", "p60"])
    for lang in sorted(cutoffs):
        p30, p60 = cutoffs[lang]
        writer.writerow([lang, p30, p60])
    return buffer.getvalue().encode("utf-8")


def write_cutoffs(path: Path, cutoffs: Mapping[str, tuple[float, float]]) -> None:
    write_bytes(path, cutoffs_csv(cutoffs))


def perplexities_by_language(output: Path) -> dict[str, list[float]]:
    """`perplexity` per `language` from OUT/documents/**/*.parquet, reading only those two columns."""
    import pyarrow.parquet as pq

    found: dict[str, list[float]] = {}
    files = sorted(p for p in (output / "documents").rglob("*.parquet") if not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(str(output / "documents" / "**" / "*.parquet"))
    for path in files:
        schema = pq.read_schema(path)
        if "perplexity" not in schema.names:
            continue
        columns = ["perplexity"] + (["language"] if "language" in schema.names else [])
        table = pq.read_table(path, columns=columns)
        langs = table.column("language").to_pylist() if "language" in columns else ["unknown"] * len(table)
        for lang, ppl in zip(langs, table.column("perplexity").to_pylist(), strict=True):
            if ppl is not None and lang:
                found.setdefault(lang, []).append(float(ppl))
    return found
