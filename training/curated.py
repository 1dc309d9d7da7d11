"""Reading a curated folder for the tokenize stage: which Parquet files, in which order, which text
column, and which rows could not be read.

Damage costs only itself: a file that will not open, a row group that will not read and a row with
a null `id` become `LostRows` entries naming the file and rows (the Parquet reader of ingest counts
its lost row groups the same way), and every other row is read. A file without the columns is the
wrong input, not damage: UserError.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.errors import UserError
from redpajama.io.layout import DOCUMENTS

#: Text columns tried in order when none is named: our documents' column, then the common one.
TEXT_FIELDS = ("raw_content", "text")


@dataclass(frozen=True)
class LostRows:
    """Rows of the curated folder left out of the tokens: a row group that would not read, a run of
    rows with a null `id`, or a whole file that would not open (rows None: how many is unknown)."""

    file: str
    first_row: int
    rows: int | None
    reason: str

    def describe(self) -> str:
        if self.rows is None:
            where = "whole file"
        elif self.rows == 1:
            where = f"row {self.first_row}"
        else:
            where = f"rows {self.first_row}-{self.first_row + self.rows - 1}"
        return f"{self.file}: {where}: {self.reason}"


def documents_root(source: Path) -> Path:
    """Where a curated folder's documents are: `documents/` in our trees (never `dropped/` or
    `_runs/`), else the folder itself."""
    return source / DOCUMENTS if (source / DOCUMENTS).is_dir() else source


def source_files(source: Path) -> list[Path]:
    """The Parquet files of a curated folder in the order their documents enter the stream."""
    if not source.is_dir():
        raise UserError(
            f"{source}: not a folder", "give the curated folder (e.g. the -o of `redpajama filter`)"
        )
    root = documents_root(source)
    files = [
        path
        for path in root.rglob("*.parquet")
        if path.is_file() and not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)
    ]
    if not files:
        raise UserError(
            f"{root}: no *.parquet files", "give a folder written by `redpajama ingest` or `filter`"
        )
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def _text_column(path: Path, names: list[str], wanted: str | None) -> str:
    if "id" not in names:
        raise UserError(f"{path}: no `id` column", "tokenize reads documents keyed by `id`")
    candidates = (wanted,) if wanted else TEXT_FIELDS
    for name in candidates:
        if name in names:
            return name
    raise UserError(
        f"{path}: no text column (looked for {', '.join(candidates)})", "name it with --text-field"
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _note_lost(lost: list[LostRows], entry: LostRows) -> None:
    """Append `entry`, merged into the last one where it continues it (a run of null ids is one entry)."""
    last = lost[-1] if lost else None
    if (
        last is not None
        and last.rows is not None
        and entry.rows is not None
        and (last.file, last.reason, last.first_row + last.rows)
        == (entry.file, entry.reason, entry.first_row)
    ):
        lost[-1] = LostRows(last.file, last.first_row, last.rows + entry.rows, last.reason)
    else:
        lost.append(entry)


def file_batches(
    path: Path, text_field: str | None, batch_docs: int, lost: list[LostRows]
) -> Iterator[tuple[list, list]]:
    """(ids, texts) of one Parquet file, row group by row group. A file that will not open, a row
    group that will not read and a row with a null `id` go to `lost`, named by row; every other row is
    kept. A file without the columns is the wrong input, not damage: UserError."""
    try:
        reader = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        lost.append(LostRows(str(path), 0, None, f"cannot open: {_one_line(exc)}"))
        return
    with reader:
        text_column = _text_column(path, reader.schema_arrow.names, text_field)
        start = 0
        for group in range(reader.metadata.num_row_groups):
            group_rows = reader.metadata.row_group(group).num_rows
            row = start
            try:
                for batch in reader.iter_batches(
                    batch_size=batch_docs, row_groups=[group], columns=["id", text_column]
                ):
                    ids = batch.column("id").to_pylist()
                    texts = batch.column(text_column).to_pylist()
                    for i, doc_id in enumerate(ids):
                        if doc_id is None:
                            _note_lost(lost, LostRows(str(path), row + i, 1, "`id` is null"))
                    if None in ids:
                        texts = [text for doc_id, text in zip(ids, texts, strict=True) if doc_id is not None]
                        ids = [doc_id for doc_id in ids if doc_id is not None]
                    row += batch.num_rows
                    yield ids, texts
            except (OSError, pa.ArrowException) as exc:
                reason = f"row group {group} unreadable: {_one_line(exc)}"
                _note_lost(lost, LostRows(str(path), row, start + group_rows - row, reason))
            start += group_rows
