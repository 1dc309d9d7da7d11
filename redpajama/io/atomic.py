"""Atomic file writes: a temp name in the same directory, fsync, rename, fsync the directory.

A reader of the output tree therefore sees either the previous file or the complete new one,
never a torn write, even when the process is killed at any instruction.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_INFIX = ".tmp-"


def temp_path_for(final: Path) -> Path:
    # Hidden and pid-tagged: never matched by `*.parquet` globs, and two processes never share one.
    return final.with_name(f".{final.name}{TEMP_INFIX}{os.getpid()}")


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(temp: Path, final: Path) -> None:
    """Make `temp` durable and move it to `final` in one rename."""
    with open(temp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, final)
    fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path to write; on success it becomes `final`, on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(final)
    try:
        yield temp
        commit(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


def write_bytes(final: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(final) as temp:
        temp.write_bytes(data)


def write_json(final: str | os.PathLike[str], obj: Any) -> None:
    write_bytes(final, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def remove_stale_temps(root: Path) -> int:
    """Delete temp files a killed run left under `root`; returns how many were removed."""
    removed = 0
    if not root.exists():
        return 0
    for path in root.rglob(f".*{TEMP_INFIX}*"):
        if path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed
