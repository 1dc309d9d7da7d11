"""Which member of a cluster survives: the keep policies.

- `min-id` (RPv2): the member with the smallest `id_int` (which is also the cluster_id);
- `newest`: the latest `date_download` (documents/), ties and missing dates by min id;
- `highest:<signal>`: the largest document-level signal (quality_signals/), ties and nulls by min id.

Scores are read only for cluster members, one input file at a time, joined on `id`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from redpajama.io import layout
from redpajama.pipelines.dedup.config import KEEP_HIGHEST, KEEP_MIN_ID, KEEP_NEWEST

QUALITY_SIGNALS = "quality_signals"


@dataclass(frozen=True)
class InputFile:
    relative: str  # <snapshot>/<shard>/<lang>_<bucket>.parquet under the component folder
    start: int  # first dense row index of the file
    rows: int


def choose_kept(labels: np.ndarray, id_int: np.ndarray, score: np.ndarray | None) -> np.ndarray:
    """Mask of the kept member of each component, over rows given with their component labels.

    Highest score first (NaN counts as lowest), then smallest id_int.
    """
    if labels.size == 0:
        return np.zeros(0, dtype=bool)
    if score is None:
        order = np.lexsort((id_int, labels))
    else:
        neg = -np.where(np.isnan(score), -np.inf, score)
        order = np.lexsort((id_int, neg, labels))
    first = np.ones(labels.size, dtype=bool)
    sorted_labels = labels[order]
    first[1:] = sorted_labels[1:] != sorted_labels[:-1]
    kept = np.zeros(labels.size, dtype=bool)
    kept[order[first]] = True
    return kept


def member_scores(
    root: Path, keep: str, files: Sequence[InputFile], ids_of: dict[str, tuple[np.ndarray, pa.Array]]
) -> np.ndarray | None:
    """Scores aligned with the concatenation of `ids_of[f.relative]` (member rows, their `id`s) over
    `files` in order; None for min-id."""
    if keep == KEEP_MIN_ID:
        return None
    parts = []
    for f in files:
        if f.relative not in ids_of:
            continue
        _, ids = ids_of[f.relative]
        if keep == KEEP_NEWEST:
            parts.append(_joined(root / layout.DOCUMENTS / f.relative, "date_download", ids, _timestamps))
        else:
            signal = keep[len(KEEP_HIGHEST) :]
            parts.append(_joined(root / QUALITY_SIGNALS / f.relative, signal, ids, _floats))
    return np.concatenate(parts) if parts else np.zeros(0)


def _joined(path: Path, column: str, ids: pa.Array, convert) -> np.ndarray:
    if not path.exists():
        raise FileNotFoundError(path)
    parquet = pq.ParquetFile(path)
    if column not in parquet.schema_arrow.names:
        raise ValueError(f"{path}: no column {column!r} to rank cluster members by")
    table = parquet.read(columns=["id", column])
    where = pc.index_in(ids, value_set=table.column("id")).to_numpy(zero_copy_only=False)
    values = convert(table.column(column).combine_chunks())
    out = np.full(len(ids), np.nan)
    found = ~np.isnan(where.astype(np.float64))
    out[found] = values[where[found].astype(np.int64)]
    return out


def _floats(array: pa.Array) -> np.ndarray:
    if not (
        pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_boolean(array.type)
    ):
        raise ValueError(f"keep=highest needs a numeric document-level signal, got type {array.type}")
    return np.asarray(pc.cast(array, pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False))


def _timestamps(array: pa.Array) -> np.ndarray:
    # ISO-8601 crawl times ("2023-03-20T09:52:32Z"); anything unparsable ranks as oldest.
    out = np.full(len(array), np.nan)
    for i, text in enumerate(array.to_pylist()):
        if text:
            with contextlib.suppress(ValueError):
                out[i] = datetime.fromisoformat(text).timestamp()
    return out
