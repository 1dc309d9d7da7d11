"""Plain-text reader: a whole file (.txt, .md, optionally compressed) is one document."""

from __future__ import annotations

import os
from collections.abc import Iterator

from resiliparse.parse.encoding import bytes_to_str, detect_encoding

from redpajama.io.readers.base import RawDoc, ReadOptions, RecordError
from redpajama.io.readers.compressed import StreamBroken, open_binary

#: Larger files are reported, not read: one document must fit in memory (ReadOptions.extra key).
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_COMPRESSION_SUFFIXES = (".gz", ".zst", ".zstd", ".bz2")


def read_text(path: str, options: ReadOptions) -> Iterator[RawDoc | RecordError]:
    max_bytes = int(options.extra.get("max_text_bytes", DEFAULT_MAX_BYTES))
    chunks: list[bytes] = []
    size = 0
    with open_binary(path) as f:
        # Chunk by chunk so the limit is checked before memory is spent; one byte past the limit
        # tells whether it was exceeded.
        while size <= max_bytes:
            try:
                chunk = f.read1(min(1 << 24, max_bytes + 1 - size))
            except StreamBroken as e:
                yield RecordError("truncated", path, 0, size, str(e))
                return
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    data = b"".join(chunks)
    del chunks
    if len(data) > max_bytes:
        yield RecordError("too_large", path, 0, 0, f"document larger than {max_bytes} bytes")
        return
    try:
        text = _decode(data, options.encoding)
    except (UnicodeError, LookupError) as e:
        yield RecordError("utf8", path, 0, 0, f"cannot decode: {e}")
        return
    if not text:
        return
    yield RawDoc(index=0, offset=0, fields={"title": _title(path), "raw_content": text})


def _decode(data: bytes, encoding: str | None) -> str:
    if encoding:
        return data.decode(encoding)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # errors="strict": a text we can only decode with replacement characters is reported.
    return bytes_to_str(data, detect_encoding(data), errors="strict")


def _title(path: str) -> str:
    name = os.path.basename(path)
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
