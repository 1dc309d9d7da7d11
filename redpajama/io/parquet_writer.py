"""Parquet output files, written atomically and marked complete.

`PartitionedWriter` takes record batches already split by destination and keeps one open
`ParquetWriter` per destination, each writing to a hidden temp file. Rows are buffered per
destination and flushed as one row group at `row_group_rows` rows or `row_group_bytes` bytes, so
memory stays bounded however large the input is. `commit()` closes, renames and marks every file;
`abort()` removes the temp files. Output bytes depend only on the rows, so a rerun after a crash
reproduces identical files.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.io import atomic, markers

COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3


@dataclass
class _Open:
    temp: Path
    writer: pq.ParquetWriter
    pending: list[pa.RecordBatch] = field(default_factory=list)
    pending_rows: int = 0
    pending_bytes: int = 0
    rows: int = 0


class PartitionedWriter:
    def __init__(
        self,
        root: Path,
        schema: pa.Schema,
        *,
        row_group_rows: int = 10_000,
        row_group_bytes: int = 64 << 20,
    ) -> None:
        self.root = root
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.row_group_bytes = row_group_bytes
        self._open: dict[Path, _Open] = {}

    def open(self, destination: Path) -> None:
        """Make sure `destination` is written on commit, even if it receives no rows."""
        self._state(destination)

    def write(self, destination: Path, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        state = self._state(destination)
        state.pending.append(batch)
        state.pending_rows += batch.num_rows
        state.pending_bytes += batch.nbytes
        if state.pending_rows >= self.row_group_rows or state.pending_bytes >= self.row_group_bytes:
            self._flush(state)

    def _state(self, destination: Path) -> _Open:
        state = self._open.get(destination)
        if state is None:
            destination.parent.mkdir(parents=True, exist_ok=True)
            temp = atomic.temp_path_for(destination)
            writer = pq.ParquetWriter(
                temp,
                self.schema,
                compression=COMPRESSION,
                compression_level=COMPRESSION_LEVEL,
                write_statistics=["id", "id_int"] if "id_int" in self.schema.names else True,
            )
            state = self._open[destination] = _Open(temp=temp, writer=writer)
        return state

    def _flush(self, state: _Open) -> None:
        if not state.pending:
            return
        table = pa.Table.from_batches(state.pending, schema=self.schema)
        state.writer.write_table(table, row_group_size=max(table.num_rows, 1))
        state.rows += table.num_rows
        state.pending, state.pending_rows, state.pending_bytes = [], 0, 0

    def commit(self) -> list[markers.OutputMarker]:
        """Close every file, move it into place and write its marker. Sorted by path."""
        done = []
        for destination in sorted(self._open):
            state = self._open[destination]
            self._flush(state)
            state.writer.close()
            atomic.commit(state.temp, destination)
            done.append(markers.write_marker(self.root, destination, state.rows))
        self._open.clear()
        return done

    def abort(self) -> None:
        for state in self._open.values():
            with contextlib.suppress(Exception):
                state.writer.close()
            with contextlib.suppress(FileNotFoundError):
                state.temp.unlink()
        self._open.clear()
