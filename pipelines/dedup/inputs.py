"""Complete input files of a component (marker present), with their dense row ranges."""

from __future__ import annotations

from pathlib import Path

from redpajama.io import markers
from redpajama.pipelines.dedup.keep import InputFile


def list_files(root: Path, component: str, buckets: tuple[str, ...] | None = None) -> list[InputFile]:
    """Every complete `<component>/<snapshot>/<shard>/<lang>_<bucket>.parquet`, sorted by path;
    `start` numbers the rows of all files consecutively in that order."""
    base = root / component
    complete = [
        (path, marker)
        for path in (sorted(base.rglob("*.parquet")) if base.exists() else [])
        if not path.name.startswith(".")
        and (buckets is None or path.stem.rsplit("_", 1)[-1] in buckets)
        and (marker := markers.read_marker(path)) is not None
    ]
    # Dedup compares all documents at once: leaving a damaged file out would keep its duplicates.
    markers.check_intact(
        (path for path, _ in complete),
        f"{component} file",
        f"rerun the stage that wrote {root / component} (it redoes damaged files), then this one",
    )
    files, start = [], 0
    for path, marker in complete:  # the marker's row count: check_intact matched its byte size
        files.append(InputFile(relative=path.relative_to(base).as_posix(), start=start, rows=marker.rows))
        start += marker.rows
    return files
