"""JSON Lines reader (.jsonl/.json, optionally .gz/.zst/.bz2): one JSON object per line.

`index` is the raw line number, blank lines included, because RPv2 ids are `<path>/<line>`
(REFERENCE A.2.7): skipping a blank or broken line must not shift the ids of later documents.

A corrupt gzip member or zstd frame in the middle of a file is reported ("corrupt", with the
compressed offsets) and reading goes on at the next member (see compressed.py). How many lines
the lost member held is unknown, so it takes one index, like a cut line: later indices (and RPv2
ids derived from them) then count from there, and the error says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from redpajama.io.readers.base import RawDoc, ReadOptions, RecordError
from redpajama.io.readers.compressed import StreamError, iter_lines
from redpajama.io.readers.records import NoText, record_fields

try:
    import orjson

    _loads = orjson.loads
    _JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - orjson is a declared dependency
    import json

    def _loads(data: bytes) -> Any:
        return json.loads(data.decode("utf-8"))

    _JSONError = (json.JSONDecodeError,)


def read_jsonl(path: str, options: ReadOptions) -> Iterator[RawDoc | RecordError]:
    index = 0
    for item in iter_lines(path):
        if isinstance(item, StreamError):
            if not item.resumable:
                yield RecordError(item.kind, path, index, item.offset, item.message)
                return
            yield RecordError(
                item.kind,
                path,
                index,
                item.offset,
                f"{item.message}; the lost data counts as line {index}, so later line numbers are "
                "those of the readable data",
            )
            index += 1
            continue
        offset, line = item
        yield from _parse_line(path, index, offset, line, options)
        index += 1


def _parse_line(
    path: str, index: int, offset: int, line: bytes, options: ReadOptions
) -> Iterator[RawDoc | RecordError]:
    if not line.strip():
        return
    # Check UTF-8 separately: orjson reports bad bytes as a JSON error, but the two need
    # different fixes upstream, so they are counted under different kinds.
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as e:
        yield RecordError("utf8", path, index, offset, f"invalid UTF-8 at byte {e.start}: {e.reason}")
        return
    try:
        record = _loads(line)
    except _JSONError as e:
        yield RecordError("json", path, index, offset, f"invalid JSON: {e}")
        return
    if not isinstance(record, dict):
        yield RecordError("json", path, index, offset, f"expected an object, got {type(record).__name__}")
        return
    try:
        fields = record_fields(record, options.text_field)
    except NoText as e:
        yield RecordError("no_text", path, index, offset, str(e))
        return
    yield RawDoc(index=index, offset=offset, fields=fields)
