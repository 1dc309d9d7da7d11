"""Synthetic minhash trees with planted near-duplicates, in the minhash stage's exact layout.

`OUT/minhash/<snapshot>/<shard>/<lang>_<bucket>.parquet` with `shard_id, id, id_int` and
`signature_sim<t>` = `list<binary>` (one big-endian uint32 band per element, null for documents
without a signature), plus markers. A MinHash value of two sets agrees with probability equal to
their Jaccard similarity, so a near-copy at similarity s keeps each of the 128 values of its base
with probability s and redraws the rest.

Used by the tests and the scale benchmark; signatures are generated per file, so a 10M-document
tree never sits in memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from redpajama.ids import id_ints_of
from redpajama.io.parquet_writer import PartitionedWriter
from redpajama.pipelines.dedup.config import BANDS_ROWS, signature_column
from redpajama.pipelines.dedup.lsh import _fmix64

PERMUTATIONS = 128


def minhash_schema(thresholds: Sequence[float]) -> pa.Schema:
    fields = [
        pa.field("shard_id", pa.string()),
        pa.field("id", pa.string(), nullable=False),
        pa.field("id_int", pa.uint64(), nullable=False),
    ]
    fields += [pa.field(signature_column(t), pa.list_(pa.binary())) for t in thresholds]
    return pa.schema(fields)


def band_column(signatures: np.ndarray, valid: np.ndarray, threshold: float) -> pa.Array:
    """`list<binary>` bands of uint32 signatures (n, >= b*r), big-endian as RPv2; null where not valid."""
    bands, rows = BANDS_ROWS[float(threshold)]
    n = signatures.shape[0]
    body = np.ascontiguousarray(signatures[:, : bands * rows].astype(">u4"))
    values = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(4 * rows), n * bands, [None, pa.py_buffer(body.tobytes())]
    ).cast(pa.binary())
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * bands)
    lists = pa.ListArray.from_arrays(offsets, values, mask=pa.array(~valid))
    return lists


def write_minhash_file(
    root: Path,
    relative: str,
    ids: Sequence[str],
    signatures: np.ndarray,
    valid: np.ndarray | None = None,
    thresholds: Sequence[float] = tuple(BANDS_ROWS),
) -> Path:
    """Write `minhash/<relative>` (e.g. "2023-14/0000/en_head.parquet") with its marker."""
    n = len(ids)
    valid = np.ones(n, dtype=bool) if valid is None else valid
    schema = minhash_schema(thresholds)
    shard_id = relative.removesuffix(".parquet") + ".json.gz"
    arrays = [pa.array([shard_id] * n), pa.array(list(ids), pa.string()), pa.array(id_ints_of(list(ids)))]
    arrays += [band_column(signatures, valid, t) for t in thresholds]
    path = root / "minhash" / relative
    writer = PartitionedWriter(root, schema, row_group_rows=100_000)
    writer.open(path)
    writer.write(path, pa.RecordBatch.from_arrays(arrays, schema=schema))
    writer.commit()
    return path


def base_signatures(bases: np.ndarray, perms: int = PERMUTATIONS) -> np.ndarray:
    """A deterministic pseudo-random signature per base number (no per-base RNG objects)."""
    grid = bases.astype(np.uint64)[:, None] * np.uint64(perms) + np.arange(perms, dtype=np.uint64)
    return (_fmix64(grid + np.uint64(0x5DEECE66D)) >> np.uint64(32)).astype(np.uint32)


def near_copies(base: np.ndarray, similarity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Copies of `base` rows keeping each value with probability `similarity` (per row)."""
    keep = rng.random(base.shape) < similarity[:, None]
    fresh = rng.integers(0, 2**32, size=base.shape, dtype=np.uint32)
    return np.where(keep, base, fresh)


@dataclass(kw_only=True)
class PlantedSpec:
    docs_per_file: int = 100_000
    files: int = 10
    snapshots: tuple[str, ...] = ("2023-14",)
    dup_fraction: float = 0.2  # documents that are near-copies of a base document
    bases: int = 50_000  # pool the near-copies are drawn from (clusters of ~dup/bases copies)
    similarity: tuple[float, float] = (0.9, 1.0)  # copies' similarity to their base, uniform
    null_fraction: float = 0.01  # documents without a signature
    thresholds: tuple[float, ...] = (0.8,)
    seed: int = 0


def write_planted_tree(root: Path, spec: PlantedSpec) -> np.ndarray:
    """Write a planted minhash tree; returns each document's base (-1 for unique ones), in the
    dense row order of the dedup stage (files sorted by path)."""
    truth = []
    per_snapshot = max(1, spec.files // len(spec.snapshots))
    for f in range(spec.files):
        snapshot = spec.snapshots[min(f // per_snapshot, len(spec.snapshots) - 1)]
        relative = f"{snapshot}/{f:04d}/en_head.parquet"
        rng = np.random.default_rng([spec.seed, f])
        n = spec.docs_per_file
        signatures = rng.integers(0, 2**32, size=(n, PERMUTATIONS), dtype=np.uint32)
        base = np.where(rng.random(n) < spec.dup_fraction, rng.integers(0, spec.bases, size=n), -1)
        copies = np.flatnonzero(base >= 0)
        similarity = rng.uniform(*spec.similarity, size=copies.size)
        signatures[copies] = near_copies(base_signatures(base[copies]), similarity, rng)
        valid = rng.random(n) >= spec.null_fraction
        base[~valid] = -1
        ids = [f"{relative.removesuffix('.parquet')}.json.gz/{i}" for i in range(n)]
        write_minhash_file(root, relative, ids, signatures, valid, spec.thresholds)
        truth.append((relative, base))
    return np.concatenate([b for _, b in sorted(truth)])
