"""WARC (HTML responses -> extracted text) and WET (Common Crawl text) readers.

`index` counts candidate documents only: response records for WARC, conversion records for
WET. warcinfo/request/metadata records are read for provenance or skipped and use no index.
A record that is too broken to know its type uses no index either (its error has index None).
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Iterator
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
    if kind == "gzip":
        yield from _read_resyncing(ctx, _GZIP_MEMBER, gzip_tail=True)
    elif kind == "plain":
        yield from _read_resyncing(ctx, _PLAIN_RECORD, gzip_tail=False)
    else:
        # zstd/bz2 are one stream: nothing to resync on, so a break ends the file.
        with open_binary(path) as stream:
            try:
                for record in _records(stream):
                    yield from _handle(ctx, record)
                    if ctx.stop:
                        return
            except (OSError, StreamBroken) as e:
                yield ctx.error("truncated", None, None, f"{kind} WARC stream broken: {e}")


def _records(stream: BinaryIO) -> Iterator[WarcRecord]:
    types = WarcRecordType.warcinfo | WarcRecordType.response
    return iter(ArchiveIterator(stream, record_types=types, parse_http=True, auto_decode="all"))


def _read_resyncing(ctx: _FileContext, magic: bytes, gzip_tail: bool) -> Iterator[RawDoc | RecordError]:
    """Iterate with fastwarc; on a broken record, skip to the next record start and go on.

    FastWARC stops at the first bad header or gzip member, so recovery happens here: restart the
    iterator at the next gzip member (or `WARC/1.` line in plain files) after the last good one.
    A record that reads as malformed is held back one step: if the file turns out to end inside
    it, it is reported once, as "truncated".
    """
    try:
        f = open(ctx.path, "rb")
    except OSError as e:
        raise InputFileError(f"cannot open {ctx.path}: {e}") from e

    def cut_at(fallback: int) -> int | None:
        return _gzip_cut(f, fallback) if gzip_tail else None

    with f:
        start = 0
        broken_at: int | None = None  # start of a skipped stretch not yet reported
        held: RecordError | None = None
        while True:
            f.seek(start)
            last_pos: int | None = None
            try:
                # All record types, so that last_pos is the real last readable record.
                for record in ArchiveIterator(f, parse_http=True, auto_decode="all"):
                    if held is not None:
                        yield held
                        held = None
                    if broken_at is not None:
                        yield ctx.error("warc_record", None, broken_at, "unreadable WARC data skipped")
                        broken_at = None
                    last_pos = record.stream_pos
                    for item in _handle(ctx, record):
                        if isinstance(item, RecordError) and item.kind == "warc_record":
                            held = item
                        else:
                            yield item
                    if ctx.stop:
                        return
            except OSError as e:
                origin = start if last_pos is None else last_pos
                nxt = _find(f, magic, origin + 1)
                if nxt is None:
                    if held is not None:
                        yield _as_truncated(held, str(e))
                    else:
                        at = broken_at if broken_at is not None else (cut_at(origin) or origin)
                        yield ctx.error("truncated", None, at, f"WARC ends in a broken record: {e}")
                    return
                if held is not None:
                    yield held  # the malformed record is what broke the iterator
                    held = None
                elif broken_at is None:
                    broken_at = start if last_pos is None else nxt
                start = nxt
                continue
            # Clean end as far as fastwarc is concerned; a gzip member may still be cut short.
            origin = start if last_pos is None else last_pos
            cut = cut_at(origin)
            if held is not None:
                yield _as_truncated(held, "gzip member cut short") if cut == held.offset else held
                if cut == held.offset:
                    return
            if broken_at is not None:
                yield ctx.error("warc_record", None, broken_at, "unreadable WARC data skipped")
            if cut is not None:
                yield ctx.error("truncated", None, cut, "gzip member cut short at end of file")
            return


def _as_truncated(err: RecordError, why: str) -> RecordError:
    return RecordError(
        "truncated", err.source_file, err.index, err.offset, f"{err.message}; file ends: {why}"
    )


def _handle(ctx: _FileContext, record: WarcRecord) -> Iterator[RawDoc | RecordError]:
    if record.record_type == WarcRecordType.warcinfo:
        body = record.reader.read().decode("utf-8", errors="replace")
        ctx.learn_warcinfo(record.headers.get("WARC-Filename"), body)
        return
    if record.record_type != WarcRecordType.response:
        return  # request/metadata/resource/...: not documents, no index
    index = ctx.take_index()
    pos = record.stream_pos
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
    if not record.is_http or record.http_headers is None:
        yield ctx.error("warc_record", index, pos, "response record without a parsable HTTP header")
        return
    if record.http_headers.status_code != 200 or record.http_content_type not in _HTML_TYPES:
        return  # not a document candidate we extract (redirects, images, PDFs, ...)
    try:
        title, text = extract_html(
            payload,
            main_content=ctx.options.main_content,
            timeout=ctx.options.extract_timeout,
            content_type=record.http_headers.get("Content-Type"),
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


def _find(f: BinaryIO, needle: bytes, start: int) -> int | None:
    """Offset of the next record start at or after `start` (for b"\\nWARC/1.", the W)."""
    skip = 1 if needle.startswith(b"\n") else 0
    pos = max(0, start - skip)
    while True:
        f.seek(pos)
        chunk = f.read(_SCAN_CHUNK + len(needle))
        if len(chunk) < len(needle):
            return None
        i = chunk.find(needle)
        if i >= 0:
            return pos + i + skip
        pos += _SCAN_CHUNK


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


@dataclass
class _WetRecord:
    offset: int
    headers: dict[str, str] = field(default_factory=dict)
    lines: list[bytes] = field(default_factory=list)
    in_headers: bool = True
    body_bytes: int = 0


def read_wet(path: str, options: ReadOptions) -> Iterator[RawDoc | RecordError]:
    """Conversion records parsed the way the cc_net RPv2 ran (`process_wet_file`, as vendored in
    RedPajama's `data_prep/cc/cc_net`) does.

    Line-based like cc_net (a `WARC/1.x` line starts a record; first body line = title), so files
    whose Content-Length is off still read as cc_net reads them. Body lines are stripped and empty
    ones kept, except the record's last two when both are empty (the separator between records);
    upstream cc_net's first release dropped every empty line. cc_net reads the file as text, so a
    bare CR also ends a line. Headers are looked up by name, not by position as cc_net does.
    """
    ctx = _FileContext(path, options)
    current: _WetRecord | None = None
    for item in iter_lines(path):
        if isinstance(item, StreamError):
            if current is not None and current.headers.get("WARC-Type") == "conversion":
                yield ctx.error("truncated", ctx.take_index(), current.offset, item.message)
            else:
                yield ctx.error("truncated", None, item.offset, item.message)
            return
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
            else:
                key, _, value = stripped.decode("utf-8", errors="replace").partition(":")
                current.headers[key.strip()] = value.strip()
            continue
        current.body_bytes += len(line)
        current.lines.append(line)
    if current is not None:
        yield from _finish_wet(ctx, current, last=True)


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
    try:
        length = int(rec.headers.get("Content-Length", ""))
    except ValueError:
        length = -1
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
