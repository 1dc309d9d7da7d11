"""Exact dedup run (RPv2's bloomfilter.py): documents/ -> duplicates/exact/, newest snapshot first.

Key: the document's `digest` without `sha1:` (RPv2: the WET record's block digest, i.e. the
text before CCNet touched it; REFERENCE A.3.3) or, with key=text, a hash of `raw_content`.
Snapshots are processed newest to oldest, the files of a snapshot in RPv2's shuffled order
(`processing_order`), so the newest crawl's copy survives and the choice within a snapshot is
RPv2's. By default a tree with CCNet's buckets is read as RPv2 reads it, head and middle only
(`input_files`). Documents without a key are never duplicates (counted).

Output, one file per documents file (possibly empty), as RPv2's duplicates parquet plus our keys:
`shard_id` (`<snapshot>/<shard>/<lang>_<bucket>.json.gz`), `doc_id` (`<shard_id>/<row>`),
`digest` (without `sha1:`), `id`, `id_int`. The filter is in memory only, so the run is one task:
a run killed half way starts again from the newest snapshot.
"""

from __future__ import annotations

import os
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from redpajama.io import layout
from redpajama.io.parquet_writer import PartitionedWriter
from redpajama.pipelines.dedup.bloom import BloomFilter, key_hashes
from redpajama.pipelines.dedup.config import ExactConfig
from redpajama.pipelines.dedup.inputs import list_files
from redpajama.pipelines.dedup.keep import InputFile
from redpajama.pipelines.dedup.stage import DUPLICATES, STAGE, peak_rss_mb, write_summary
from redpajama.runners.local import RunOptions, RunSummary, TaskContext, TaskResult, run_tasks
from redpajama.runners.stats import Stats

EXACT = "exact"
CRAWL_DATE = re.compile(r"\d{4}-\d{2}")  # a snapshot folder named by its crawl (YYYY-WW)
CCNET_BUCKETS = ("head", "middle", "tail")
RPV2_BUCKETS = ("head", "middle")
SCHEMA = pa.schema(
    [
        pa.field("shard_id", pa.string()),
        pa.field("doc_id", pa.string()),
        pa.field("digest", pa.string()),
        pa.field("id", pa.string(), nullable=False),
        pa.field("id_int", pa.uint64(), nullable=False),
    ]
)


def processing_order(files: list[InputFile], seed: int = 42) -> list[InputFile]:
    """RPv2's order (bloomfilter.py `__parallel_run`, one reader): one random stream seeded once
    shuffles the whole listing (sorted paths), then, newest snapshot first, the snapshot's files
    again. Snapshots without a crawl date (`unknown`) come last."""
    rng = random.Random(seed)
    listing = sorted(files, key=lambda f: f.relative)
    rng.shuffle(listing)
    by_snapshot: dict[str, list[InputFile]] = defaultdict(list)
    for f in listing:
        by_snapshot[f.relative.split("/", 1)[0]].append(f)
    order = []
    for snapshot in sorted(by_snapshot, key=lambda s: (CRAWL_DATE.fullmatch(s) is not None, s), reverse=True):
        group = by_snapshot[snapshot]
        rng.shuffle(group)
        order += group
    return order


def _bucket(f: InputFile) -> str:
    return f.relative.rsplit("_", 1)[-1].removesuffix(".parquet")


def buckets_read(files: list[InputFile], config: ExactConfig) -> frozenset[str] | None:
    """`config.buckets`, or by default RPv2's head and middle where the tree has CCNet's buckets
    (its bloomfilter reads `<lang>_{head,middle}.json.gz` only); None: every file."""
    if config.buckets is not None:
        return frozenset(config.buckets)
    if any(_bucket(f) in CCNET_BUCKETS for f in files):
        return frozenset(RPV2_BUCKETS)
    return None


def input_files(root: Path, config: ExactConfig) -> list[InputFile]:
    """The documents files the run reads (`buckets_read`), rows numbered over them alone."""
    files = list_files(root, layout.DOCUMENTS)
    wanted = buckets_read(files, config)
    if wanted is None:
        return files
    out, start = [], 0
    for f in files:
        if _bucket(f) in wanted:
            out.append(InputFile(relative=f.relative, start=start, rows=f.rows))
            start += f.rows
    return out


def _doc_ids(ids: pa.Array, shard_id: str, first_row: int, rows: np.ndarray) -> list[str]:
    """RPv2's `<shard_id>/<row_idx>`, the row's line in its json.gz shard. A document ingested from
    that shard carries the line in its id (`<shard_id>/<line>`, blank and corrupt lines counted), so
    the id is the doc_id; for other documents, the row's position in the Parquet file."""
    prefix = shard_id + "/"
    return [
        doc if doc.startswith(prefix) else f"{prefix}{first_row + r}"
        for doc, r in zip(ids.to_pylist(), rows.tolist(), strict=True)
    ]


def _keys(batch: pa.RecordBatch, key: str) -> tuple[np.ndarray, list[bytes]]:
    """(has-key mask, key bytes of those rows)."""
    column = batch.column("digest" if key == "digest" else "raw_content")
    valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    values = column.filter(pa.array(valid)).to_pylist()
    if key == "digest":
        return valid, [v.removeprefix("sha1:").encode() for v in values]
    return valid, [v.encode("utf-8", "surrogatepass") for v in values]


@dataclass(frozen=True)
class ExactTask:
    key: str
    weight: int
    files: tuple[InputFile, ...]


@dataclass(frozen=True)
class ExactWork:
    config: ExactConfig

    def __call__(self, task: ExactTask, ctx: TaskContext) -> TaskResult:
        root, config = ctx.root, self.config
        total = sum(f.rows for f in task.files)
        bloom = BloomFilter(config.capacity or max(total, 1), config.error_rate)
        stats = Stats(bytes_in=task.weight)
        outputs, no_key, per_snapshot = [], 0, defaultdict(int)
        order = processing_order(list(task.files), config.seed)
        columns = ["id", "id_int", "digest"] + (["raw_content"] if config.key == "text" else [])
        for f in order:
            source = root / layout.DOCUMENTS / f.relative
            destination = root / DUPLICATES / EXACT / f.relative
            shard_id = f.relative.removesuffix(".parquet") + ".json.gz"
            writer = PartitionedWriter(root, SCHEMA)
            writer.open(destination)
            try:
                row = 0
                for batch in pq.ParquetFile(source).iter_batches(
                    batch_size=config.batch_rows, columns=columns
                ):
                    with stats.timed("hash"):
                        valid, keys = _keys(batch, config.key)
                        h1, h2 = key_hashes(keys)
                    with stats.timed("filter"):
                        seen = np.zeros(batch.num_rows, dtype=bool)
                        seen[valid] = bloom.add(h1, h2)
                    rows = np.flatnonzero(seen)
                    if rows.size:
                        picked = batch.take(pa.array(rows))
                        digest = pc.replace_substring_regex(picked.column("digest"), "^sha1:", "")
                        out = pa.RecordBatch.from_arrays(
                            [
                                pa.array([shard_id] * rows.size, pa.string()),
                                pa.array(_doc_ids(picked.column("id"), shard_id, row, rows), pa.string()),
                                digest,
                                picked.column("id"),
                                picked.column("id_int"),
                            ],
                            schema=SCHEMA,
                        )
                        with stats.timed("write"):
                            writer.write(destination, out)
                    no_key += int((~valid).sum())
                    per_snapshot[f.relative.split("/", 1)[0]] += int(rows.size)
                    stats.docs_in += batch.num_rows
                    stats.docs_out += int(rows.size)
                    row += batch.num_rows
                    ctx.progress(batch.num_rows)
                with stats.timed("write"):
                    outputs += writer.commit()
            except BaseException:
                writer.abort()
                raise
        stats.bytes_out = sum(o.bytes for o in outputs)
        write_summary(
            root,
            EXACT,
            {
                "mode": EXACT,
                "key": config.key,
                "files": len(order),
                "docs": stats.docs_in,
                "docs_without_key": no_key,
                "duplicates": stats.docs_out,
                "duplicates_by_snapshot": dict(sorted(per_snapshot.items(), reverse=True)),
                "capacity": bloom.capacity,
                "error_rate": config.error_rate,
                "filter_bits": bloom.bits,
                "filter_hashes": bloom.hashes,
                "filter_mb": round(bloom.nbytes / 2**20, 2),
                "distinct_keys": bloom.count,
                "over_capacity": bloom.count > bloom.capacity,
                "expected_error_rate_at_end": round(bloom.expected_error_rate(), 6),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "phase_seconds": {k: round(v, 3) for k, v in sorted(stats.seconds.items())},
                "outputs": {"duplicates": f"{DUPLICATES}/{EXACT}"},
            },
        )
        return TaskResult(outputs=outputs, stats=stats)


def unread_documents(root: Path, config: ExactConfig) -> dict[str, int]:
    """Documents per bucket that the run does not read (`buckets_read`)."""
    files = list_files(root, layout.DOCUMENTS)
    wanted = buckets_read(files, config)
    out: dict[str, int] = defaultdict(int)
    for f in files:
        if wanted is not None and _bucket(f) not in wanted:
            out[_bucket(f)] += f.rows
    return dict(sorted(out.items()))


def count_documents(root: Path, config: ExactConfig) -> int:
    return sum(f.rows for f in input_files(root, config))


def run(
    output: str | os.PathLike[str], config: ExactConfig | None = None, options: RunOptions | None = None
) -> RunSummary:
    """Exact-deduplicate every complete documents file under `output`; reruns are no-ops."""
    config = config or ExactConfig()
    root = Path(output)
    files = tuple(input_files(root, config))
    if not files:
        raise FileNotFoundError(2, "no complete documents files", str(root / layout.DOCUMENTS))
    buckets = ",".join(sorted({_bucket(f) for f in files}))
    key = f"{EXACT}-{config.key}-p{config.error_rate}-c{config.capacity or 'auto'}-{buckets}-s{config.seed}"
    weight = sum((root / layout.DOCUMENTS / f.relative).stat().st_size for f in files)
    options = options or RunOptions()
    options = RunOptions(workers=1, progress=options.progress, overwrite=options.overwrite, retries=0)
    return run_tasks(
        STAGE,
        [ExactTask(key=key, weight=weight, files=files)],
        ExactWork(config),
        root,
        options,
        clean_dirs=[root / DUPLICATES / EXACT],
    )
