"""Open plain or compressed input files as one decompressed byte stream, and read it line by line.

The compression is sniffed from the file's magic bytes, not its name, so a mislabelled file still
reads. Every decompressor here hands over each byte it could decode before it fails: a truncated
or corrupt file raises `StreamBroken` only after everything before the break has been read. Line
readers use `iter_lines`, which turns that exception into one final `StreamError` item, so every
line-based reader reports a cut file the same way (one "truncated" error, then stop).
"""

from __future__ import annotations

import bz2
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from redpajama.io.readers.base import InputFileError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZ2_MAGIC = b"BZh"

_CHUNK = 1 << 20


class StreamBroken(Exception):
    """The decompressed stream ended early or could not be decoded past some point."""


@dataclass(frozen=True, slots=True)
class StreamError:
    """Last item of `iter_lines` when the stream breaks: where and why."""

    offset: int  # decompressed offset of the first byte not delivered as a complete line
    message: str


def sniff_compression(path: str) -> str:
    """'gzip', 'zstd', 'bz2' or 'plain' (empty files are plain)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise InputFileError(f"cannot open {path}: {e}") from e
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZ2_MAGIC):
        return "bz2"
    return "plain"


class _ZstdRaw(io.RawIOBase):
    """Multi-frame zstd decoder that notices truncation.

    zstandard's `stream_reader` treats a cut frame as a clean end, which would silently lose the
    tail of a file; here the frame state is checked when the input runs out.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._in_frame = False
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = self._raw.read(_CHUNK)
            if not chunk:
                if self._in_frame:
                    raise StreamBroken("zstd stream ended inside a frame (truncated)")
                return 0
            self._pending = self._feed(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _feed(self, data: bytes) -> bytes:
        out = []
        while data:
            self._in_frame = True
            try:
                out.append(self._obj.decompress(data))
            except zstandard.ZstdError as e:
                raise StreamBroken(f"zstd data error: {e}") from e
            if not self._obj.eof:
                break
            # Frame complete: whatever follows is the next frame (multi-frame files).
            data = self._obj.unused_data
            self._obj = self._dctx.decompressobj()
            self._in_frame = False
        return b"".join(out)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Guarded(io.RawIOBase):
    """Re-raises any decompressor failure as `StreamBroken`, after the bytes it did decode."""

    def __init__(self, inner: BinaryIO, what: str) -> None:
        self._inner = inner
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            # read1, not read: read(n) loops over several chunks and drops them all if a later
            # chunk fails, which would lose good data before a cut.
            data = self._inner.read1(len(buffer))
        except StreamBroken:
            raise
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError, ValueError) as e:
            raise StreamBroken(f"{self._what} stream broken: {e}") from e
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()


def open_binary(path: str) -> BinaryIO:
    """A buffered, decompressed binary stream of `path` (plain, gzip incl. multi-member, zstd, bz2).

    Reads raise `StreamBroken` at a truncation or corruption, never before the last good byte.
    """
    kind = sniff_compression(path)
    try:
        raw: BinaryIO = open(path, "rb")
    except OSError as e:
        raise InputFileError(f"cannot open {path}: {e}") from e
    if kind == "plain":
        return raw
    inner: BinaryIO
    if kind == "gzip":
        # GzipFile reads concatenated members (per-record gzip WARC) and returns decoded data
        # before it raises EOFError for a cut member.
        inner = gzip.GzipFile(fileobj=raw, mode="rb")
    elif kind == "zstd":
        return io.BufferedReader(_ZstdRaw(raw), buffer_size=_CHUNK)  # type: ignore[return-value]
    else:
        inner = bz2.BZ2File(raw, mode="rb")
    return io.BufferedReader(_Guarded(inner, kind), buffer_size=_CHUNK)  # type: ignore[return-value]


def iter_lines(path: str) -> Iterator[tuple[int, bytes] | StreamError]:
    """(decompressed offset, line incl. its b"\\n") for each line, then a `StreamError` if broken.

    A last line without a newline is still yielded when the stream ends cleanly; when the stream
    breaks, the partial line is the record that was cut, so it is reported, not yielded.
    """
    f = open_binary(path)
    offset = 0
    try:
        while True:
            try:
                line = f.readline()
            except StreamBroken as e:
                yield StreamError(offset, str(e))
                return
            if not line:
                return
            yield offset, line
            offset += len(line)
    finally:
        f.close()
