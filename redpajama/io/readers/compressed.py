"""Open plain or compressed input files as one decompressed byte stream, and read it line by line.

The compression is sniffed from the file's magic bytes, not its name, so a mislabelled file still
reads. Every decompressor here hands over each byte it could decode before it fails: a truncated
or corrupt file raises `StreamBroken` only after everything before the break has been read.

gzip files may hold several members (concatenated files, per-record WARC/WET) and zstd files
several frames. Both are decoded one member/frame at a time here (not by `gzip.GzipFile`, which
cannot go on after a bad member), so a corrupt member in the middle costs only that member: the
break is raised as a *resumable* `StreamBroken`, and reading on continues at the next member,
found by its magic (gzip `1f 8b 08`, zstd `28 b5 2f fd`). Magic bytes can also occur by chance
inside compressed data, so a member found this way is trusted only once it decodes to its end
(gzip checks its CRC-32 and length there) or yields `_TRUST_BYTES` without an error; random
bytes never get that far. Output of a candidate is held back until then, so a false start never
leaks garbage. Every member's first `_TRUST_BYTES` are held back the same way, so a small member
whose checksum fails (per-record WET/JSONL members) is dropped whole, not handed out damaged. A truncation (the file ends inside a member) or a break with no later member
ends the stream. bz2 is read as one stream: a break there ends the file.

Line readers use `iter_lines`, which turns each break into a `StreamError` item: the partial line
before the break is the record that was lost and is reported, not yielded; after a resumable
break, lines go on from the next member. Offsets count decoded bytes as delivered, so after a
skipped member they are no longer those of an intact copy of the file (the message gives the
compressed offsets of the bad member and of the member reading resumed at).
"""

from __future__ import annotations

import bz2
import io
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from redpajama.io.readers.base import InputFileError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZ2_MAGIC = b"BZh"

_GZIP_MEMBER = GZIP_MAGIC + b"\x08"  # magic + deflate: where a gzip member starts
_CHUNK = 1 << 20  # read size; also the most a zlib call may output
_ZSTD_IN = 1 << 16  # compressed bytes per zstd call (its output is not capped otherwise)
# Compressed bytes per zlib call: from 16 KiB at a member's start, doubling to 256 KiB. zlib
# copies the input left after a member ends, so small first pieces keep files of many small
# members (per-record WET, WARC) cheap, and large ones keep a single-member file's loop short.
_GZIP_IN_FIRST = 1 << 14
_GZIP_IN = 1 << 18
_WINDOW = 1 << 20  # compressed bytes read from the file at a time, served from memory after
#: Decoded bytes of a member held back until it ends or passes this size: a member found by
#: scanning for its magic is trusted then, and a small member whose checksum fails is dropped.
_TRUST_BYTES = 1 << 16


class StreamBroken(Exception):
    """The decompressed stream ended early or could not be decoded past some point.

    `resumable`: the stream skipped the bad data and reading on continues after it.
    `kind`: "truncated" (the file ends inside a member) or "corrupt" (data that cannot be decoded).
    """

    def __init__(self, message: str, *, kind: str = "truncated", resumable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.resumable = resumable


@dataclass(frozen=True, slots=True)
class StreamError:
    """An item of `iter_lines` where the stream breaks: where and why.

    The last item unless `resumable`: then lines go on after the skipped data.
    """

    offset: int  # decompressed offset of the first byte not delivered as a complete line
    message: str
    kind: str = "truncated"  # "truncated" or "corrupt", as StreamBroken.kind
    resumable: bool = False


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


@dataclass(slots=True)
class _Outcome:
    trusted: bool  # the member's output was (or would have been) handed out
    end: int | None = None  # compressed offset just past the member, when it decoded to its end
    error: str | None = None  # why it failed; None with end None: the file ended inside it
    checksum_failed: bool = False  # the data decoded, but the member's checksum does not match


class _Members(io.RawIOBase):
    """Concatenated gzip members or zstd frames, decoded one after another, resyncing after a
    corrupt one (see the module docstring). `readinto` raises StreamBroken at a break, once every
    byte before it was handed out; after a resumable one, reading continues."""

    def __init__(self, raw: BinaryIO, kind: str) -> None:
        self._raw = raw
        self._kind = kind
        self._unit = "gzip member" if kind == "gzip" else "zstd frame"
        self._search = _GZIP_MEMBER if kind == "gzip" else ZSTD_MAGIC
        self._items: Iterator[bytes | StreamBroken] | None = self._decode()
        self._pending = memoryview(b"")
        self._window: tuple[int, memoryview, bool] = (0, memoryview(b""), False)  # base, data, to EOF
        self.delivered = 0  # decoded bytes handed out by readinto

    def readable(self) -> bool:
        return True

    def next_chunk(self) -> bytes:
        """The next piece of decoded data (b"" at the end); raises StreamBroken at a break."""
        if self._pending:
            data = bytes(self._pending)
            self._pending = memoryview(b"")
            return data
        while self._items is not None:
            try:
                item = next(self._items)
            except StopIteration:
                self._items = None
                break
            if isinstance(item, StreamBroken):
                if not item.resumable:
                    self._items = None
                raise item
            if item:
                return item
        return b""

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            self._pending = memoryview(self.next_chunk())
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.delivered += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()

    # --- decoding ------------------------------------------------------------------------

    def _decode(self) -> Iterator[bytes | StreamBroken]:
        pos = 0  # where the next member starts, when the previous one ended cleanly
        broken: tuple[int, str] | None = None  # (offset, why): bad data not yet skipped past
        scan = 0  # where to look for the next member's magic while `broken`
        while True:
            if broken is None:
                pos = self._skip_padding(pos)
                head = self._read_at(pos, 4)
                if not head:
                    return
                if not self._starts_member(head):
                    if (ZSTD_MAGIC if self._kind == "zstd" else _GZIP_MEMBER).startswith(head):
                        yield StreamBroken(
                            f"{self._kind} stream ends inside the header of a {self._unit} at byte {pos} "
                            "(truncated)"
                        )
                        return
                    broken, scan = (pos, f"bytes at {pos} do not start a {self._unit}"), pos + 1
                    continue
                start = pos
                outcome = yield from self._member(start, None)
            else:
                start = self._find(scan)
                if start is None:
                    yield StreamBroken(f"{broken[1]}; no later {self._unit} to resume at", kind="corrupt")
                    return
                gap = StreamBroken(
                    f"{broken[1]}; skipped to the {self._unit} at byte {start}",
                    kind="corrupt",
                    resumable=True,
                )
                outcome = yield from self._member(start, gap)
                if not outcome.trusted:  # the magic occurred by chance: look further
                    scan = start + 1
                    continue
                broken = None
            if outcome.end is not None:
                pos = outcome.end
            elif outcome.error is None:
                yield StreamBroken(
                    f"{self._kind} stream ends inside the {self._unit} at byte {start} (truncated)"
                )
                return
            else:
                broken, scan = (
                    (start, f"{self._unit} at byte {start} is corrupt ({outcome.error})"),
                    start + 1,
                )

    def _member(
        self, start: int, gap: StreamBroken | None
    ) -> Generator[bytes | StreamBroken, None, _Outcome]:
        """Decode the member at `start`; a generator whose return value is an `_Outcome`.

        The first `_TRUST_BYTES` of output are held back until the member ends or passes that
        size, so that a small member whose checksum fails is dropped whole rather than handed
        out. With `gap` (a member found by scanning), nothing comes out unless the member
        proves real; then `gap` comes first, then its data."""
        held: list[bytes] = []
        size = 0
        released = False
        for piece in self._decoded(start):
            if isinstance(piece, _Outcome):
                # Data decoded before a cut or a data error is good; a failed checksum taints it all.
                keep = piece.end is not None or (gap is None and not piece.checksum_failed)
                if keep and not released:
                    if gap is not None:
                        yield gap
                    yield b"".join(held)
                    released = True
                piece.trusted = gap is None or released
                return piece
            if released:
                yield piece
                continue
            held.append(piece)
            size += len(piece)
            if size >= _TRUST_BYTES:
                if gap is not None:
                    yield gap
                yield b"".join(held)
                held = []
                released = True
        raise AssertionError("_decoded ends with an _Outcome")  # pragma: no cover

    def _decoded(self, start: int) -> Iterator[bytes | _Outcome]:
        """Decoded pieces of the member at `start`, then its `_Outcome` (trusted left False)."""
        at = start  # compressed offset just past the input read so far
        if self._kind == "gzip":
            d = zlib.decompressobj(31)
            step = _GZIP_IN_FIRST
            while data := self._read_at(at, step):
                at += len(data)
                step = min(2 * step, _GZIP_IN)
                while True:
                    try:
                        out = d.decompress(data, _CHUNK)
                    except zlib.error as e:
                        yield _Outcome(
                            False,
                            error=str(e),
                            checksum_failed=str(e).endswith(("data check", "length check")),
                        )
                        return
                    data = d.unconsumed_tail
                    if out:
                        yield out
                    if d.eof:
                        yield _Outcome(False, end=at - len(d.unused_data))
                        return
                    if not data and len(out) < _CHUNK:
                        break  # zlib needs more input
        else:
            z = zstandard.ZstdDecompressor().decompressobj()
            while data := self._read_at(at, _ZSTD_IN):
                at += len(data)
                try:
                    out = z.decompress(data)
                except zstandard.ZstdError as e:
                    yield _Outcome(False, error=str(e), checksum_failed="checksum" in str(e))
                    return
                if out:
                    yield out
                if z.eof:
                    yield _Outcome(False, end=at - len(z.unused_data))
                    return
        yield _Outcome(False)  # the file ends inside the member

    def _starts_member(self, head: bytes) -> bool:
        if self._kind == "gzip":
            return head.startswith(GZIP_MAGIC)
        # zstd frame, or a skippable frame (magic 0x184D2A5?, which zstandard skips itself)
        return head == ZSTD_MAGIC or (
            len(head) == 4 and head[0] & 0xF0 == 0x50 and head[1:] == b"\x2a\x4d\x18"
        )

    def _skip_padding(self, pos: int) -> int:
        """gzip allows zero bytes after a member (as gzip.GzipFile does); zstd does not."""
        if self._kind != "gzip":
            return pos
        while (block := self._read_at(pos, 1 << 16)) and block[0] == 0:
            stripped = block.lstrip(b"\x00")
            pos += len(block) - len(stripped)
            if stripped:
                break
        return pos

    def _read_at(self, pos: int, n: int) -> bytes:
        """Up to `n` compressed bytes at `pos`, from a window read `_WINDOW` bytes at a time (a
        file of many small members is not re-read or seeked per member)."""
        base, window, to_eof = self._window
        end = base + len(window)
        if not (base <= pos and (pos + n <= end or (to_eof and pos <= end))):
            self._raw.seek(pos)
            want = max(n, _WINDOW)
            base, window = pos, memoryview(self._raw.read(want))
            to_eof = len(window) < want
            self._window = (base, window, to_eof)
        return bytes(window[pos - base : pos - base + n])

    def _find(self, start: int) -> int | None:
        """Offset of the next occurrence of the member magic at or after `start`."""
        needle = self._search
        pos = start
        while True:
            block = self._read_at(pos, _CHUNK + len(needle) - 1)
            i = block.find(needle)
            if i >= 0:
                return pos + i
            if len(block) < _CHUNK + len(needle) - 1:
                return None
            pos += _CHUNK


class _Guarded(io.RawIOBase):
    """Re-raises any decompressor failure as `StreamBroken`, after the bytes it did decode."""

    def __init__(self, inner: BinaryIO, what: str) -> None:
        self._inner = inner
        self._what = what
        self.delivered = 0  # decoded bytes handed out by readinto

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            # read1, not read: read(n) loops over several chunks and drops them all if a later
            # chunk fails, which would lose good data before a cut.
            data = self._inner.read1(len(buffer))
        except StreamBroken:
            raise
        except EOFError as e:
            raise StreamBroken(f"{self._what} stream broken: {e}") from e
        except (OSError, ValueError) as e:
            raise StreamBroken(f"{self._what} stream broken: {e}", kind="corrupt") from e
        n = len(data)
        buffer[:n] = data
        self.delivered += n
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()


def _open_raw(path: str) -> io.RawIOBase | BinaryIO:
    kind = sniff_compression(path)
    try:
        raw: BinaryIO = open(path, "rb")
    except OSError as e:
        raise InputFileError(f"cannot open {path}: {e}") from e
    if kind == "plain":
        return raw
    if kind in ("gzip", "zstd"):
        return _Members(raw, kind)
    return _Guarded(bz2.BZ2File(raw, mode="rb"), kind)  # type: ignore[arg-type]


def open_binary(path: str) -> BinaryIO:
    """A buffered, decompressed binary stream of `path` (plain, gzip incl. multi-member, zstd, bz2).

    Reads raise `StreamBroken` at a truncation or corruption, never before the last good byte.
    After a resumable break (a corrupt gzip member or zstd frame with a good one after it),
    reading on continues at the next member; a caller may also just stop there.
    """
    raw = _open_raw(path)
    if isinstance(raw, io.BufferedReader):
        return raw  # type: ignore[return-value]
    return io.BufferedReader(raw, buffer_size=_CHUNK)  # type: ignore[arg-type, return-value]


def iter_lines(path: str) -> Iterator[tuple[int, bytes] | StreamError]:
    """(decompressed offset, line incl. its b"\\n") for each line, and a `StreamError` at a break.

    A last line without a newline is still yielded when the stream ends cleanly; when the stream
    breaks, the partial line is the record that was cut, so it is reported, not yielded. After a
    `resumable` StreamError, lines go on from the next gzip member / zstd frame.
    """
    raw = _open_raw(path)
    if not isinstance(raw, io.RawIOBase):  # a plain file: it cannot break, readline is fastest
        try:
            offset = 0
            while line := raw.readline():
                yield offset, line
                offset += len(line)
        finally:
            raw.close()
        return
    # C readline over a buffered stream. A break raises out of readline once every byte before it
    # was handed out; the partial line then in readline's hands is the lost record (not yielded),
    # and after a resumable break the offset goes on from all the bytes handed out so far.
    stream = io.BufferedReader(raw, buffer_size=_CHUNK)  # type: ignore[arg-type]
    offset = 0  # of the next line
    try:
        while True:
            try:
                line = stream.readline()
            except StreamBroken as e:
                yield StreamError(offset, str(e), e.kind, e.resumable)
                if not e.resumable:
                    return
                offset = raw.delivered  # type: ignore[union-attr]
                continue
            if not line:
                return
            yield offset, line
            offset += len(line)
    finally:
        stream.close()
