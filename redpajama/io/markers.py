"""Completion markers.

Every output file gets a marker beside it, `.<name>.done.json`, holding its row count, byte size
and SHA-256. The marker is written (atomically) only after the file itself has been renamed into
place, so "marker present and size matches" means "this file is complete". Stages use it to skip
finished work on a rerun, and tools can verify an output tree against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.errors import UserError
from redpajama.io import atomic

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class OutputMarker:
    path: str  # relative to the output root, '/'-separated
    rows: int
    bytes: int
    sha256: str


def marker_path(file: Path) -> Path:
    return file.with_name(f".{file.name}.done.json")


def sha256_of(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_marker(root: Path, file: Path, rows: int) -> OutputMarker:
    marker = OutputMarker(
        path=file.relative_to(root).as_posix(),
        rows=rows,
        bytes=file.stat().st_size,
        sha256=sha256_of(file),
    )
    atomic.write_json(marker_path(file), asdict(marker))
    return marker


def read_marker(file: Path) -> OutputMarker | None:
    try:
        data = json.loads(marker_path(file).read_text("utf-8"))
        return OutputMarker(**data)
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None


def is_complete(root: Path, marker: OutputMarker, *, verify_hash: bool = False) -> bool:
    file = root / marker.path
    on_disk = read_marker(file)
    if on_disk != marker or not file.exists() or file.stat().st_size != marker.bytes:
        return False
    return not verify_hash or sha256_of(file) == marker.sha256


def parquet_damage(file: Path) -> str | None:
    """Why a finished Parquet output cannot be read as written, naming it (its size differs from its
    marker's, or its footer does not parse), or None. Cheap: one stat and one footer read, no hash,
    so a reading stage can check every input before it starts."""
    marker = read_marker(file)
    size = file.stat().st_size
    if marker is not None and size != marker.bytes:
        return f"{file}: {size} bytes, but {marker.bytes} when it was written (damaged since)"
    try:
        pq.read_metadata(file)
    except (OSError, pa.ArrowException) as exc:
        return f"{file}: not readable as Parquet ({' '.join(str(exc).split())})"
    return None


def check_intact(files: Iterable[Path], what: str, hint: str) -> None:
    """UserError naming the first damaged file of `files` (`parquet_damage`) and how many more, for
    a stage that must read all of them or nothing."""
    damaged = [problem for file in files if (problem := parquet_damage(file))]
    if damaged:
        more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
        raise UserError(f"damaged {what}: {damaged[0]}{more}", hint)
