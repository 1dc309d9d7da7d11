"""A corrupt gzip member / zstd frame in the middle of a file costs only that member.

Multi-member gzip (concatenated files, per-record WET/JSONL) and multi-frame zstd files are
decoded member by member; after a bad one, reading resumes at the next member's magic.
"""

import gzip
import json
import random
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from redpajama.io.readers import ReadOptions, RecordError, read_file
from redpajama.io.readers.compressed import StreamBroken, StreamError, iter_lines, open_binary


def _split(items):
    items = list(items)
    return [i for i in items if not isinstance(i, RecordError)], [
        i for i in items if isinstance(i, RecordError)
    ]


def _line(i: int) -> bytes:
    return json.dumps({"text": f"document number {i} " * 30, "n": i}).encode() + b"\n"


def _gzip_member(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _zstd_frame(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


def _garble(frame: bytes, start: int) -> bytes:
    """`frame` with its bytes from `start` (up to 8 before its end) replaced by 0xff."""
    data = bytearray(frame)
    data[start : len(data) - 8] = b"\xff" * (len(data) - 8 - start)
    return bytes(data)


@pytest.mark.parametrize("codec", ["gz", "zst"])
def test_bad_member_in_the_middle_costs_only_that_member(tmp_path, codec):
    # 10 members of one line each; the 5th is corrupt. All ten fit in one read chunk, so this
    # also checks that lines decoded from the same chunk before the bad member are kept.
    pack = _gzip_member if codec == "gz" else _zstd_frame
    members = [pack(_line(i)) for i in range(10)]
    members[4] = _garble(members[4], 12)
    with pytest.raises((zlib.error, EOFError, OSError, zstandard.ZstdError)):  # really undecodable
        (gzip.decompress if codec == "gz" else zstandard.ZstdDecompressor().decompress)(members[4])
    path = tmp_path / f"x.jsonl.{codec}"
    path.write_bytes(b"".join(members))

    docs, errors = _split(read_file(str(path), ReadOptions()))

    assert [d.fields["n"] for d in docs] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert [(e.kind, e.index) for e in errors] == [("corrupt", 4)]
    assert errors[0].offset == sum(len(_line(i)) for i in range(4))  # where the lost data begins
    bad_at = sum(map(len, members[:4]))
    assert f"at byte {bad_at} is corrupt" in errors[0].message
    assert f"at byte {bad_at + len(members[4])}" in errors[0].message  # where reading resumed
    assert [d.index for d in docs] == [0, 1, 2, 3, 5, 6, 7, 8, 9]  # the lost member counts as one line


def test_members_that_split_lines_lose_only_the_lines_they_touch(tmp_path):
    # bgzip-style: members cut the text anywhere, here in the middle of lines 3 and 6.
    raw = b"".join(_line(i) for i in range(10))
    cut1 = sum(len(_line(i)) for i in range(3)) + 40
    cut2 = sum(len(_line(i)) for i in range(6)) + 40
    members = [_gzip_member(raw[:cut1]), _gzip_member(raw[cut1:cut2]), _gzip_member(raw[cut2:])]
    members[1] = _garble(members[1], 12)
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(b"".join(members))

    docs, errors = _split(read_file(str(path), ReadOptions()))

    assert [d.fields["n"] for d in docs] == [0, 1, 2, 7, 8, 9]
    # the member's loss (line 3 cut at its start), then the tail of line 6 that opens the next member
    assert [(e.kind, e.index) for e in errors] == [("corrupt", 3), ("json", 4)]


def test_magic_bytes_inside_garbage_are_not_taken_for_a_member(tmp_path):
    rng = random.Random(7)
    noise = bytes(rng.randrange(256) for _ in range(5000))
    # A broken member whose bytes hold gzip magic twice more: false starts that must not leak.
    fake = b"\x1f\x8b\x08\x00" + noise[:2000] + b"\x1f\x8b\x08\x00" + noise[2000:] + b"\x1f\x8b\x08"
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(_gzip_member(_line(0) + _line(1)) + fake + _gzip_member(_line(2)))

    items = list(iter_lines(str(path)))

    lines = [i[1] for i in items if not isinstance(i, StreamError)]
    assert lines == [_line(0), _line(1), _line(2)]
    (gap,) = [i for i in items if isinstance(i, StreamError)]
    assert gap.resumable and gap.kind == "corrupt"


def test_member_whose_checksum_fails_is_dropped_whole(tmp_path):
    members = [_gzip_member(_line(i)) for i in range(3)]
    damaged = bytearray(members[1])
    damaged[-8] ^= 0xFF  # CRC-32 in the trailer: the data decodes, the check fails
    members[1] = bytes(damaged)
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(b"".join(members))

    docs, errors = _split(read_file(str(path), ReadOptions()))

    assert [d.fields["n"] for d in docs] == [0, 2]  # never the damaged line
    assert [(e.kind, e.index) for e in errors] == [("corrupt", 1)]
    assert "incorrect data check" in errors[0].message


def test_bad_member_at_the_end_and_truncation_still_end_the_stream(tmp_path):
    members = [_gzip_member(_line(i)) for i in range(3)]
    last = bytearray(members[2])
    last[-8] ^= 0xFF  # its CRC
    path = tmp_path / "x.jsonl.gz"
    path.write_bytes(members[0] + members[1] + bytes(last))
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert [d.fields["n"] for d in docs] == [0, 1]
    assert [(e.kind, e.index) for e in errors] == [("corrupt", 2)]
    assert "no later gzip member" in errors[0].message

    # A single-member file cut short: every complete line before the cut, then "truncated".
    whole = _gzip_member(b"".join(_line(i) for i in range(200)))
    path.write_bytes(whole[: len(whole) // 2])
    docs, errors = _split(read_file(str(path), ReadOptions()))
    assert 0 < len(docs) < 200 and [d.fields["n"] for d in docs] == list(range(len(docs)))
    assert [(e.kind, e.index) for e in errors] == [("truncated", len(docs))]


def test_open_binary_raises_at_the_gap_then_reads_on(tmp_path):
    members = [_zstd_frame(b"a" * 10), _garble(_zstd_frame(b"b" * 5000), 12), _zstd_frame(b"c" * 10)]
    path = tmp_path / "x.bin.zst"
    path.write_bytes(b"".join(members))
    stream = open_binary(str(path))
    assert stream.read1(100) == b"a" * 10
    with pytest.raises(StreamBroken) as info:
        stream.read1(100)
    assert info.value.resumable
    assert stream.read1(100) == b"c" * 10
    assert stream.read1(100) == b""


def _corrupt_row_group(path, group: int) -> None:
    meta = pq.ParquetFile(path).metadata.row_group(group)
    data = bytearray(path.read_bytes())
    for c in range(meta.num_columns):
        column = meta.column(c)
        start = column.dictionary_page_offset or column.data_page_offset
        data[start : start + 16] = b"\xff" * 16  # the page header
    path.write_bytes(bytes(data))


def test_lost_parquet_row_group_counts_its_rows(tmp_path):
    path = tmp_path / "x.parquet"
    table = pa.table({"text": [f"document {i}" for i in range(1000)]})
    pq.write_table(table, path, row_group_size=500)
    _corrupt_row_group(path, 1)

    docs, errors = _split(read_file(str(path), ReadOptions()))

    assert len(docs) == 500
    (error,) = errors
    assert (error.kind, error.index, error.count) == ("parquet_row_group", 500, 500)
    assert error.as_dict()["records"] == 500
