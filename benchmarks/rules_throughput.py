"""The Gopher rule set over synthetic signals, DuckDB (2 threads) vs pyarrow.compute in-process.

    python benchmarks/rules_throughput.py [--rows 1000000]

Writes N rows of document-level Gopher signals plus the line-level bullet list (10 lines per
document) and a short raw_content (the stop-word rule counts raw tokens where fraction x word count
leaves it undecided) as Parquet, then times end to end (read + evaluate every rule + count survivors):
DuckDB over the file with threads=2, the same SQL the filter stage runs; and the baseline, the
same predicates with pyarrow.compute on the table read by pyarrow. Both must agree on the count.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model, versions  # noqa: E402

from redpajama.pipelines.rules import resolve  # noqa: E402

LINES = 10


def synthetic(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols = {
        "id": pa.array(np.arange(rows).astype(str)),
        "rps_doc_word_count": pa.array(rng.integers(10, 3000, rows)),
        "rps_doc_mean_word_length": pa.array(rng.normal(5, 1.5, rows)),
        "rps_doc_symbol_to_word_ratio": pa.array(rng.exponential(0.03, rows)),
        "rps_doc_frac_lines_end_with_ellipsis": pa.array(rng.beta(1, 10, rows)),
        "rps_doc_frac_no_alph_words": pa.array(rng.beta(2, 10, rows)),
        "rps_doc_stop_word_fraction": pa.array(rng.beta(3, 10, rows)),
    }
    for n in (2, 3, 4):
        cols[f"rps_doc_frac_chars_top_{n}gram"] = pa.array(rng.beta(1, 15, rows))
    for n in range(5, 11):
        cols[f"rps_doc_frac_chars_dupe_{n}grams"] = pa.array(rng.beta(1, 12, rows))
    starts = np.tile(np.arange(LINES, dtype=np.int32) * 40, rows)
    scores = (rng.random(rows * LINES) < 0.3).astype(np.float64)
    spans = pa.StructArray.from_arrays(
        [pa.array(starts), pa.array(starts + 40), pa.array(scores)], names=["start", "end", "score"]
    )
    offsets = pa.array(np.arange(0, rows * LINES + 1, LINES, dtype=np.int32))
    cols["rps_lines_start_with_bulletpoint"] = pa.ListArray.from_arrays(offsets, spans)
    # Texts of 2-40 raw tokens, some punctuated: what the stop-word rule reads where its bound fails.
    texts = [" ".join(["the", "word", "of,"] * n)[: 12 * n] + "." for n in range(1, 14)]
    cols["raw_content"] = pa.array(np.array(texts, dtype=object)[rng.integers(0, len(texts), rows)].tolist())
    return pa.table(cols)


# WordPunct's \w+|[^\w\s]+ with Python's Unicode classes, as gopher_stop_words writes it.
RAW_TOKEN = r"[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s\p{Z}\x{85}\x{1c}-\x{1f}\x{0b}]+"


def run_duckdb(path: Path, threads: int) -> tuple[float, int]:
    rules = resolve(["gopher"])
    where = " AND ".join(f"coalesce(({r.sql}), false)" for r in rules)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    start = time.perf_counter()
    (kept,) = con.sql(f"SELECT count(*) FROM read_parquet('{path}') WHERE {where}").fetchall()[0]
    return time.perf_counter() - start, int(kept)


def stop_words_ok(t: pa.Table) -> pa.Array:
    """gopher_stop_words: the bound where it decides, the raw tokens counted only elsewhere."""
    frac = t.column("rps_doc_stop_word_fraction").combine_chunks()
    ok = pc.greater_equal(pc.multiply(frac, t.column("rps_doc_word_count").combine_chunks()), 1.999)
    undecided = pc.indices_nonzero(pc.invert(pc.fill_null(ok, True)))
    tokens = pc.count_substring_regex(pc.take(t.column("raw_content"), undecided), RAW_TOKEN)
    exact = pc.greater_equal(pc.round(pc.multiply(pc.take(frac, undecided), tokens)), 2).to_numpy(
        zero_copy_only=False
    )
    out = pc.fill_null(ok, False).to_numpy(zero_copy_only=False).copy()
    out[undecided.to_numpy()] = exact
    return pa.array(out)


def run_pyarrow(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    t = pq.read_table(path)
    c = t.column
    bullets = t.column("rps_lines_start_with_bulletpoint").combine_chunks()
    flat = pc.equal(pc.struct_field(bullets.flatten(), "score"), 1.0).cast(pa.int64()).to_numpy()
    offsets = bullets.offsets.to_numpy()
    per_doc = np.add.reduceat(flat, offsets[:-1]) / np.diff(offsets)
    conditions = [
        pc.and_(
            pc.greater_equal(c("rps_doc_word_count"), 50), pc.less_equal(c("rps_doc_word_count"), 100_000)
        ),
        pc.and_(
            pc.greater_equal(c("rps_doc_mean_word_length"), 3),
            pc.less_equal(c("rps_doc_mean_word_length"), 10),
        ),
        pc.less_equal(c("rps_doc_symbol_to_word_ratio"), 0.1),
        pa.array(per_doc <= 0.9),
        pc.less_equal(c("rps_doc_frac_lines_end_with_ellipsis"), 0.3),
        pc.less_equal(c("rps_doc_frac_no_alph_words"), 0.2),
        stop_words_ok(t),
        *(
            pc.less_equal(c(f"rps_doc_frac_chars_top_{n}gram"), t_)
            for n, t_ in ((2, 0.2), (3, 0.18), (4, 0.16))
        ),
        *(
            pc.less_equal(c(f"rps_doc_frac_chars_dupe_{n}grams"), t_)
            for n, t_ in zip(range(5, 11), (0.15, 0.14, 0.13, 0.12, 0.11, 0.10), strict=True)
        ),
    ]
    ok = conditions[0]
    for cond in conditions[1:]:
        ok = pc.and_(ok, cond)
    kept = int(pc.sum(pc.fill_null(ok, False)).as_py())
    return time.perf_counter() - start, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "rules_throughput.json"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "signals.parquet"
        pq.write_table(synthetic(args.rows), path, compression="zstd")
        duck = min((run_duckdb(path, args.threads) for _ in range(args.repeats)), key=lambda r: r[0])
        arrow = min((run_pyarrow(path) for _ in range(args.repeats)), key=lambda r: r[0])
    if duck[1] != arrow[1]:
        raise SystemExit(f"engines disagree: duckdb kept {duck[1]}, pyarrow kept {arrow[1]}")
    result = {
        "rows": args.rows,
        "rules": len(resolve(["gopher"])),
        "kept": duck[1],
        "duckdb_threads": args.threads,
        "duckdb_seconds": round(duck[0], 4),
        "duckdb_rows_per_s": round(args.rows / duck[0]),
        "pyarrow_seconds": round(arrow[0], 4),
        "pyarrow_rows_per_s": round(args.rows / arrow[0]),
        "duckdb_over_pyarrow_speed": round(arrow[0] / duck[0], 2),
        "cpu": cpu_model(),
        "versions": versions("duckdb", "pyarrow", "numpy"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
