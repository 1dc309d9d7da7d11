"""One output file per documents file, batch by batch: the loop the signals and minhash stages share.

The output keeps the input's rows in order (so the two files line up row by row), is written
atomically with its marker, and exists even when the input has no rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.io import layout, markers
from redpajama.io.parquet_writer import PartitionedWriter
from redpajama.runners.local import TaskContext, TaskResult
from redpajama.runners.stats import Stats


def complete_documents_files(root: Path, buckets: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """(path relative to `root`, bytes) of every documents file whose marker says it is complete,
    optionally only those of some buckets: the per-file stages' task list."""
    found = []
    for path in sorted((root / layout.DOCUMENTS).rglob("*.parquet")):
        if path.name.startswith(".") or markers.read_marker(path) is None:
            continue
        if buckets is not None and path.stem.rsplit("_", 1)[-1] not in buckets:
            continue
        found.append((path.relative_to(root).as_posix(), path.stat().st_size))
    return found


def documents_batches(
    path: Path, required: Sequence[str], optional: Sequence[str] = (), rows: int = 1_000
) -> Iterator[pa.RecordBatch]:
    """Batches of a documents file with the `required` columns and whichever `optional` ones exist."""
    parquet = pq.ParquetFile(path)
    available = set(parquet.schema_arrow.names)
    missing = [c for c in required if c not in available]
    if missing:
        raise ValueError(f"{path}: not a documents file (missing columns {missing})")
    columns = list(required) + [c for c in optional if c in available]
    yield from parquet.iter_batches(batch_size=rows, columns=columns)


def map_batches_to_file(
    ctx: TaskContext,
    weight: int,
    batches: Iterable[pa.RecordBatch],
    destination: Path,
    schema: pa.Schema,
    compute: Callable[[pa.RecordBatch], pa.RecordBatch],
    phase: str = "compute",
) -> TaskResult:
    stats = Stats(bytes_in=weight)
    writer = PartitionedWriter(ctx.root, schema)
    writer.open(destination)
    try:
        for batch in batches:
            with stats.timed(phase):
                out = compute(batch)
            with stats.timed("write"):
                writer.write(destination, out)
            stats.docs_in += batch.num_rows
            ctx.progress(batch.num_rows)
        with stats.timed("write"):
            outputs = writer.commit()
    except BaseException:
        writer.abort()
        raise
    stats.docs_out = sum(o.rows for o in outputs)
    stats.bytes_out = sum(o.bytes for o in outputs)
    ctx.progress(0, weight)
    return TaskResult(outputs=outputs, stats=stats)
