"""LSH banding: band keys, their disk partitions, and the star edges of one partition.

A document's band j (r uint32 values, as the minhash stage wrote them) becomes one 64-bit key
hashed together with j, so equal bytes in different bands never meet (RPv2 groups by
(band bytes, band index)). With 64-bit keys, 90M keys (10M docs x 9 bands) collide by chance
with probability ~1e-4 in the whole run; a collision only adds one spurious candidate pair.

Keys are routed to `key % N` partitions and appended to two raw files per partition (keys uint64,
rows uint32/uint64). Documents sharing a band share its key, hence its partition, so every
partition is processed alone: `partition_edges` is a pure function of its arrays and is what a
cluster engine would map over partitions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S33 = np.uint64(33)


def _fmix64(h: np.ndarray) -> np.ndarray:
    # MurmurHash3's finalizer: every input bit affects every output bit.
    h ^= h >> _S33
    h *= _M1
    h ^= h >> _S33
    h *= _M2
    h ^= h >> _S33
    return h


def signature_matrix(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(valid mask over rows, uint32 array (n_valid, bands, rows)) of a `list<binary>` column."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if not valid.any():
        return valid, np.zeros((0, 0, 0), dtype=np.uint32)
    lengths = np.asarray(array.value_lengths().fill_null(0).to_numpy(zero_copy_only=False))[valid]
    bands = int(lengths[0])
    if bands == 0 or (lengths != bands).any():
        raise ValueError("signature lists must all have the same number of bands")
    flat = array.flatten()  # skips null lists, honours slicing
    offset_type = np.int64 if pa.types.is_large_binary(flat.type) else np.int32
    offsets = np.frombuffer(flat.buffers()[1], dtype=offset_type)[flat.offset : flat.offset + len(flat) + 1]
    widths = np.diff(offsets)
    width = int(widths[0])
    if width % 4 or (widths != width).any():
        raise ValueError("every band must hold the same number of uint32 values")
    data = np.frombuffer(flat.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    return valid, data.view(np.uint32).reshape(len(lengths), bands, width // 4)


def band_keys(signatures: np.ndarray) -> np.ndarray:
    """uint64 keys (n, bands) of a signature matrix (n, bands, rows); a pure function of the bytes."""
    n, bands, rows = signatures.shape
    keys = np.empty((n, bands), dtype=np.uint64)
    keys[:] = _fmix64(np.arange(1, bands + 1, dtype=np.uint64) * _GOLDEN)
    for c in range(rows):
        keys ^= signatures[:, :, c]
        keys *= _GOLDEN
        keys ^= keys >> _S33
    return _fmix64(keys)


def row_dtype(total_rows: int) -> type[np.unsignedinteger]:
    return np.uint32 if total_rows < 2**32 - 1 else np.uint64


class PartitionSpill:
    """Appends (key, row) pairs to N partition files under `directory`."""

    def __init__(self, directory: Path, partitions: int, rows_dtype: type[np.unsignedinteger]) -> None:
        self.directory = directory
        self.partitions = partitions
        self.rows_dtype = rows_dtype
        directory.mkdir(parents=True, exist_ok=True)
        self._keys = [open(self.keys_path(p), "wb") for p in range(partitions)]  # noqa: SIM115
        self._rows = [open(self.rows_path(p), "wb") for p in range(partitions)]  # noqa: SIM115
        self.entries = 0

    def keys_path(self, p: int) -> Path:
        return self.directory / f"part-{p:05d}.keys"

    def rows_path(self, p: int) -> Path:
        return self.directory / f"part-{p:05d}.rows"

    def add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """`keys` (n, bands) of documents `rows` (n,)."""
        flat_keys = keys.ravel()
        flat_rows = np.repeat(rows.astype(self.rows_dtype, copy=False), keys.shape[1])
        part = (flat_keys % np.uint64(self.partitions)).astype(np.int64)
        order = np.argsort(part, kind="stable")  # stable: rows stay ascending inside a partition
        bounds = np.searchsorted(part[order], np.arange(self.partitions + 1))
        flat_keys, flat_rows = flat_keys[order], flat_rows[order]
        for p in range(self.partitions):
            lo, hi = bounds[p], bounds[p + 1]
            if hi > lo:
                self._keys[p].write(flat_keys[lo:hi].tobytes())
                self._rows[p].write(flat_rows[lo:hi].tobytes())
        self.entries += flat_keys.size

    def close(self) -> None:
        for handle in self._keys + self._rows:
            handle.close()

    def read(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        return np.fromfile(self.keys_path(p), dtype=np.uint64), np.fromfile(
            self.rows_path(p), dtype=self.rows_dtype
        )

    def iter_partitions(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for p in range(self.partitions):
            keys, rows = self.read(p)
            yield p, keys, rows
            self.keys_path(p).unlink()  # done with it: free the disk as we go
            self.rows_path(p).unlink()


def partition_edges(keys: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Star edges (member, group min) of every key shared by >= 2 rows; pure.

    The same candidate pair may come out of several bands; the union-find takes duplicates.
    """
    if keys.size == 0:
        return rows[:0], rows[:0]
    order = np.argsort(keys)
    sorted_keys, sorted_rows = keys[order], rows[order]
    starts = np.empty(keys.size, dtype=bool)
    starts[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    group_min = np.minimum.reduceat(sorted_rows, first)
    target = group_min[np.cumsum(starts) - 1]
    edge = sorted_rows != target  # singleton groups and the min itself give no edge
    return sorted_rows[edge], target[edge]
