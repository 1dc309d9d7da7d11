"""RedPajama-V2's quality-signals files (`*.signals.json.gz`) <-> our signals tables.

RPv2 writes one JSON line per document (REFERENCE A.2.3):

    {"id": ..., "id_int": ..., "metadata": {cc_segment, cc_net_source, url, source_domain,
     language, snapshot_id}, "quality_signals": {name: [[start, end, score], ...]}}

Document-level signals are one span `[0, len(raw_content), score]`; line-level signals one span
per line. Our tables store a document-level signal as a typed column and a line-level one as a
list of spans, so conversion needs to know each signal's level: `levels` maps a name to
"document" or "line"; a name it does not know is read as line-level, which loses nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa

from redpajama.ids import id_int_of, rpv2_doc_id
from redpajama.io.readers.base import RecordError
from redpajama.io.readers.compressed import StreamError, iter_lines

SPAN_TYPE = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("score", pa.float64())])
SPANS_TYPE = pa.list_(SPAN_TYPE)
METADATA_KEYS = ("cc_segment", "cc_net_source", "url", "source_domain", "language", "snapshot_id")


def _score(value: Any, as_int: bool) -> Any:
    if value is None:
        return None
    if as_int and not (isinstance(value, float) and not math.isfinite(value)):
        return int(value)
    return value


def to_json_lines(
    signals: pa.Table,
    documents: pa.Table,
    cc_net_source: str,
    int_scores: Iterable[str],
    first_row: int = 0,
    key_order: Sequence[str] = (),
) -> Iterator[bytes]:
    """RPv2 JSON lines for a signals table and the documents table it was computed from, whose
    rows are lines `first_row`, `first_row + 1`, ... of the exported documents file `cc_net_source`.
    Signals named in `key_order` come first, in that order, then the others in table order.

    `id` and `id_int` are RPv2's for that line (`<cc_net_source>/<line>`, REFERENCE A.2.7), not
    the ids of our tree: those came from the input file, which need not be the exported file (other
    input formats, lines dropped by a stage or unreadable at ingest)."""
    int_scores = set(int_scores)
    if signals.column("id").to_pylist() != documents.column("id").to_pylist():
        raise ValueError(f"{cc_net_source}: signals and documents rows are not aligned by id")
    rank = {name: i for i, name in enumerate(key_order)}
    names = [n for n in signals.column_names if n not in ("id", "id_int")]
    names.sort(key=lambda n: rank.get(n, len(rank)))
    lengths = [len(t or "") for t in documents.column("raw_content").to_pylist()]
    meta_columns = {k: documents.column(k).to_pylist() for k in METADATA_KEYS if k in documents.column_names}
    values = {n: signals.column(n).to_pylist() for n in names}
    line_level = {n for n in names if pa.types.is_list(signals.schema.field(n).type)}
    for row in range(signals.num_rows):
        doc_id = rpv2_doc_id(cc_net_source, first_row + row)
        metadata = {
            key: cc_net_source if key == "cc_net_source" else meta_columns.get(key, [None] * (row + 1))[row]
            for key in METADATA_KEYS
        }
        metadata["snapshot_id"] = metadata["snapshot_id"] or cc_net_source.split("/", 1)[0]
        quality: dict[str, Any] = {}
        for name in names:
            value = values[name][row]
            as_int = name in int_scores
            if name in line_level:
                quality[name] = (
                    None
                    if value is None
                    else [[s["start"], s["end"], _score(s["score"], as_int)] for s in value]
                )
            else:
                quality[name] = [[0, lengths[row], _score(value, as_int)]]
        record = {"id": doc_id, "id_int": id_int_of(doc_id), "metadata": metadata, "quality_signals": quality}
        yield orjson.dumps(record) + b"\n"


def read_json_gz(
    path: str,
    levels: Mapping[str, str],
    dtypes: Mapping[str, pa.DataType],
    batch_rows: int = 1000,
) -> Iterator[pa.RecordBatch | RecordError]:
    """Batches of (id, id_int, signal columns...) from an RPv2 signals file.

    Signals named in `dtypes` get that type (document-level: the span's score); others are kept
    as line-level spans. The record's `metadata` repeats fields of the documents file and is not
    kept. Bad lines (not JSON, wrong shape, a value that does not fit its column's type) are
    yielded as RecordError with their line number and skipped; a batch holds only the columns its
    rows have. A corrupt gzip member is reported and reading goes on at the next one (its lines
    count as one, as in the jsonl reader).
    """
    rows: list[dict[str, Any]] = []
    where: list[tuple[int, int]] = []  # (line, offset) of each row
    index = 0
    for item in iter_lines(path):
        if isinstance(item, StreamError):
            yield RecordError(item.kind, path, index, item.offset, item.message)
            if not item.resumable:
                break
            index += 1
            continue
        offset, line = item
        index += 1
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            rows.append(_flatten(record, levels))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            yield RecordError("json", path, index - 1, offset, f"bad signals record: {exc}")
            continue
        where.append((index - 1, offset))
        if len(rows) >= batch_rows:
            yield from _to_batch(path, rows, where, levels, dtypes)
            rows, where = [], []
    if rows:
        yield from _to_batch(path, rows, where, levels, dtypes)


def _flatten(record: dict[str, Any], levels: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": str(record["id"]), "id_int": int(record["id_int"])}
    for name, spans in (record.get("quality_signals") or {}).items():
        if levels.get(name) == "document":
            out[name] = None if not spans else spans[0][2]
        else:
            out[name] = None if spans is None else [{"start": s, "end": e, "score": v} for s, e, v in spans]
    return out


def _column_type(name: str, levels: Mapping[str, str], dtypes: Mapping[str, pa.DataType]) -> pa.DataType:
    if name == "id_int":
        return pa.uint64()
    if name == "id":
        return pa.string()
    if name in dtypes:
        return dtypes[name]
    return SPANS_TYPE if levels.get(name) != "document" else pa.float64()


def _to_batch(
    path: str,
    rows: list[dict[str, Any]],
    where: list[tuple[int, int]],
    levels: Mapping[str, str],
    dtypes: Mapping[str, pa.DataType],
) -> Iterator[pa.RecordBatch | RecordError]:
    """One batch of `rows`; a row with a value its column's type cannot hold is yielded as a
    RecordError (naming line, signal and value) and left out, so it never takes the batch with it.

    Columns are converted whole (fast); only a column that fails is checked value by value."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    types = {name: _column_type(name, levels, dtypes) for name in names}
    columns: dict[str, pa.Array] = {}
    bad: dict[int, str] = {}  # row -> why (the first bad value found)
    for name, dtype in types.items():
        values = [row.get(name) for row in rows]
        try:
            columns[name] = pa.array(values, type=dtype)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            found = False
            for i, value in enumerate(values):
                if not _fits(value, dtype):
                    found = True
                    bad.setdefault(i, f"{name!r}: {str(value)[:80]!r} does not fit the column type {dtype}")
            if not found:  # every value fits on its own: convert them one by one
                columns[name] = pa.concat_arrays([pa.array([v], type=dtype) for v in values])
    if bad:
        for i in sorted(bad):
            line, offset = where[i]
            yield RecordError("signal_type", path, line, offset, f"bad signals record: {bad[i]}")
        rows = [row for i, row in enumerate(rows) if i not in bad]
        if not rows:
            return
        yield from _to_batch(path, rows, [w for i, w in enumerate(where) if i not in bad], levels, dtypes)
        return
    schema = pa.schema([pa.field(name, dtype) for name, dtype in types.items()])
    yield pa.RecordBatch.from_arrays([columns[name] for name in types], schema=schema)


def _fits(value: Any, dtype: pa.DataType) -> bool:
    try:
        pa.array([value], type=dtype)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return False
    return True
