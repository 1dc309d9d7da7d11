"""Every reader, fed broken files: neighbours survive, one error per broken thing, no exception."""

import gzip
import json
import re
import resource
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from redpajama.io.readers import InputFileError, ReadOptions, RecordError, read_file


def _split(items):
    items = list(items)
    return [i for i in items if not isinstance(i, RecordError)], [
        i for i in items if isinstance(i, RecordError)
    ]


def _jsonl_bytes(n):
    return b"".join(json.dumps({"text": f"document number {i} " * 20}).encode() + b"\n" for i in range(n))


def _gzip_members(data):
    members, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        end = len(data) - len(d.unused_data)
        members.append(data[pos:end])
        pos = end
    return members


# ---- truncated compressed streams -------------------------------------------------------


@pytest.mark.parametrize("codec", ["gz", "zst"])
def test_truncated_jsonl_keeps_every_complete_line(tmp_path, codec):
    raw = _jsonl_bytes(2000)
    packed = gzip.compress(raw) if codec == "gz" else zstandard.ZstdCompressor().compress(raw)
    path = tmp_path / f"x.jsonl.{codec}"
    path.write_bytes(packed[: len(packed) // 2])
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert len(errors) == 1 and errors[0].kind == "truncated"
    assert len(docs) > 100 and [d.index for d in docs] == list(range(len(docs)))
    assert errors[0].index == len(docs)  # the cut line is the next one
    lines = raw.split(b"\n")
    assert errors[0].offset == sum(len(line) + 1 for line in lines[: len(docs)])


def test_truncated_text_file(tmp_path):
    path = tmp_path / "x.txt.gz"
    packed = gzip.compress(b"".join(b"line %d\n" % (i * 7919 % 100003) for i in range(20000)))
    path.write_bytes(packed[: len(packed) // 2])
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert docs == [] and [e.kind for e in errors] == ["truncated"]


def test_truncated_warc_gz(tmp_path, shared_data):
    data = (shared_data / "cc-warc-cc-main-2020-34-resiliparse" / "warcfile.warc.gz").read_bytes()
    # Cut inside the 7th response's member (offset 61090) at several depths, including inside
    # its gzip header, which fastwarc alone would take for a clean end.
    for cut in (61090 + 5, 61090 + 300, len(data) // 2):
        path = tmp_path / "cut.warc.gz"
        path.write_bytes(data[:cut])
        docs, errors = _split(read_file(str(path), ReadOptions()))
        assert len(docs) == 6, cut
        assert [(e.kind, e.offset) for e in errors] == [("truncated", 61090)], cut


def test_truncated_plain_warc_and_wet(tmp_path, shared_data):
    raw = gzip.decompress(
        (shared_data / "cc-warc-cc-main-2020-34-resiliparse" / "warcfile.warc.gz").read_bytes()
    )
    path = tmp_path / "cut.warc"
    path.write_bytes(raw[: len(raw) // 2])
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert len(docs) == 8 and [e.kind for e in errors] == ["truncated"] and errors[0].index == 8

    wet = (shared_data / "cc-wet-format-sample-cc_net" / "sample.warc.wet").read_bytes()
    path = tmp_path / "cut.warc.wet"
    path.write_bytes(wet[:-400])  # the sample's Content-Length values are hand-made; cut well below
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert len(docs) == 2 and [(e.kind, e.index) for e in errors] == [("truncated", 2)]

    path = tmp_path / "cut.warc.wet.gz"
    path.write_bytes(gzip.compress(wet)[:-200])
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert len(docs) == 2 and [(e.kind, e.index) for e in errors] == [("truncated", 2)]


# ---- bad records in the middle -----------------------------------------------------------


def test_jsonl_bad_utf8_and_bad_json_lines(tmp_path):
    lines = [
        b'{"text": "ok 0"}',
        b'{"text": "bad \xff\xfe bytes"}',
        b'{"text": "ok 2"}',
        b'{"text": "unclosed',
        b'{"text": "ok 4"}',
    ]
    for name, data in [("x.jsonl", b"\n".join(lines)), ("x.jsonl.gz", gzip.compress(b"\n".join(lines)))]:
        path = tmp_path / name
        path.write_bytes(data)
        docs, errors = _split(read_file(str(path), ReadOptions()))
        assert [(d.index, d.fields["raw_content"]) for d in docs] == [(0, "ok 0"), (2, "ok 2"), (4, "ok 4")]
        offsets = [sum(len(x) + 1 for x in lines[:k]) for k in range(len(lines))]
        assert [(e.kind, e.index, e.offset) for e in errors] == [
            ("utf8", 1, offsets[1]),
            ("json", 3, offsets[3]),
        ]


def test_broken_warc_records_in_the_middle(tmp_path, shared_data):
    data = (shared_data / "cc-warc-cc-main-2020-34-resiliparse" / "warcfile.warc.gz").read_bytes()
    members = _gzip_members(data)
    starts = [sum(len(m) for m in members[:i]) for i in range(len(members))]
    i = starts.index(61090)  # 7th response record
    raw = gzip.decompress(members[i])
    cases = {
        "garbage_bytes": members[:i]
        + [members[i][:40] + b"\x00" * 200 + members[i][240:]]
        + members[i + 1 :],
        "bad_magic": members[:i] + [gzip.compress(b"XXXXXXXX" + raw[8:])] + members[i + 1 :],
        "bad_header": members[:i]
        + [
            gzip.compress(
                b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: nan\r\n" + raw[raw.index(b"\r\n\r\n") :]
            )
        ]
        + members[i + 1 :],
    }
    for name, parts in cases.items():
        path = tmp_path / f"{name}.warc.gz"
        path.write_bytes(b"".join(parts))
        docs, errors = _split(read_file(str(path), ReadOptions()))
        assert len(docs) == 15, name  # all but the broken one
        assert [(e.kind, e.offset) for e in errors] == [("warc_record", 61090)], (name, errors)
        # A record too broken to show its type uses no index; one whose WARC-Type still reads
        # "response" (a broken version line, a bad header) keeps its index, so later ids do not shift.
        expected = list(range(15)) if name == "garbage_bytes" else [k for k in range(16) if k != 6]
        assert [d.index for d in docs] == expected, name
        assert docs[5].offset == 48321 and docs[6].offset == 70222 + len(parts[i]) - len(members[i])
    # Plain WARC with a broken header in the middle.
    plain_parts = [gzip.decompress(m) for m in members]
    plain_parts[i] = b"XXXX/1.0" + raw[8:]
    path = tmp_path / "broken.warc"
    path.write_bytes(b"".join(plain_parts))
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert len(docs) == 15 and [e.kind for e in errors] == ["warc_record"]


def test_wet_broken_record_in_the_middle(tmp_path, shared_data):
    wet = (shared_data / "cc-wet-format-sample-cc_net" / "sample.warc.wet").read_bytes()
    broken = wet.replace(b"WARC-Target-URI: http://sample_chinese.zh\n", b"").replace(
        "名言".encode(), b"\xff\xfe", 1
    )
    path = tmp_path / "b.warc.wet"
    path.write_bytes(broken)
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert [d.fields["url"] for d in docs] == ["http://sample_english.com", "http://sample_russian.ru"]
    assert [d.index for d in docs] == [0, 2]
    assert [(e.kind, e.index) for e in errors] == [("warc_record", 1)]
    path.write_bytes(wet.replace("名言".encode(), b"\xff\xfe", 1))
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert len(docs) == 2 and [(e.kind, e.index) for e in errors] == [("utf8", 1)]


# ---- empty and garbage files -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "e.jsonl",
        "e.jsonl.gz",
        "e.txt",
        "e.txt.gz",
        "e.warc",
        "e.warc.gz",
        "e.warc.wet",
        "e.warc.wet.gz",
        "e.jsonl.zst",
    ],
)
def test_empty_files(tmp_path, name):
    for content in (
        b"",
        gzip.compress(b"")
        if name.endswith(".gz")
        else zstandard.ZstdCompressor().compress(b"")
        if name.endswith(".zst")
        else b"",
    ):
        path = tmp_path / name
        path.write_bytes(content)
        assert list(read_file(str(path), ReadOptions())) == [], (name, content)


def test_garbage_and_empty_parquet(tmp_path):
    for content in (b"", b"this is not parquet at all" * 10):
        path = tmp_path / "g.parquet"
        path.write_bytes(content)
        with pytest.raises(InputFileError):
            list(read_file(str(path), ReadOptions()))
    # A corrupt row group in the middle: its rows become one error, the other groups are read.
    path = tmp_path / "c.parquet"
    pq.write_table(
        pa.table({"text": [f"row {i} " * 50 for i in range(30)]}),
        path,
        row_group_size=10,
        compression="snappy",
    )
    meta = pq.ParquetFile(path).metadata
    col = meta.row_group(1).column(0)
    start = col.dictionary_page_offset or col.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + 10 : start + 60] = b"\xff" * 50
    path.write_bytes(bytes(data))
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert [d.index for d in docs] == list(range(10)) + list(range(20, 30))
    assert len(errors) == 1 and errors[0].kind == "parquet_row_group" and errors[0].index == 10


def test_missing_file_raises():
    with pytest.raises(InputFileError):
        list(read_file("/nonexistent/file.jsonl", ReadOptions()))


# ---- one 50 MB document --------------------------------------------------------------------


def test_50mb_single_document(tmp_path):
    text = "abcdefghij" * 5_000_000
    jl = tmp_path / "big.jsonl.gz"
    with gzip.open(jl, "wb", compresslevel=1) as f:
        f.write(b'{"text": "small"}\n' + json.dumps({"text": text}).encode() + b"\n")
    tx = tmp_path / "big.txt"
    tx.write_text(text)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    docs = [d for d in read_file(str(jl), ReadOptions())]
    assert [len(d.fields["raw_content"]) for d in docs] == [5, 50_000_000]
    del docs
    (doc,) = list(read_file(str(tx), ReadOptions()))
    assert len(doc.fields["raw_content"]) == 50_000_000
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 600, grown_mb  # a few copies of one document, not more


# ---- WARC records whose framing or HTTP header is wrong -----------------------------------


def _warc_records(shared_data):
    """The sample's records as bytes (one per gzip member, each ending in CRLF CRLF), and the
    position of each response record among them (a response's index is its rank here)."""
    data = (shared_data / "cc-warc-cc-main-2020-34-resiliparse" / "warcfile.warc.gz").read_bytes()
    records = [gzip.decompress(m) for m in _gzip_members(data)]
    responses = [k for k, r in enumerate(records) if r.startswith(b"WARC/1.0\r\nWARC-Type: response")]
    assert len(responses) == 16
    return records, responses


def _write_warc(tmp_path, records, gz):
    path = tmp_path / ("x.warc.gz" if gz else "x.warc")
    path.write_bytes(b"".join(gzip.compress(r) for r in records) if gz else b"".join(records))
    return path


def _offset(records, k, gz):
    return len(b"".join(gzip.compress(r) for r in records[:k]) if gz else b"".join(records[:k]))


def _record_id(record):
    return re.search(rb"WARC-Record-ID: (<[^>]+>)", record).group(1).decode()


def _with_content_length(record, delta):
    m = re.search(rb"Content-Length: (\d+)\r\n", record)  # the WARC header's, which comes first
    return record[: m.start(1)] + str(int(m.group(1)) + delta).encode() + record[m.end(1) :]


@pytest.mark.parametrize(
    ("gz", "which", "extra"),
    [(gz, which, extra) for gz in (True, False) for which in (6, 15) for extra in (1000, -500)]
    # A block that swallows exactly the next record ends on a record boundary, so fastwarc never
    # breaks; gzip members still show it. (In a plain file it reads like a valid record.)
    + [(True, 6, "next_record"), (True, 15, "next_record")],
)
def test_warc_wrong_content_length(tmp_path, shared_data, gz, which, extra):
    # Too long, the block runs into the next records: they must not end up in the document's
    # text, and the error must name the record that is wrong, not the one after it. Too short,
    # the rest of the record is no record: the record is reported, not cut silently.
    records, responses = _warc_records(shared_data)
    k = responses[which]
    records[k] = _with_content_length(records[k], len(records[k + 1]) if extra == "next_record" else extra)
    path = _write_warc(tmp_path, records, gz)
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert [d.index for d in docs] == [i for i in range(16) if i != which]
    assert [(e.kind, e.index, e.offset) for e in errors] == [("warc_record", which, _offset(records, k, gz))]
    assert _record_id(records[k]) in errors[0].message and "Content-Length" in errors[0].message
    assert not any("WARC-Type" in d.fields["raw_content"] for d in docs)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_warc_broken_version_line_reported_at_its_record_and_later_ids_kept(tmp_path, shared_data, gz):
    records, responses = _warc_records(shared_data)
    k = responses[6]
    records[k] = b"WARX/9.9" + records[k][8:]
    path = _write_warc(tmp_path, records, gz)
    docs, errors = _split(read_file(str(path), ReadOptions()))
    # Its WARC-Type still reads "response", so it keeps index 6 and documents 7..15 their ids.
    assert [d.index for d in docs] == [i for i in range(16) if i != 6]
    assert [(e.kind, e.index, e.offset) for e in errors] == [("warc_record", 6, _offset(records, k, gz))]
    assert _record_id(records[k]) in errors[0].message


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("broken", ["http_status_line", "warc_content_length"])
def test_warc_response_without_usable_header_is_an_error(tmp_path, shared_data, gz, broken):
    # fastwarc hands both over as a response without an HTTP status: it must not pass as a
    # silently skipped non-200 response.
    records, responses = _warc_records(shared_data)
    k = responses[6]
    head, sep, http = records[k].partition(b"\r\n\r\n")
    if broken == "http_status_line":
        http = http.replace(b"HTTP/1.1 200 OK\r\n", b"XXXXXXXXXXXXXXX\r\n", 1)
        assert len(head + sep + http) == len(records[k])  # the WARC Content-Length stays right
    else:
        head = re.sub(rb"\r\nContent-Length: \d+", b"\r\nContent-Length: abc", head)
    records[k] = head + sep + http
    path = _write_warc(tmp_path, records, gz)
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert [d.index for d in docs] == [i for i in range(16) if i != 6]
    assert [(e.kind, e.index, e.offset) for e in errors] == [("warc_record", 6, _offset(records, k, gz))]
    assert ("HTTP header" if broken == "http_status_line" else "Content-Length 'abc'") in errors[0].message
    assert _record_id(records[k]) in errors[0].message


# ---- WET records: what follows a record's declared end ------------------------------------


def _cc_wet_records(n):
    """Conversion records framed as Common Crawl writes them: CRLF headers, an exact
    Content-Length, CRLF CRLF after the body."""
    records = []
    for i in range(n):
        body = b"Title %d\nfirst line of %d\n\nsecond line of %d\n" % (i, i, i)
        headers = [
            b"WARC/1.0",
            b"WARC-Type: conversion",
            b"WARC-Target-URI: http://example.com/%d" % i,
            b"WARC-Date: 2024-05-18T00:00:%02dZ" % i,
            b"WARC-Record-ID: <urn:uuid:rec-%d>" % i,
            b"Content-Type: text/plain",
            b"Content-Length: %d" % len(body),
        ]
        records.append(b"\r\n".join(headers) + b"\r\n\r\n" + body + b"\r\n\r\n")
    return records


def _read_wet_bytes(tmp_path, data, gz):
    path = tmp_path / ("x.warc.wet.gz" if gz else "x.warc.wet")
    path.write_bytes(data)
    return _split(read_file(str(path), ReadOptions()))


def _pack_wet(records, gz):
    return b"".join(gzip.compress(r) for r in records) if gz else b"".join(records)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_wet_trailing_garbage_keeps_the_last_record(tmp_path, gz):
    records = _cc_wet_records(4)
    good, _ = _read_wet_bytes(tmp_path, _pack_wet(records, gz), gz)
    docs, errors = _read_wet_bytes(tmp_path, _pack_wet(records, gz) + b"GARBAGE" * 100, gz)
    assert [d.fields for d in docs] == [d.fields for d in good] and len(docs) == 4
    assert docs[-1].fields["raw_content"] == "first line of 3\n\nsecond line of 3"
    # One error for the garbage, at its (decompressed) offset; it is no record, so no index.
    assert [(e.index, e.offset) for e in errors] == [(None, len(b"".join(records)))]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("broken", ["version_line", "stray_line"])
def test_wet_data_after_a_records_end_is_not_merged_into_it(tmp_path, gz, broken):
    records = _cc_wet_records(6)
    good, _ = _read_wet_bytes(tmp_path, _pack_wet(records, gz), gz)
    offset = len(b"".join(records[:3]))
    if broken == "version_line":
        records[3] = b"WARX/1.0" + records[3][8:]
        lost, expected = [3], [("warc_record", 3, offset)]  # still a conversion record: index 3
    else:
        records[2] += b"a stray line\r\n"
        lost, expected = [], [("warc_record", None, offset)]
    docs, errors = _read_wet_bytes(tmp_path, _pack_wet(records, gz), gz)
    assert [d.fields for d in docs] == [d.fields for d in good if d.index not in lost]
    assert [d.index for d in docs] == [i for i in range(6) if i not in lost]
    assert [(e.kind, e.index, e.offset) for e in errors] == expected
    if broken == "version_line":
        assert "<urn:uuid:rec-3>" in errors[0].message


def test_wet_gz_corrupt_member_keeps_the_records_after_it(tmp_path):
    members = [gzip.compress(r) for r in _cc_wet_records(6)]
    bad = bytearray(members[3])
    bad[-8] ^= 0xFF  # CRC-32 of the member
    docs, errors = _read_wet_bytes(tmp_path, b"".join(members[:3] + [bytes(bad)] + members[4:]), True)
    # The lost member counts as one record, so the documents after it keep their ids.
    assert [d.index for d in docs] == [0, 1, 2, 4, 5]
    assert [e.index for e in errors] == [3]
