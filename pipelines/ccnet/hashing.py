"""Pass 1 of the line dedup: one task per documents file writes its line keys, and the keys of a
group of shards are merged into the sorted array of duplicates that pass 2 reads.

    _runs/ccnet/hashes/<snapshot>/<shard>/<file>.min<N>.docs.npz   keys (sorted unique uint64), and
                                                                   the documents holding each
    _runs/ccnet/groups/<snapshot>/<digest>.npy                     keys of >= 2 documents of the group

A group's file name is a digest of its member hash files, so a group whose membership changes
(shards added by a later ingest) gets a new duplicates file instead of reusing a wrong one. (The
".docs" in a hash file's name marks document counts; earlier versions counted line occurrences,
and their files are not reused.)
Hash files are kept after the run: a group that still has unprocessed shards needs the hashes of
its processed ones, whose original text is gone from the tree.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from redpajama.io import atomic, layout, markers
from redpajama.pipelines.ccnet.line_dedup import KEY_DTYPE, document_keys, duplicate_keys, unique_counts
from redpajama.pipelines.ccnet.transform import hashable_text
from redpajama.runners.local import TaskContext, TaskResult
from redpajama.runners.stats import Stats

HASH_STAGE = "ccnet/hash"  # its task markers live under _runs/ccnet/hash/


def ccnet_dir(root: Path) -> Path:
    return layout.stage_dir(root, "ccnet")


def hash_file(root: Path, documents_file: str, min_length: int) -> Path:
    relative = Path(documents_file).relative_to(layout.DOCUMENTS)
    return ccnet_dir(root) / "hashes" / relative.parent / f"{relative.stem}.min{min_length}.docs.npz"


def group_file(root: Path, snapshot: str, members: Sequence[str]) -> Path:
    digest = hashlib.sha1("\n".join(sorted(members)).encode("utf-8")).hexdigest()[:16]
    return ccnet_dir(root) / "groups" / snapshot / f"{digest}.npy"


@dataclass(frozen=True)
class HashTask:
    key: str  # the documents file, relative to the root
    weight: int
    output: str  # the hash file, relative to the root
    min_length: int


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@dataclass(frozen=True)
class HashWork:
    batch_rows: int = 1_000

    def __call__(self, task: HashTask, ctx: TaskContext) -> TaskResult:
        stats = Stats(bytes_in=task.weight)
        parts = []
        with stats.timed("hash"):
            for batch in pq.ParquetFile(ctx.root / task.key).iter_batches(
                batch_size=self.batch_rows, columns=["raw_content"]
            ):
                texts = batch.column(0).to_pylist()
                parts.append(
                    document_keys([t.split("\n") for t in texts if hashable_text(t, task.min_length)])
                )
                stats.docs_in += batch.num_rows
                ctx.progress(batch.num_rows)
            keys, counts = unique_counts(np.concatenate(parts) if parts else np.empty(0, KEY_DTYPE))
        output = ctx.root / task.output
        atomic.write_bytes(output, _npz_bytes(keys=keys, counts=counts))
        marker = markers.write_marker(ctx.root, output, len(keys))
        stats.bytes_out = marker.bytes
        ctx.progress(0, task.weight)
        return TaskResult(outputs=[marker], stats=stats)


def load_hashes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["keys"].astype(KEY_DTYPE, copy=False), data["counts"]


def merge_group(root: Path, output: Path, members: Sequence[str]) -> None:
    """Write the group's duplicate keys, unless an intact copy exists already."""
    marker = markers.read_marker(output)
    if marker is not None and markers.is_complete(root, marker):
        return
    missing = [m for m in members if not (root / m).is_file()]
    if missing:
        raise FileNotFoundError(
            f"line hashes {missing[0]} (and {len(missing) - 1} more) are gone, and the shards they "
            "belong to are already CCNet output: this dedup group cannot be rebuilt"
        )
    duplicates = duplicate_keys([load_hashes(root / m) for m in members])
    buffer = io.BytesIO()
    np.save(buffer, duplicates)
    atomic.write_bytes(output, buffer.getvalue())
    markers.write_marker(root, output, len(duplicates))


def load_duplicates(path: Path) -> np.ndarray:
    return np.load(path).astype(KEY_DTYPE, copy=False)
