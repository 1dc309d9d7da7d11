"""Tiny output trees for the filter and query tests: documents + signals Parquet written directly."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.io import markers
from redpajama.schema import DOCUMENT_SCHEMA

RELATIVE = Path("2023-14/0000/en_head.parquet")
SPAN = pa.list_(pa.struct([("start", pa.int32()), ("end", pa.int32()), ("score", pa.float64())]))
LINE_SIGNALS = (
    "rps_lines_start_with_bulletpoint",
    "rps_lines_ending_with_terminal_punctution_mark",
    "rps_lines_num_words",
    "rps_lines_javascript_counts",
)


def id_int(doc_id: str) -> int:
    return int.from_bytes(hashlib.sha1(doc_id.encode()).digest()[:8], "little")


def lines(n: int, length: int = 50, score: float = 0.0) -> list[dict[str, Any]]:
    return [{"start": i * length, "end": (i + 1) * length, "score": score} for i in range(n)]


def passing_signals() -> dict[str, Any]:
    """A document that passes every shipped document rule, comfortably."""
    return {
        "rps_doc_word_count": 500,
        "rps_doc_mean_word_length": 5.0,
        "rps_doc_symbol_to_word_ratio": 0.0,
        "rps_doc_frac_lines_end_with_ellipsis": 0.0,
        "rps_doc_frac_no_alph_words": 0.1,
        "rps_doc_stop_word_fraction": 0.3,
        **{f"rps_doc_frac_chars_top_{n}gram": 0.05 for n in (2, 3, 4)},
        **{f"rps_doc_frac_chars_dupe_{n}grams": 0.01 for n in range(5, 11)},
        "rps_doc_num_sentences": 10.0,
        "rps_doc_ldnoobw_words": 0.0,
        "rps_doc_lorem_ipsum": 0.0,
        "rps_doc_curly_bracket": 0.0,
        "rps_doc_ml_wikiref_score": 0.9,
        "rps_lines_start_with_bulletpoint": lines(10),
        "rps_lines_ending_with_terminal_punctution_mark": lines(10, score=1.0),
        "rps_lines_num_words": lines(10, score=10.0),
        "rps_lines_javascript_counts": lines(10),
    }


def signal_type(name: str) -> pa.DataType:
    if name in LINE_SIGNALS:
        return SPAN
    return pa.int64() if name == "rps_doc_word_count" else pa.float64()


def write_tree(root: Path, rows: list[dict[str, Any]], relative: Path = RELATIVE) -> None:
    """rows: {'id', 'raw_content'?, 'signals': {...}}; documents and signals files, with markers."""
    docs = []
    for n, row in enumerate(rows):
        text = row.get("raw_content", f"document {n}\n")
        docs.append(
            {
                "id": row["id"],
                "id_int": id_int(row["id"]),
                "raw_content": text,
                "length": len(text),
                "nlines": text.count("\n") + (not text.endswith("\n")),
                "language": "en",
                "bucket": "head",
                "snapshot_id": "2023-14",
            }
        )
    names = sorted({k for row in rows for k in row["signals"]})
    signals = {"id": [r["id"] for r in rows], "id_int": [id_int(r["id"]) for r in rows]}
    for name in names:
        signals[name] = [r["signals"].get(name) for r in rows]
    sig_schema = pa.schema(
        [("id", pa.string()), ("id_int", pa.uint64()), *((n, signal_type(n)) for n in names)]
    )
    for component, table in (
        ("documents", pa.Table.from_pylist(docs, schema=DOCUMENT_SCHEMA)),
        ("quality_signals", pa.Table.from_pydict(signals, schema=sig_schema)),
    ):
        path = root / component / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        markers.write_marker(root, path, table.num_rows)


def write_duplicates(root: Path, mode: str, ids: list[str], relative: Path = RELATIVE) -> None:
    path = root / "duplicates" / mode / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "id": ids,
            "id_int": pa.array([id_int(i) for i in ids], pa.uint64()),
            "cluster_id": pa.array([0] * len(ids), pa.uint64()),
        }
    )
    pq.write_table(table, path)


def write_clusters(root: Path, mode: str, clusters: list[list[str]], relative: Path = RELATIVE) -> None:
    """clusters/<mode>/<relative>: every member of each fuzzy cluster (the dedup stage's layout)."""
    path = root / "clusters" / mode / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = [i for cluster in clusters for i in cluster]
    cluster_id = [n for n, cluster in enumerate(clusters) for _ in cluster]
    table = pa.table(
        {
            "id": ids,
            "id_int": pa.array([id_int(i) for i in ids], pa.uint64()),
            "cluster_id": pa.array(cluster_id, pa.uint64()),
            "shard_id": ["0000"] * len(ids),
        }
    )
    pq.write_table(table, path)
