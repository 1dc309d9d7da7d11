"""Every reader, fed broken files: neighbours survive, one error per broken thing, no exception."""

import gzip
import json
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
        # A record too broken to show its type uses no index; one that parses as a response does.
        expected = [k for k in range(16) if k != 6] if name == "bad_header" else list(range(15))
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
