"""WARC (HTML responses -> extracted text) and WET (Common Crawl text) readers.

`index` counts candidate documents only: response records for WARC, conversion records for
WET. warcinfo/request/metadata records are read for provenance or skipped and use no index.
A record that is too broken to know its type uses no index either (its error has index None); a
broken record whose WARC-Type header still reads `response` (WARC) or `conversion` (WET) keeps its
index, so the ids of the documents after it stay those of the intact file (see `redpajama.ids`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import urlparse

from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from redpajama.io.readers.base import InputFileError, RawDoc, ReadOptions, RecordError
from redpajama.io.readers.compressed import (
    GZIP_MAGIC,
    StreamBroken,
    StreamError,
    iter_lines,
    open_binary,
    sniff_compression,
)
from redpajama.io.readers.extract import ExtractTimeout, extract_html

_SNAPSHOT_RE = re.compile(r"CC-MAIN-(\d{4}-\d{2})")
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_GZIP_MEMBER = GZIP_MAGIC + b"\x08"  # magic + deflate: where a per-record gzip member starts
_PLAIN_RECORD = b"\nWARC/1."
_SCAN_CHUNK = 1 << 20
_HEADER_PROBE = 64 << 10  # bytes read to find a WARC header's end (fastwarc's own limit: 32 KiB)
_WARC_LINE = b"WARC/1."


def snapshot_from_path(path: str) -> str | None:
    m = _SNAPSHOT_RE.search(path)
    return m.group(1) if m else None


def wet_digest(text: str) -> str:
    """`sha1:<base32>` of the UTF-8 text: the form of a WET record's WARC-Block-Digest."""
    return "sha1:" + base64.b32encode(hashlib.sha1(text.encode("utf-8")).digest()).decode("ascii")


@dataclass
class _FileContext:
    """Per-file provenance learnt from the path and the warcinfo record, and the index counter."""

    path: str
    options: ReadOptions
    snapshot: str | None = None
    warc_filename: str | None = None
    index: int = 0
    stop: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def take_index(self) -> int:
        self.index += 1
        return self.index - 1

    def learn_warcinfo(self, filename: str | None, body: str) -> None:
        self.warc_filename = self.warc_filename or filename
        for line in body.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "isPartOf" and self.snapshot is None:
                m = _SNAPSHOT_RE.search(value)
                self.snapshot = m.group(1) if m else None

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        snapshot = self.snapshot or snapshot_from_path(self.path) or self.options.snapshot
        if snapshot:
            out["snapshot_id"] = snapshot
        pos = self.path.find("crawl-data/")
        if pos >= 0:
            out["cc_segment"] = self.path[pos:]
        elif self.warc_filename:
            out["cc_segment"] = self.warc_filename
        return out

    def error(self, kind: str, index: int | None, offset: int | None, message: str) -> RecordError:
        return RecordError(kind, self.path, index, offset, message)


# --------------------------------------------------------------------------------------- WARC


def read_warc(path: str, options: ReadOptions) -> Iterator[RawDoc | RecordError]:
    """HTML response records (HTTP 200) -> extracted text documents."""
    ctx = _FileContext(path, options)
    kind = sniff_compression(path)
    if kind in ("gzip", "plain"):
        try:
            f = open(path, "rb")
        except OSError as e:
            raise InputFileError(f"cannot open {path}: {e}") from e
        with f:
            yield from _Resync(ctx, f, gzip_members=kind == "gzip").run()
    else:
        # zstd/bz2 are one stream: nothing to resync on, so a break ends the file.
        with open_binary(path) as stream:
            try:
                for record in _records(stream):
                    yield from _handle(ctx, record, _take_index(ctx, record), record.stream_pos)
                    if ctx.stop:
                        return
            except (OSError, StreamBroken) as e:
                yield ctx.error("truncated", None, None, f"{kind} WARC stream broken: {e}")


def _records(stream: BinaryIO) -> Iterator[WarcRecord]:
    types = WarcRecordType.warcinfo | WarcRecordType.response
    return iter(ArchiveIterator(stream, record_types=types, parse_http=True, auto_decode="all"))


def _take_index(ctx: _FileContext, record: WarcRecord) -> int | None:
    return ctx.take_index() if record.record_type == WarcRecordType.response else None


@dataclass
class _Read:
    """A record fastwarc read, and what `_handle` made of it (held back until its end is confirmed)."""

    pos: int
    index: int | None
    record_type: WarcRecordType
    record_id: str | None
    length: int | None  # the WARC Content-Length as declared (None: missing or not a number)
    items: list[RawDoc | RecordError] = field(default_factory=list)

    @classmethod
    def of(cls, record: WarcRecord, index: int | None) -> _Read:
        length = _int_or_none(record.headers.get("Content-Length"))
        return cls(record.stream_pos, index, record.record_type, record.record_id, length)

    @property
    def name(self) -> str:
        """For messages: `response record <urn:uuid:...>`."""
        return f"{self.record_type} record {self.record_id or '(no WARC-Record-ID)'}"

    def has_error(self) -> bool:
        return any(isinstance(item, RecordError) for item in self.items)


@dataclass(frozen=True)
class _Extent:
    """Where a record ends by its declared Content-Length, checked against the raw file (`_extent`)."""

    verdict: str  # "ok", "overrun" (runs into other data), "junk" (more data than declared), "cut", "unknown"
    end: int | None = None  # ok: where the next record can start; overrun: where the swallowed data starts
    detail: str = ""


class _Resync:
    """Iterate with fastwarc; on a break, find the broken record, report it, and go on after it.

    FastWARC stops at the first record it cannot read and cannot say which record was at fault: a
    Content-Length that is too long makes it read the next records as part of the block (gzip
    members included) and then fail on whatever follows. So each record's outputs are held back
    until fastwarc has read past it, and a break is attributed by checking the raw file:

    - A break right after record R: R's declared extent is checked (`_extent`). A WARC record ends
      where its Content-Length says, followed by CRLF CRLF, and in a per-record gzip file it also
      ends with its gzip member; if R's block runs into another record (plain: a `WARC/1.` line
      inside the block; gzip: past the end of R's member) or R's member holds more than R, R's
      Content-Length is wrong: R is reported and dropped, and reading resumes at the data it
      swallowed. The check itself runs only when fastwarc breaks. A block too long by exactly the
      records after it makes fastwarc skip them without a break; in a gzip file that shows as a
      gzip member between two records read one after the other (a cheap scan of the compressed
      bytes between them), which triggers the same check. In a plain file such a block reads like
      a valid record: not caught.
    - Otherwise reading resumes where R ends ("probing"). If nothing can be read there, the record
      there is the broken one: it is reported (with an index when its WARC-Type still reads
      `response`, so the ids of later documents do not shift) and reading resumes at the next
      record start (gzip member or `WARC/1.` line). If reading succeeds right there, fastwarc broke
      inside R (an HTTP header it could not parse, say), so R is reported.
    - A record whose block cannot be read (a corrupt gzip member) is reported itself.
    When nothing readable follows a break, the error is "truncated" (the file ends in a broken record).
    """

    def __init__(self, ctx: _FileContext, f: BinaryIO, gzip_members: bool) -> None:
        self.ctx, self.f, self.gzip = ctx, f, gzip_members
        self.size = os.fstat(f.fileno()).st_size
        self.held: _Read | None = None  # the last record read, its outputs not yet yielded
        self.probing = False  # reading (re)started where `held` ends
        self.why = ""  # fastwarc's message for the break being probed

    def run(self) -> Iterator[RawDoc | RecordError]:
        start: int | None = 0
        while start is not None:
            resume = yield from self._read_from(start)
            if resume is not None and resume <= start:  # never read the same bytes twice
                resume = self._next_start(start + 1)
            start = resume

    def _next_start(self, offset: int) -> int | None:
        return _next_member(self.f, offset) if self.gzip else _find(self.f, _PLAIN_RECORD, offset)

    def _read_from(self, start: int) -> Generator[RawDoc | RecordError, None, int | None]:
        """Read records from `start` on; where to go on after a break, or None when the file is done."""
        self.f.seek(start)
        fresh = True  # nothing read yet from `start`
        last_pos = start
        current: _Read | None = None  # the record being handled
        try:
            # All record types, so that a break can be placed after the real last readable record.
            for record in ArchiveIterator(self.f, parse_http=True, auto_decode="all"):
                held = self.held
                if held is not None:
                    if fresh and self.probing:
                        # fastwarc broke after `held` but reads fine where `held` ends, so what it
                        # could not read lies inside `held`.
                        held.items = self._blamed(held, f"fastwarc cannot read past its block: {self.why}")
                    elif self.gzip and _next_member(self.f, held.pos + 1, record.stream_pos) is not None:
                        # A gzip member between two records read one after the other: `held` may
                        # have swallowed whole records without fastwarc breaking (a Content-Length
                        # too long by exactly their size). Its member decides; a scan of the
                        # compressed bytes between the two records is cheap.
                        ext = _gzip_extent(self.f, held.pos, held.length)
                        if ext.verdict in ("overrun", "junk"):
                            self.held = None
                            return (yield from self._drop(held, ext.detail, ext.end))
                    yield from held.items
                    self.held = None
                fresh = self.probing = False
                current = _Read.of(record, _take_index(self.ctx, record))
                last_pos = current.pos
                current.items = list(_handle(self.ctx, record, current.index, current.pos))
                if self.ctx.stop:
                    self.ctx.stop = False
                    return (yield from self._short_block(current))
                self.held, current = current, None
        except OSError as e:
            if current is not None:
                return (yield from self._drop(current, f"its block cannot be read: {e}", None))
            if fresh:
                return (yield from self._broken_at(start, e))
            return (yield from self._broken_after(e))
        yield from self._clean_end(last_pos)
        return None

    def _short_block(self, rec: _Read) -> Generator[RawDoc | RecordError, None, int | None]:
        """The block ended before its Content-Length: a cut file, a Content-Length too long, or a
        corrupt gzip member (the file may go on after it)."""
        ext = self._extent(rec)
        if ext.verdict in ("overrun", "junk"):
            return (yield from self._drop(rec, ext.detail, ext.end))
        yield from rec.items  # the "truncated" error of `_handle`
        return None

    def _broken_at(self, start: int, e: OSError) -> Generator[RawDoc | RecordError, None, int | None]:
        """Nothing can be read at `start`: report the record there and skip it."""
        if self.held is not None:  # the break is after its end: it is fine
            yield from self.held.items
            self.held = None
        self.probing = False
        record_type, record_id = _peek_header(self.f, start, self.gzip)
        index = self.ctx.take_index() if record_type == "response" else None
        what = f" ({record_type} record {record_id or '(no WARC-Record-ID)'})" if record_type else ""
        resume = self._next_start(start + 1)
        if resume is None:
            yield self.ctx.error("truncated", index, start, f"WARC ends in a broken record{what}: {e}")
            return None
        yield self.ctx.error("warc_record", index, start, f"unreadable WARC record{what} skipped: {e}")
        return resume

    def _broken_after(self, e: OSError) -> Generator[RawDoc | RecordError, None, int | None]:
        """fastwarc broke after reading `held`: check where `held` really ends."""
        held = self.held
        assert held is not None  # a break after a record read in this run
        ext = self._extent(held)
        if ext.verdict in ("overrun", "junk"):
            self.held = None
            return (yield from self._drop(held, ext.detail, ext.end))
        if ext.verdict == "cut":
            self.held = None
            yield self.ctx.error("truncated", held.index, held.pos, f"{held.name}: the file ends inside it")
            return None
        if ext.verdict == "unknown":  # one gzip stream for several records: positions are not checkable
            self.held = None
            resume = self._next_start(held.pos + 1)
            if resume is None:
                if held.has_error():
                    yield from (_as_truncated(i, str(e)) for i in held.items if isinstance(i, RecordError))
                    return None
                yield from held.items
                at = (_gzip_cut(self.f, held.pos) if self.gzip else None) or held.pos
                yield self.ctx.error("truncated", None, at, f"WARC ends in a broken record: {e}")
                return None
            yield from held.items
            if not held.has_error():
                message = f"unreadable WARC data after the {held.name} skipped: {e}"
                yield self.ctx.error("warc_record", None, held.pos, message)
            return resume
        if ext.end is None or ext.end >= self.size:  # nothing after it, so the break is inside it
            self.held = None
            yield from self._blamed(held, f"fastwarc cannot read past its block: {e}")
            return None
        self.probing, self.why = True, str(e)
        return ext.end

    def _clean_end(self, last_pos: int) -> Iterator[RawDoc | RecordError]:
        # FastWARC takes a gzip member cut inside its header for a clean end: check the tail.
        cut = _gzip_cut(self.f, last_pos) if self.gzip else None
        held, self.held = self.held, None
        if held is not None:
            if cut is not None and cut == held.pos and held.has_error():
                errors = [i for i in held.items if isinstance(i, RecordError)]
                yield from (_as_truncated(i, "gzip member cut short") for i in errors)
                return
            yield from held.items
        if cut is not None:
            yield self.ctx.error("truncated", None, cut, "gzip member cut short at end of file")

    def _drop(
        self, rec: _Read, why: str, resume: int | None
    ) -> Generator[RawDoc | RecordError, None, int | None]:
        """Report `rec` instead of its outputs; go on at `resume` (default: the next record start)."""
        resume = resume if resume is not None else self._next_start(rec.pos + 1)
        kind = "warc_record" if resume is not None else "truncated"
        yield self.ctx.error(kind, rec.index, rec.pos, f"{rec.name}: {why}")
        return resume

    def _blamed(self, rec: _Read, why: str) -> list[RawDoc | RecordError]:
        if rec.has_error():  # its own error (a malformed header, say) explains the break
            return rec.items
        return [self.ctx.error("warc_record", rec.index, rec.pos, f"{rec.name}: {why}")]

    def _extent(self, rec: _Read) -> _Extent:
        if self.gzip:
            return _gzip_extent(self.f, rec.pos, rec.length)
        return _plain_extent(self.f, rec.pos, rec.length, self.size)


def _as_truncated(err: RecordError, why: str) -> RecordError:
    return RecordError(
        "truncated", err.source_file, err.index, err.offset, f"{err.message}; file ends: {why}"
    )


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _handle(
    ctx: _FileContext, record: WarcRecord, index: int | None, pos: int
) -> Iterator[RawDoc | RecordError]:
    if record.record_type == WarcRecordType.warcinfo:
        body = record.reader.read().decode("utf-8", errors="replace")
        ctx.learn_warcinfo(record.headers.get("WARC-Filename"), body)
        return
    if index is None:
        return  # request/metadata/resource/...: not documents, no index
    declared = record.headers.get("Content-Length")
    if _int_or_none(declared) is None:
        # fastwarc then reads an empty block and the record's bytes as garbage after it.
        message = f"response record {record.record_id}: WARC Content-Length {declared!r} is not a number"
        yield ctx.error("warc_record", index, pos, message)
        return
    url = (record.headers.get("WARC-Target-URI") or "").strip().strip("<>")
    date = record.headers.get("WARC-Date")
    if not url or not date or not record.record_id:
        yield ctx.error("warc_record", index, pos, "response record without URI, date or id")
        record.reader.consume()
        return
    expected = record.content_length
    payload = record.reader.read()
    http = record.http_headers
    # auto_decode changes the payload size for chunked/compressed bodies, so the length check
    # only applies to identity bodies (gzip files are checked for cuts at the end anyway).
    encoded = http is not None and (
        http.get("Transfer-Encoding") is not None or http.get("Content-Encoding") is not None
    )
    if not encoded and len(payload) < expected:
        ctx.stop = True
        yield ctx.error("truncated", index, pos, f"record body cut at {len(payload)} of {expected} bytes")
        return
    # fastwarc hands over a header it could not parse as an empty one, or without a status code
    # (a garbled status line): either way this is no HTTP response we can judge, so it is an error,
    # never a silent skip like a redirect.
    if not record.is_http or http is None or http.status_code is None:
        status = http.status_line if http is not None else None
        yield ctx.error(
            "warc_record",
            index,
            pos,
            f"response record {record.record_id} without a parsable HTTP header (status line {status!r})",
        )
        return
    if http.status_code != 200 or record.http_content_type not in _HTML_TYPES:
        return  # not a document candidate we extract (redirects, images, PDFs, ...)
    try:
        title, text = extract_html(
            payload,
            main_content=ctx.options.main_content,
            timeout=ctx.options.extract_timeout,
            content_type=http.get("Content-Type"),
        )
    except ExtractTimeout as e:
        yield ctx.error("extract_timeout", index, pos, str(e))
        return
    except (UnicodeError, ValueError, TypeError) as e:
        yield ctx.error("html", index, pos, f"cannot decode or parse HTML: {e}")
        return
    if not text:
        return
    fields: dict[str, Any] = {
        "url": url,
        "date_download": date,
        "digest": wet_digest(text),
        "length": len(text),
        "nlines": text.count("\n") + 1,
        "source_domain": urlparse(url).netloc,
        "title": title,
        "raw_content": text,
        "warc_record_id": record.record_id,
    }
    lang = record.headers.get("WARC-Identified-Content-Language")
    if lang:
        fields["content_language"] = lang
    fields.update(ctx.provenance())
    yield RawDoc(index=index, offset=pos, fields=fields)


# Raw-file helpers. They read with os.pread, so they never move the position of the file object
# fastwarc is reading from.


def _pread(f: BinaryIO, offset: int, n: int) -> bytes:
    return os.pread(f.fileno(), n, offset)


def _find(f: BinaryIO, needle: bytes, start: int, stop: int | None = None) -> int | None:
    """Offset of the next record start in [start, stop) (for b"\\nWARC/1.", the W)."""
    skip = 1 if needle.startswith(b"\n") else 0
    pos = max(0, start - skip)
    limit = None if stop is None else stop - skip  # where a match must begin before
    while limit is None or pos < limit:
        span = _SCAN_CHUNK if limit is None else min(_SCAN_CHUNK, limit - pos)
        chunk = _pread(f, pos, span + len(needle) - 1)
        i = chunk.find(needle)
        if 0 <= i < span:
            return pos + i + skip
        if len(chunk) < span + len(needle) - 1:
            return None  # end of file
        pos += span
    return None


def _is_member_header(head: bytes) -> bool:
    """A plausible gzip member header (RFC 1952): magic, deflate, no reserved flag bits. (The OS
    byte says little: Common Crawl's files carry 19, which RFC 1952 does not list.)"""
    return len(head) >= 10 and head.startswith(_GZIP_MEMBER) and not head[3] & 0xE0


def _next_member(f: BinaryIO, start: int, stop: int | None = None) -> int | None:
    """Offset of the next gzip member header in [start, stop) (its magic bytes also occur by
    chance inside compressed data, about once in 16 MiB; the header check cuts that eightfold)."""
    while (at := _find(f, _GZIP_MEMBER, start, stop)) is not None:
        if _is_member_header(_pread(f, at, 10)):
            return at
        start = at + 1
    return None


def _header_length(head: bytes) -> int | None:
    """Length of the WARC header block `head` starts with, incl. the empty line that ends it."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := head.find(sep)) >= 0]
    return min(ends) if ends else None


def _peek_header(f: BinaryIO, at: int, gzip_member: bool) -> tuple[str | None, str | None]:
    """(WARC-Type, WARC-Record-ID) of a record fastwarc cannot read, as far as its header lines
    still say (a broken version line, say); (None, None) when they say nothing."""
    if gzip_member:
        d = zlib.decompressobj(31)
        head, offset = b"", at
        while len(head) < _HEADER_PROBE and not d.eof:
            chunk = _pread(f, offset, 256)  # small steps: what decodes before a corrupt spot is kept
            if not chunk:
                break
            try:
                head += d.decompress(chunk)
            except zlib.error:
                break
            offset += len(chunk)
    else:
        head = _pread(f, at, _HEADER_PROBE)
    end = _header_length(head)
    fields: dict[str, str] = {}
    for line in head[:end].split(b"\n")[:100]:
        key, sep, value = line.decode("utf-8", errors="replace").partition(":")
        if sep and " " not in key.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    record_type = fields.get("warc-type")
    return (record_type.lower() if record_type else None), fields.get("warc-record-id")


def _plain_extent(f: BinaryIO, pos: int, length: int | None, size: int) -> _Extent:
    """Check a plain-file record's declared extent: its block must not contain another record's
    start, must end inside the file, and must be followed by the CRLF CRLF that ends a record
    (LF LF from lenient writers is accepted too)."""
    header = _header_length(_pread(f, pos, _HEADER_PROBE))
    if header is None or length is None:
        return _Extent("unknown")
    block_end = pos + header + length
    inner = _find(f, _PLAIN_RECORD, pos + 1)
    if inner is not None and inner < block_end:
        return _Extent(
            "overrun", inner, f"its Content-Length {length} runs into the next record (at {inner})"
        )
    if block_end > size:
        return _Extent("cut")
    after = _pread(f, block_end, 4)
    if not any(after.startswith(sep) or sep.startswith(after) for sep in (b"\r\n\r\n", b"\n\n")):
        # Other bytes right after the block: its Content-Length is shorter than its data.
        return _Extent("junk", None, f"its Content-Length {length} ends before its data does")
    end = block_end
    while end < size:  # the CRLF CRLF that ends a record, and any further empty lines
        chunk = _pread(f, end, 64)
        rest = chunk.lstrip(b"\r\n")
        end += len(chunk) - len(rest)
        if rest:
            break
    return _Extent("ok", end)


def _gzip_extent(f: BinaryIO, pos: int, length: int | None) -> _Extent:
    """Check a record against its gzip member: the block must end inside the member, and after it
    the member may hold only the CRLF CRLF that ends a record. Streams through one member."""
    if not _is_member_header(_pread(f, pos, 10)):
        return _Extent("unknown")  # e.g. one gzip stream for the whole file
    d = zlib.decompressobj(31)
    offset, seen = pos, 0  # compressed read position; decompressed bytes before `out`
    head = b""  # start of the member's data, until the header's end is found
    block_end: int | None = None
    tail = b""  # first bytes after the block and its CRLFs
    while not d.eof:
        chunk = _pread(f, offset, _SCAN_CHUNK)
        if not chunk:
            return _Extent("cut")
        try:
            out = d.decompress(chunk)
        except zlib.error as e:
            return _Extent("junk", None, f"its gzip member is corrupt ({e})")
        offset += len(chunk) - len(d.unused_data)
        if block_end is None and len(head) < _HEADER_PROBE:
            head += out[: _HEADER_PROBE - len(head)]
            header = _header_length(head)
            if header is not None and length is not None:
                block_end = header + length
        if block_end is not None and seen + len(out) > block_end:
            after = out[max(0, block_end - seen) :]
            tail = tail + after if tail else after.lstrip(b"\r\n")
            if len(tail) >= len(_WARC_LINE) or (tail and not _WARC_LINE.startswith(tail)):
                if tail.startswith(_WARC_LINE):
                    return _Extent("unknown")  # several records in one member: nothing to check
                return _Extent(
                    "junk", None, f"its gzip member holds more data than its Content-Length {length}"
                )
        seen += len(out)
    if block_end is None:
        if length is None and _header_length(head) is not None:
            return _Extent("ok", offset)  # Content-Length not a number: only the member can be checked
        return _Extent("unknown")
    if seen < block_end:
        return _Extent(
            "overrun",
            offset,
            f"its Content-Length {length} runs {block_end - seen} bytes past the end of its gzip member",
        )
    if tail:
        return _Extent("junk", None, f"its gzip member holds more data than its Content-Length {length}")
    return _Extent("ok", offset)


def _gzip_cut(f: BinaryIO, start: int) -> int | None:
    """Offset of a gzip member left incomplete at end of file, if any (checked from `start`).

    FastWARC treats a member cut inside its header as a clean end, so the tail is checked here;
    only the last record's member(s) are decompressed, which is cheap.
    """
    f.seek(start)
    member_start = start
    d = zlib.decompressobj(31)
    pending = b""
    consumed = 0
    while True:
        data = pending or f.read(_SCAN_CHUNK)
        pending = b""
        if not data:
            return member_start if consumed else None
        try:
            d.decompress(data)
        except zlib.error:
            return member_start
        consumed += len(data) - len(d.unused_data)
        if d.eof:
            pending = d.unused_data
            member_start += consumed
            consumed = 0
            d = zlib.decompressobj(31)


# ---------------------------------------------------------------------------------------- WET

_RECORD_END = b"\r\n\r\n"  # what follows a WARC record's block
_EXCESS_HEAD = 64  # excess lines kept to tell a broken record from garbage


@dataclass
class _WetRecord:
    offset: int
    headers: dict[str, str] = field(default_factory=dict)
    lines: list[bytes] = field(default_factory=list)
    in_headers: bool = True
    body_bytes: int = 0
    length: int = -1  # Content-Length; -1 when missing or not a number
    # The body reached Content-Length followed by CRLF CRLF: the block ends there, as declared.
    closed: bool = False
    excess_offset: int | None = None  # first non-empty line after a closed block
    excess_bytes: int = 0
    excess_head: list[bytes] = field(default_factory=list)

    def add_body(self, line: bytes) -> None:
        before = self.body_bytes
        self.body_bytes += len(line)
        self.lines.append(line)
        end = self.length + len(_RECORD_END)
        if self.length >= 0 and before < end <= self.body_bytes:
            self.closed = self._body_slice(self.length, end) == _RECORD_END

    def add_excess(self, offset: int, line: bytes) -> None:
        if self.excess_offset is None:
            if not line.strip():
                self.add_body(line)  # more empty lines between records: harmless, kept as cc_net does
                return
            self.excess_offset = offset
        self.excess_bytes += len(line)
        if len(self.excess_head) < _EXCESS_HEAD:
            self.excess_head.append(line)

    def _body_slice(self, start: int, end: int) -> bytes:
        """Body bytes [start, end) when `end` lies in the last line (read back over the last lines)."""
        parts, first = [], self.body_bytes
        for line in reversed(self.lines):
            parts.append(line)
            first -= len(line)
            if first <= start:
                break
        return b"".join(reversed(parts))[start - first : end - first]


def read_wet(path: str, options: ReadOptions) -> Iterator[RawDoc | RecordError]:
    """Conversion records parsed the way the cc_net RPv2 ran (`process_wet_file`, as vendored in
    RedPajama's `data_prep/cc/cc_net`) does.

    Line-based like cc_net (a `WARC/1.x` line starts a record; first body line = title), so files
    whose Content-Length is off still read as cc_net reads them. Body lines are stripped and empty
    ones kept, except the record's last two when both are empty (the separator between records);
    upstream cc_net's first release dropped every empty line. cc_net reads the file as text, so a
    bare CR also ends a line. Headers are looked up by name, not by position as cc_net does.

    One departure, for broken files only: where the body reaches its Content-Length and the CRLF
    CRLF that ends a WARC record follows right there, the record ends, as WARC declares it; any
    non-empty lines after that up to the next `WARC/1.x` line (a record whose version line is
    broken, garbage at the end of the file) belong to no record and are reported, not appended to
    the document. In well-formed files nothing follows, and a Content-Length that does not match
    the body (cc_net's hand-made sample counts characters) never meets the CRLF CRLF, so those files
    read exactly as before. A stream that breaks after a complete body keeps that record.
    """
    ctx = _FileContext(path, options)
    current: _WetRecord | None = None
    for item in iter_lines(path):
        if isinstance(item, StreamError):
            yield from _wet_break(ctx, current, item)
            if not item.resumable:
                return
            current = None  # lines go on from the next gzip member / zstd frame
            continue
        offset, line = item
        stripped = line.strip()
        if (
            stripped.startswith(b"WARC/1.")
            and len(stripped) == 8
            and (current is None or not current.in_headers)
        ):
            if current is not None:
                yield from _finish_wet(ctx, current, last=False)
            current = _WetRecord(offset)
            continue
        if current is None:
            continue  # junk before the first record
        if current.in_headers:
            if not stripped:
                current.in_headers = False
                current.length = _content_length(current.headers)
            else:
                key, _, value = stripped.decode("utf-8", errors="replace").partition(":")
                current.headers[key.strip()] = value.strip()
            continue
        if current.closed:
            current.add_excess(offset, line)
        else:
            current.add_body(line)
    if current is not None:
        yield from _finish_wet(ctx, current, last=True)


def _wet_break(ctx: _FileContext, rec: _WetRecord | None, err: StreamError) -> Iterator[RawDoc | RecordError]:
    """The decompressed stream breaks while `rec` is being read.

    A record whose body is complete (Content-Length reached) is kept: the break is after it. A
    resumable break (a corrupt gzip member or zstd frame skipped) lost data: in a per-record file
    that is one record, so it counts as one index and later documents keep the ids of an intact
    file. A conversion record cut by the break is lost and reported under its own index.
    """
    if rec is not None and not rec.in_headers and 0 <= rec.length <= rec.body_bytes:
        yield from _finish_wet(ctx, rec, last=True)
        rec = None
    if rec is not None and rec.headers.get("WARC-Type") == "conversion":
        yield ctx.error(err.kind, ctx.take_index(), rec.offset, err.message)
    elif err.resumable:
        message = f"{err.message}; the lost data counts as one record"
        yield ctx.error(err.kind, ctx.take_index(), err.offset, message)
    else:
        yield ctx.error(err.kind, None, err.offset, err.message)


def _content_length(headers: dict[str, str]) -> int:
    try:
        return int(headers.get("Content-Length", ""))
    except ValueError:
        return -1


def _text_lines(raw: list[bytes]) -> list[str]:
    """Stripped text lines of a record body read as a text file does (universal newlines: CR LF,
    LF and a bare CR each end a line)."""
    lines = []
    for b in raw:
        text = b.decode("utf-8")
        text = text[:-1] if text.endswith("\n") else text
        text = text[:-1] if text.endswith("\r") else text
        lines += [part.strip() for part in text.split("\r")]
    return lines


def _finish_wet(ctx: _FileContext, rec: _WetRecord, last: bool) -> Iterator[RawDoc | RecordError]:
    yield from _wet_doc(ctx, rec, last)
    if rec.excess_offset is not None:
        yield _wet_excess(ctx, rec, last)


def _wet_excess(ctx: _FileContext, rec: _WetRecord, last: bool) -> RecordError:
    """What follows a record's declared end: a record whose version line is broken (it uses an
    index when its WARC-Type still reads `conversion`, so later ids do not shift), or garbage."""
    fields: dict[str, str] = {}
    for line in rec.excess_head:
        stripped = line.strip()
        if not stripped:
            break  # end of the header block
        key, sep, value = stripped.decode("utf-8", errors="replace").partition(":")
        if sep and " " not in key.strip():
            fields.setdefault(key.strip(), value.strip())
    record_type = fields.get("WARC-Type")
    if record_type:
        index = ctx.take_index() if record_type == "conversion" else None
        first = rec.excess_head[0].strip().decode("utf-8", errors="replace")[:40]
        record_id = fields.get("WARC-Record-ID") or "(no WARC-Record-ID)"
        message = f"{record_type} record {record_id} with a broken version line {first!r} skipped"
        return ctx.error("warc_record", index, rec.excess_offset, message)
    where = "at the end of the file" if last else "before the next record"
    message = (
        f"{rec.excess_bytes} bytes {where}, after the end that the Content-Length of the record at "
        f"{rec.offset} declares, belong to no record: skipped"
    )
    return ctx.error("warc_record", None, rec.excess_offset, message)


def _wet_doc(ctx: _FileContext, rec: _WetRecord, last: bool) -> Iterator[RawDoc | RecordError]:
    kind = rec.headers.get("WARC-Type")
    if kind == "warcinfo":
        body = b"".join(rec.lines).decode("utf-8", errors="replace")
        ctx.learn_warcinfo(rec.headers.get("WARC-Filename"), body)
        return
    if kind != "conversion":
        if kind is None:
            yield ctx.error("warc_record", None, rec.offset, "record without WARC-Type")
        return
    index = ctx.take_index()
    url, date = rec.headers.get("WARC-Target-URI"), rec.headers.get("WARC-Date")
    length = _content_length(rec.headers)
    if not url or not date or length < 0:
        yield ctx.error("warc_record", index, rec.offset, "conversion record without URI, date or length")
        return
    # Only the last record can be cut without the decompressor noticing (plain files); the
    # separator after a complete record adds bytes, so fewer bytes than announced means a cut.
    if last and rec.body_bytes < length:
        yield ctx.error("truncated", index, rec.offset, f"body has {rec.body_bytes} of {length} bytes")
        return
    try:
        lines = _text_lines(rec.lines)
    except UnicodeDecodeError as e:
        yield ctx.error("utf8", index, rec.offset, f"invalid UTF-8 in body: {e.reason}")
        return
    if len(lines) >= 2 and not lines[-1] and not lines[-2]:
        lines = lines[:-2]  # "Docs are separated by two empty lines" (parse_doc)
    if not any(lines[1:]):
        return  # cc_net drops docs without content (parse_doc / min_len)
    fields: dict[str, Any] = {
        "url": url,
        "date_download": date,
        "digest": rec.headers.get("WARC-Block-Digest"),
        "length": length,
        "nlines": len(lines) - 1,
        "source_domain": urlparse(url).netloc,
        "title": lines[0],
        "raw_content": "\n".join(lines[1:]),
        "warc_record_id": rec.headers.get("WARC-Record-ID"),
    }
    lang = rec.headers.get("WARC-Identified-Content-Language")
    if lang:
        fields["content_language"] = lang
    fields.update(ctx.provenance())
    yield RawDoc(index=index, offset=rec.offset, fields=fields)
