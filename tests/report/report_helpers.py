"""A tiny output tree written directly with pyarrow, with counts known by construction."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.quality_signals.registry import LINE_SPANS_TYPE
from redpajama.schema import DOCUMENT_SCHEMA

SCRIPT_DOC = "<script>alert('pwned')</script></pre><b>bold</b> & friends"

# (snapshot, shard, lang, bucket) -> number of documents
LAYOUT = {
    ("2023-14", "0000", "en", "head"): 4,
    ("2023-14", "0000", "de", "tail"): 2,
    ("2023-23", "0001", "en", "head"): 3,
    ("2023-23", "0001", "en", "tail"): 1,
}


def _doc_rows(snapshot: str, shard: str, lang: str, bucket: str, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        doc_id = f"{snapshot}/{shard}/{lang}_{bucket}/{i}"
        text = (
            SCRIPT_DOC
            if (snapshot, lang, i) == ("2023-14", "en", 0)
            else f"Dokument {doc_id} ünïcode\nline two"
        )
        rows.append(
            {
                "id": doc_id,
                "id_int": abs(hash(doc_id)) % (1 << 63),
                "url": f"https://example.com/{doc_id}",
                "length": len(text),
                "nlines": text.count("\n") + 1,
                "raw_content": text,
                "language": lang,
                "bucket": bucket,
                "snapshot_id": snapshot,
            }
        )
    return rows


def word_count(doc_id: str) -> int:
    # Deterministic and spread over both sides of the test rules' thresholds.
    return 10 * (sum(map(ord, doc_id)) % 13)


def make_tree(root: Path, signals: bool = True, clusters: bool = True) -> Path:
    for (snapshot, shard, lang, bucket), n in LAYOUT.items():
        rows = _doc_rows(snapshot, shard, lang, bucket, n)
        rel = Path(snapshot) / shard / f"{lang}_{bucket}.parquet"
        docs = root / "documents" / rel
        docs.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA), docs)
        if not signals:
            continue
        sig = pa.table(
            {
                "id": [r["id"] for r in rows],
                "id_int": pa.array([r["id_int"] for r in rows], pa.uint64()),
                "rps_doc_word_count": pa.array([word_count(r["id"]) for r in rows], pa.int64()),
                "rps_doc_ml_wikiref_score": [0.1 * (i % 5) for i in range(n)],
                # One document without the signal: NULL must fail a rule and count as missing.
                "rps_doc_mean_word_length": [None if i == 1 else 3.0 + i for i in range(n)],
                "rps_lines_start_with_bulletpoint": pa.array(
                    [
                        [{"start": 0, "end": 5, "score": float(i % 2)}, {"start": 5, "end": 9, "score": 0.0}]
                        for i in range(n)
                    ],
                    LINE_SPANS_TYPE,
                ),
            }
        )
        out = root / "quality_signals" / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(sig, out)
    if clusters:
        # cluster sizes: two of size 2, one of size 3
        members = {1: ["a", "b"], 2: ["c", "d"], 3: ["e", "f", "g"]}
        rows = [
            {"id": m, "id_int": k * 10 + j, "cluster_id": k}
            for k, ms in members.items()
            for j, m in enumerate(ms)
        ]
        table = pa.Table.from_pylist(
            rows,
            schema=pa.schema([("id", pa.string()), ("id_int", pa.uint64()), ("cluster_id", pa.uint64())]),
        )
        for kind, t in (("clusters", table), ("duplicates", table.slice(0, 4))):
            path = root / kind / "fuzzy-0.8" / "2023-14" / "0000" / "en_head.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(t, path)
    return root
