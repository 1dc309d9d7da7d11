"""Complete input files of a component (marker present), with their dense row ranges."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from redpajama.errors import UserError
from redpajama.io import markers
from redpajama.pipelines.dedup.keep import InputFile


def list_files(root: Path, component: str, buckets: tuple[str, ...] | None = None) -> list[InputFile]:
    """Every complete `<component>/<snapshot>/<shard>/<lang>_<bucket>.parquet`, sorted by path;
    `start` numbers the rows of all files consecutively in that order."""
    base = root / component
    files, start, damaged = [], 0, []
    for path in sorted(base.rglob("*.parquet")) if base.exists() else []:
        if path.name.startswith(".") or markers.read_marker(path) is None:
            continue
        if buckets is not None and path.stem.rsplit("_", 1)[-1] not in buckets:
            continue
        problem = markers.parquet_damage(path)
        if problem:
            damaged.append(problem)
            continue
        rows = pq.ParquetFile(path).metadata.num_rows
        files.append(InputFile(relative=path.relative_to(base).as_posix(), start=start, rows=rows))
        start += rows
    if damaged:
        # Dedup compares all documents at once: leaving a file out would keep its duplicates.
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        raise UserError(
            f"damaged {component} file: {damaged[0]}{more}",
            f"rerun the stage that wrote {root / component} (it redoes damaged files), then this one",
        )
    return files
