import json

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.io.readers import ReadOptions, RecordError, detect_format, read_file


def test_text_file(shared_data, tmp_path):
    path = shared_data / "lm-tinyshakespeare" / "input.txt"
    (doc,) = list(read_file(str(path), ReadOptions()))
    assert doc.index == 0 and doc.fields["title"] == "input.txt"
    assert doc.fields["raw_content"] == path.read_text(encoding="utf-8")
    latin = tmp_path / "latin.txt.gz"
    import gzip

    latin.write_bytes(gzip.compress("Déjà vu, garçon, façade, naïveté.\n".encode("cp1252") * 20))
    (doc,) = list(read_file(str(latin), ReadOptions()))
    assert doc.fields["raw_content"].startswith("Déjà vu, garçon") and doc.fields["title"] == "latin.txt"


def test_text_too_large(tmp_path):
    path = tmp_path / "big.md"
    path.write_text("x" * 101)
    (err,) = list(read_file(str(path), ReadOptions(extra={"max_text_bytes": 100})))
    assert isinstance(err, RecordError) and err.kind == "too_large"


def test_parquet_rows_and_groups(tmp_path):
    path = tmp_path / "x.parquet"
    table = pa.table({"text": ["a", "b", None, "d"], "url": ["u0", "u1", "u2", "u3"], "n": [1, 2, 3, 4]})
    pq.write_table(table, path, row_group_size=2)
    items = list(read_file(str(path), ReadOptions()))
    assert [i.index for i in items] == [0, 1, 2, 3]
    assert items[0].fields == {"raw_content": "a", "url": "u0", "n": 1}
    assert isinstance(items[2], RecordError) and items[2].kind == "no_text"
    assert items[3].fields["raw_content"] == "d"


def _write_arrow_stream(path, table):
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)


def _save_to_disk_layout(folder, tables):
    # The layout datasets.Dataset.save_to_disk writes: data-XXXXX-of-NNNNN.arrow (IPC stream),
    # dataset_info.json and state.json listing the shards in order.
    folder.mkdir(parents=True)
    n = len(tables)
    names = [f"data-{i:05d}-of-{n:05d}.arrow" for i in range(n)]
    for name, table in zip(names, tables, strict=True):
        _write_arrow_stream(folder / name, table)
    (folder / "dataset_info.json").write_text(
        json.dumps({"features": {"text": {"dtype": "string", "_type": "Value"}}})
    )
    (folder / "state.json").write_text(
        json.dumps(
            {
                "_data_files": [{"filename": n} for n in names],
                "_fingerprint": "x",
                "_format_columns": None,
                "_format_kwargs": {},
                "_format_type": None,
                "_output_all_columns": False,
                "_split": None,
            }
        )
    )


def test_hf_save_to_disk_and_dataset_dict(tmp_path):
    single = tmp_path / "single"
    _save_to_disk_layout(single, [pa.table({"text": ["a", "b", "c"]}), pa.table({"text": ["d"]})])
    assert detect_format(str(single)) == "hf_dataset"
    docs = list(read_file(str(single), ReadOptions()))
    assert [(d.index, d.fields["raw_content"]) for d in docs] == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]

    dd = tmp_path / "dd"
    _save_to_disk_layout(dd / "train", [pa.table({"text": ["t1", "t2"]})])
    _save_to_disk_layout(dd / "test", [pa.table({"text": ["s1"]})])
    (dd / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    docs = list(read_file(str(dd), ReadOptions()))
    assert [d.fields["raw_content"] for d in docs] == ["s1", "t1", "t2"]  # splits sorted by name
    assert [d.index for d in docs] == [0, 1, 2]


def test_hf_hub_folder(tmp_path):
    root = tmp_path / "hub"
    (root / "data").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["p0", "p1"]}), root / "data" / "train-00000-of-00002.parquet")
    pq.write_table(pa.table({"text": ["p2"]}), root / "data" / "train-00001-of-00002.parquet")
    (root / "dataset_info.json").write_text("{}")
    docs = list(read_file(str(root), ReadOptions()))
    assert [(d.index, d.fields["raw_content"]) for d in docs] == [(0, "p0"), (1, "p1"), (2, "p2")]
