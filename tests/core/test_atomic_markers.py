import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from redpajama.io import atomic, markers
from redpajama.io.parquet_writer import PartitionedWriter


def test_atomic_path_leaves_nothing_on_error(tmp_path: Path):
    final = tmp_path / "a" / "file.bin"
    with pytest.raises(RuntimeError), atomic.atomic_path(final) as temp:
        temp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert not final.exists()
    assert list((tmp_path / "a").iterdir()) == []


def test_atomic_write_replaces_whole_file(tmp_path: Path):
    final = tmp_path / "f.json"
    atomic.write_json(final, {"a": 1})
    atomic.write_json(final, {"a": 2})
    assert final.read_text() == '{\n  "a": 2\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_remove_stale_temps(tmp_path: Path):
    (tmp_path / "d").mkdir()
    stale = tmp_path / "d" / f".x.parquet{atomic.TEMP_INFIX}123"
    stale.write_bytes(b"x")
    keep = tmp_path / "d" / "x.parquet"
    keep.write_bytes(b"y")
    assert atomic.remove_stale_temps(tmp_path) == 1
    assert keep.exists() and not stale.exists()


SCHEMA = pa.schema([("id", pa.string()), ("id_int", pa.uint64()), ("v", pa.int64())])


def _batch(start: int, n: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "id": [str(i) for i in range(start, start + n)],
            "id_int": list(range(start, start + n)),
            "v": [1] * n,
        },
        schema=SCHEMA,
    )


def test_partitioned_writer_commits_markers_and_is_deterministic(tmp_path: Path):
    def write(root: Path):
        writer = PartitionedWriter(root, SCHEMA, row_group_rows=7)
        for i in range(5):
            writer.write(root / "b" / "x.parquet", _batch(i * 4, 4))
            writer.write(root / "a" / "y.parquet", _batch(100 + i, 1))
        return writer.commit()

    done = write(tmp_path / "one")
    again = write(tmp_path / "two")
    assert [m.path for m in done] == ["a/y.parquet", "b/x.parquet"]
    assert [m.rows for m in done] == [5, 20]
    assert [m.sha256 for m in done] == [m.sha256 for m in again]  # byte-identical reruns
    table = pq.read_table(tmp_path / "one" / "b" / "x.parquet")
    assert table.column("id").to_pylist() == [str(i) for i in range(20)]
    assert (
        pq.ParquetFile(tmp_path / "one" / "b" / "x.parquet").metadata.row_group(0).column(0).compression
        == "ZSTD"
    )
    for marker in done:
        assert markers.is_complete(tmp_path / "one", marker, verify_hash=True)


def test_marker_detects_changed_file(tmp_path: Path):
    writer = PartitionedWriter(tmp_path, SCHEMA)
    writer.write(tmp_path / "x.parquet", _batch(0, 3))
    (marker,) = writer.commit()
    with open(tmp_path / "x.parquet", "ab") as handle:
        handle.write(b"junk")
    assert not markers.is_complete(tmp_path, marker)


def test_abort_removes_temps(tmp_path: Path):
    writer = PartitionedWriter(tmp_path, SCHEMA)
    writer.write(tmp_path / "x.parquet", _batch(0, 3))
    writer.abort()
    assert os.listdir(tmp_path) == []
