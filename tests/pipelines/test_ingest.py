"""The ingest stage on the bundled real samples: tree, ids, fields, metadata, errors, stats."""

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from redpajama import ids, schema
from redpajama.pipelines import ingest
from redpajama.runners.local import RunOptions

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples" / "inputs"


def _run(inputs, out, **config):
    return ingest.run(
        [str(p) for p in inputs], out, ingest.IngestConfig(**config), RunOptions(workers=1, progress=False)
    )


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_rpv2_layout_gets_rpv2_ids_and_tree(tmp_path: Path):
    src = SAMPLES / "rpv2" / "2020-16" / "0174" / "en_head.json.gz"
    summary = _run([src], tmp_path)
    assert summary.failed == {}
    out = tmp_path / "documents" / "2020-16" / "0174" / "en_head.parquet"
    rows = _rows(out)
    source = [json.loads(line) for line in gzip.open(src, "rt")]
    assert len(rows) == len(source) == 10
    for index, (row, rec) in enumerate(zip(rows, source, strict=True)):
        assert row["id"] == f"2020-16/0174/en_head.json.gz/{index}"
        assert row["id_int"] == ids.id_int_of(row["id"])
        for name, value in rec.items():
            assert row[name] == value, name
        assert row["snapshot_id"] == "2020-16"
        assert row["metadata"] is None
    assert pq.read_schema(out).equals(schema.DOCUMENT_SCHEMA, check_metadata=False)


def test_dolma_ccnet_jsonl_keeps_id_promotes_ccnet_fields_and_keeps_the_rest(tmp_path: Path):
    src = SAMPLES / "jsonl" / "cc_en_head-0091.jsonl.gz"
    _run([src], tmp_path)
    (out,) = (tmp_path / "documents").rglob("*.parquet")
    # language and bucket come from the records, the snapshot from their cc_segment.
    assert out.relative_to(tmp_path).as_posix() == "documents/2020-16/cc_en_head-0091/en_head.parquet"
    rows = _rows(out)
    source = [json.loads(line) for line in gzip.open(src, "rt")]
    assert len(rows) == len(source)
    for row, rec in zip(rows, source, strict=True):
        assert row["id"] == rec["id"]
        assert row["raw_content"] == rec["text"]
        for name in schema.INPUT_FIELDS & rec["metadata"].keys():
            assert row[name] == rec["metadata"][name], name
        meta = dict(row["metadata"])
        assert meta["source"] == rec["source"]
        assert meta["provenance"] == rec["metadata"]["provenance"]
        assert meta["added"] == rec["added"]


def test_warc_and_wet_of_one_crawl_file_get_distinct_shards(tmp_path: Path):
    _run([SAMPLES / "warc", SAMPLES / "wet"], tmp_path)
    files = sorted(
        p.relative_to(tmp_path / "documents").as_posix() for p in (tmp_path / "documents").rglob("*.parquet")
    )
    assert "2020-34/CC-MAIN-2020-34-excerpt/und_all.parquet" in files
    assert "2024-22/warc_CC-MAIN-2024-22-whirlwind.warc.gz/und_all.parquet" in files
    assert "2024-22/wet_CC-MAIN-2024-22-whirlwind.warc.wet.gz/und_all.parquet" in files
    warc_rows = _rows(tmp_path / "documents" / "2020-34" / "CC-MAIN-2020-34-excerpt" / "und_all.parquet")
    assert len(warc_rows) >= 10
    assert all(r["id"] == f"CC-MAIN-2020-34-excerpt/{r['id'].split('/')[-1]}" for r in warc_rows)
    assert len({r["id"] for r in warc_rows}) == len(warc_rows)
    assert all(r["url"].startswith("http") and r["raw_content"] for r in warc_rows)


def test_unknown_fields_go_to_metadata_and_bad_lines_are_logged(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b'{"text": "first doc", "url": "https://www.example.com/a", "lang_guess": "en", "score": 0.5}\n'
        b"{not json\n"
        b'{"text": "third doc", "length": "not a number"}\n'
    )
    summary = _run([src], tmp_path / "out", snapshot="2024-10")
    (out,) = (tmp_path / "out" / "documents").rglob("*.parquet")
    assert out.relative_to(tmp_path / "out").as_posix() == "documents/2024-10/in/und_all.parquet"
    rows = _rows(out)
    assert [r["id"] for r in rows] == ["in/0", "in/2"]  # the bad line keeps its index
    assert rows[0]["source_domain"] == "www.example.com"
    assert dict(rows[0]["metadata"]) == {"lang_guess": "en", "score": "0.5"}
    assert rows[0]["length"] == len("first doc") and rows[0]["nlines"] == 1
    assert rows[1]["length"] is None or rows[1]["length"] == len("third doc")
    assert dict(rows[1]["metadata"])["length"] == "not a number"
    assert summary.stats.errors == {"json": 1, "field_type": 1}
    errors = [
        json.loads(x)
        for x in (tmp_path / "out" / "_runs" / "ingest" / "errors.jsonl").read_text().splitlines()
    ]
    assert {e["kind"] for e in errors} == {"json", "field_type"}
    json_error = next(e for e in errors if e["kind"] == "json")
    assert json_error["source_file"] == str(src) and json_error["index"] == 1 and json_error["offset"] > 0
    stats = json.loads((tmp_path / "out" / "_runs" / "ingest" / "stats.json").read_text())
    assert (
        stats["docs_in"] == 3 and stats["docs_out"] == 2 and stats["errors"] == {"field_type": 1, "json": 1}
    )


def test_same_file_name_in_two_folders(tmp_path: Path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "part.jsonl").write_text('{"text": "x"}\n')
    tasks = ingest.plan(
        [str(tmp_path / "a" / "part.jsonl"), str(tmp_path / "b" / "part.jsonl")], ingest.IngestConfig()
    )
    assert sorted(t.shard for t in tasks) == ["a_part.jsonl", "b_part.jsonl"]


def test_rerun_skips_finished_and_redoes_damaged(tmp_path: Path):
    inputs = [SAMPLES / "jsonl", SAMPLES / "rpv2"]
    first = _run(inputs, tmp_path)
    assert first.tasks_run == 2
    second = _run(inputs, tmp_path)
    assert (second.tasks_run, second.tasks_skipped) == (0, 2)
    damaged = tmp_path / "documents" / "2020-16" / "0174" / "en_head.parquet"
    before = damaged.read_bytes()
    damaged.write_bytes(b"garbage")
    third = _run(inputs, tmp_path)
    assert (third.tasks_run, third.tasks_skipped) == (1, 1)
    assert damaged.read_bytes() == before


def test_input_pattern_that_matches_nothing_is_an_error(tmp_path: Path):
    from redpajama.io.readers.base import InputFileError

    with pytest.raises(InputFileError, match="no input matches"):
        _run([tmp_path / "missing-*.jsonl"], tmp_path / "out")


def test_bad_inputs_through_the_whole_stage(tmp_path: Path):
    """Truncated gzip, a broken WARC record, an empty file and a 50 MB document in one run."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    whole = (SAMPLES / "jsonl" / "cc_en_head-0091.jsonl.gz").read_bytes()
    (inputs / "cut.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    warc = bytearray((SAMPLES / "warc" / "CC-MAIN-2020-34-excerpt.warc.gz").read_bytes())
    middle = len(warc) // 2
    warc[middle : middle + 64] = b"\x00" * 64  # garble one gzip member
    (inputs / "CC-MAIN-2020-34-garbled.warc.gz").write_bytes(bytes(warc))
    (inputs / "empty.jsonl").write_bytes(b"")
    big = "word " * (10 << 20)  # 50 MB of text in one document
    (inputs / "big.jsonl").write_text(json.dumps({"text": big}) + "\n")

    summary = ingest.run(
        [str(inputs)], tmp_path / "out", ingest.IngestConfig(), RunOptions(workers=2, progress=False)
    )
    assert summary.failed == {}
    docs = {
        p.parent.name: pq.read_table(p).num_rows for p in (tmp_path / "out" / "documents").rglob("*.parquet")
    }
    assert docs["big"] == 1
    assert 0 < docs["cut"] < 10  # every record before the break
    assert 10 <= docs["CC-MAIN-2020-34-garbled"] < 16  # neighbours of the broken record kept
    assert "empty" not in docs
    big_row = pq.read_table(
        tmp_path / "out" / "documents" / "unknown" / "big" / "und_all.parquet"
    ).to_pylist()[0]
    assert big_row["length"] == len(big)
    errors = [
        json.loads(x)
        for x in (tmp_path / "out" / "_runs" / "ingest" / "errors.jsonl").read_text().splitlines()
    ]
    by_file = {Path(e["source_file"]).name: e for e in errors}
    assert by_file["cut.jsonl.gz"]["kind"] == "truncated"
    assert by_file["CC-MAIN-2020-34-garbled.warc.gz"]["kind"] in {"warc_record", "truncated"}
    assert all(e["offset"] is not None for e in errors)
    assert summary.stats.error_count == len(errors) >= 2
