"""Parquet reader: one document per row, streamed one record batch at a time.

Row groups are read one by one, so a corrupt group costs only its own rows. Its loss is one
`LostRecords` error that stands for every row of the group not read (from the row-group
metadata), so error counts and `--max-error-rate` see the rows that were lost, not one record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.io.readers.base import InputFileError, RawDoc, ReadOptions, RecordError
from redpajama.io.readers.records import NoText, record_fields

_BATCH_ROWS = 1024


@dataclass(frozen=True, slots=True)
class LostRecords(RecordError):
    """A RecordError standing for `count` records lost together, from `index` on."""

    count: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {**RecordError.as_dict(self), "records": self.count}


def read_parquet(path: str, options: ReadOptions) -> Iterator[RawDoc | RecordError]:
    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        raise InputFileError(f"cannot open parquet file {path}: {e}") from e
    index = 0
    with pf:
        meta = pf.metadata
        for group in range(meta.num_row_groups):
            n_rows = meta.row_group(group).num_rows
            start = index
            try:
                for batch in pf.iter_batches(batch_size=_BATCH_ROWS, row_groups=[group]):
                    for record in batch.to_pylist():
                        yield row_to_doc(path, index, record, options)
                        index += 1
            except (OSError, pa.ArrowException) as e:
                lost = start + n_rows - index  # rows of the group not yielded
                yield LostRecords(
                    "parquet_row_group",
                    path,
                    index,
                    None,
                    f"row group {group}: {lost} of its {n_rows} rows (rows {index}-{start + n_rows - 1}) "
                    f"unreadable: {e}",
                    count=max(lost, 1),
                )
                index = start + n_rows  # later groups keep their row numbers


def row_to_doc(path: str, index: int, record: dict, options: ReadOptions) -> RawDoc | RecordError:
    try:
        return RawDoc(index=index, offset=None, fields=record_fields(record, options.text_field))
    except NoText as e:
        return RecordError("no_text", path, index, None, str(e))
