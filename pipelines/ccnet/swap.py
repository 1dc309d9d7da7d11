"""Replace a shard folder of the documents tree with its CCNet output, crash-safely.

The new files of a shard are written to a staging folder on the same file system; the folder is
complete once its shard marker (`.ccnet.json`, written last and atomically) exists. Then:

- Linux: one `renameat2(RENAME_EXCHANGE)` swaps staging and shard folder atomically. Every reader
  sees the old folder or the new one; after the exchange the staging path holds the old folder,
  which is deleted.
- Elsewhere (or a file system without exchange): shard -> trash name, staging -> shard, delete
  trash. Between the two renames the shard is briefly absent, never mixed.

No journal is needed: the renames are the journal. `recover` reads the state from what exists
(staging complete or not, shard marked or not, trash present or not) and finishes what a killed
run started, so a rerun completes a swap instead of computing the shard again.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

from redpajama.io import atomic

SHARD_MARKER = ".ccnet.json"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def read_shard_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / SHARD_MARKER).read_text("utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def is_ccnet_output(folder: Path) -> bool:
    return read_shard_marker(folder) is not None


def trash_path(final: Path) -> Path:
    # Hidden: no `*` glob or shard listing of the documents tree ever picks it up.
    return final.with_name(f".{final.name}.ccnet-old")


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths; False where the platform or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(a))


def _remove(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


def commit(staged: Path, final: Path, *, allow_exchange: bool = True) -> None:
    """Make the complete `staged` folder the shard folder `final` (which holds the old files)."""
    if allow_exchange and _exchange(staged, final):
        atomic.fsync_dir(final.parent)
        atomic.fsync_dir(staged.parent)
        _remove(staged)  # now the old folder
        return
    trash = trash_path(final)
    os.rename(final, trash)
    os.rename(staged, final)
    atomic.fsync_dir(final.parent)
    atomic.fsync_dir(staged.parent)
    _remove(trash)


def recover(staged: Path, final: Path, *, allow_exchange: bool = True) -> None:
    """Finish or undo whatever a killed run left for this shard; afterwards no staging or trash."""
    trash = trash_path(final)
    staged_complete = is_ccnet_output(staged)
    if staged_complete and not final.exists():
        os.rename(staged, final)  # killed between the two fallback renames
        atomic.fsync_dir(final.parent)
    elif staged_complete and final.exists() and not is_ccnet_output(final):
        commit(staged, final, allow_exchange=allow_exchange)  # killed after staging, before the swap
    if is_ccnet_output(final):
        # Whatever staging is left is the old folder or a stale copy; the trash is the old folder.
        _remove(staged)
        _remove(trash)
    elif staged.exists() and not is_ccnet_output(staged):
        _remove(staged)  # killed while staging: compute again


def write_shard_marker(folder: Path, record: dict[str, Any]) -> None:
    atomic.write_json(folder / SHARD_MARKER, record)


def remove_if_exists(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        _remove(path)
