"""The signals stage over an ingested tree, RPv2 export, and loading RPv2 signals files back."""

import gzip
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from redpajama.errors import UserError
from redpajama.pipelines import export, ingest, signals
from redpajama.quality_signals.registry import SIGNALS, compute
from redpajama.quality_signals.resources import Resources
from redpajama.quality_signals.view import DocView
from redpajama.runners.local import RunOptions

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples" / "inputs"
OPTIONS = RunOptions(workers=1, progress=False)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tree")
    ingest.run([str(SAMPLES)], out, ingest.IngestConfig(), OPTIONS)
    summary = signals.run(out, signals.SignalsConfig(), OPTIONS)
    assert summary.failed == {}
    return out


def test_one_signals_file_per_documents_file_rows_aligned(tree: Path):
    documents = sorted(p.relative_to(tree / "documents") for p in (tree / "documents").rglob("*.parquet"))
    outputs = sorted(
        p.relative_to(tree / "quality_signals") for p in (tree / "quality_signals").rglob("*.parquet")
    )
    assert documents == outputs
    for relative in documents:
        docs = pq.read_table(tree / "documents" / relative, columns=["id", "id_int"])
        sigs = pq.read_table(tree / "quality_signals" / relative)
        assert sigs.column("id").to_pylist() == docs.column("id").to_pylist()
        assert sigs.column("id_int").to_pylist() == docs.column("id_int").to_pylist()
        assert sigs.column_names == ["id", "id_int", *SIGNALS]


def test_stored_values_equal_direct_computation(tree: Path):
    relative = Path("2020-16/0174/en_head.parquet")
    docs = pq.read_table(tree / "documents" / relative).to_pylist()
    sigs = pq.read_table(tree / "quality_signals" / relative).to_pylist()
    resources = Resources.load()
    for doc, row in zip(docs, sigs, strict=True):
        expected = compute(
            DocView(
                doc["raw_content"], language=doc["language"], source_domain=doc["source_domain"], fields=doc
            ),
            resources,
        )
        for name, value in expected.items():
            if SIGNALS[name].level == "line":
                assert [(s["start"], s["end"], s["score"]) for s in row[name]] == [
                    (s, e, None if v is None else float(v)) for s, e, v in value
                ], name
            else:
                assert row[name] == value, name


def test_rerun_skips_and_subset_of_signals(tree: Path, tmp_path: Path):
    again = signals.run(tree, signals.SignalsConfig(), OPTIONS)
    assert again.tasks_run == 0 and again.tasks_skipped == again.tasks_total
    subset = tmp_path / "subset"
    shutil.copytree(tree / "documents", subset / "documents")
    signals.run(subset, signals.SignalsConfig(names=("rps_doc_word_count", "rps_lines_num_words")), OPTIONS)
    (one,) = (subset / "quality_signals" / "2020-16" / "0174").glob("*.parquet")
    assert pq.read_schema(one).names == ["id", "id_int", "rps_doc_word_count", "rps_lines_num_words"]
    with pytest.raises(UserError, match="unknown signal"):
        signals.run(subset, signals.SignalsConfig(names=("rps_nope",)), OPTIONS)


def test_export_writes_rpv2_records(tree: Path, tmp_path: Path):
    dest = tmp_path / "rpv2"
    assert export.run(tree, dest, OPTIONS).failed == {}
    docs_file = dest / "documents" / "2020-16" / "0174" / "en_head.json.gz"
    sig_file = dest / "quality_signals" / "2020-16" / "0174" / "en_head.signals.json.gz"
    with gzip.open(docs_file, "rt") as handle:
        documents = [json.loads(line) for line in handle]
    with gzip.open(sig_file, "rt") as handle:
        records = [json.loads(line) for line in handle]
    with gzip.open(SAMPLES / "rpv2" / "2020-16" / "0174" / "en_head.json.gz", "rt") as handle:
        original = [json.loads(line) for line in handle]
    assert documents == original  # RPv2 documents survive the round trip field for field
    assert len(records) == len(documents)
    first = records[0]
    assert first["id"] == "2020-16/0174/en_head.json.gz/0"
    assert list(first["metadata"]) == [
        "cc_segment",
        "cc_net_source",
        "url",
        "source_domain",
        "language",
        "snapshot_id",
    ]
    assert first["metadata"]["cc_net_source"] == "2020-16/0174/en_head.json.gz"
    # RPv2's worker writes {**ccnet, **signals} with its modules registered content, repetitions,
    # natural_language, lines, classifiers, importance: that, not the schema's, is the file order.
    keys = list(first["quality_signals"])
    assert keys[:7] == [n for n in keys if n.startswith("ccnet_")]
    assert keys[7:9] == ["rps_doc_curly_bracket", "rps_doc_ldnoobw_words"]
    assert keys[12:15] == [
        "rps_doc_frac_chars_dupe_10grams",
        "rps_doc_frac_chars_dupe_5grams",
        "rps_doc_frac_chars_dupe_6grams",
    ]
    assert keys.index("rps_doc_frac_chars_top_4gram") < keys.index("rps_doc_frac_all_caps_words")
    assert keys.index("rps_doc_word_count") < keys.index("rps_lines_ending_with_terminal_punctution_mark")
    assert keys[-1] == "rps_doc_wikipedia_importance_length_correction"
    length = len(documents[0]["raw_content"])
    assert first["quality_signals"]["rps_doc_word_count"] == [
        [0, length, first["quality_signals"]["rps_doc_word_count"][0][2]]
    ]
    assert isinstance(first["quality_signals"]["rps_doc_word_count"][0][2], int)
    assert all(isinstance(span[2], int) for span in first["quality_signals"]["rps_lines_num_words"])
    assert all(
        isinstance(span[2], float) for span in first["quality_signals"]["rps_lines_uppercase_letter_fraction"]
    )


def test_export_rerun_skips_current_files_and_redoes_the_rest(tree: Path, tmp_path: Path):
    own = tmp_path / "tree"
    shutil.copytree(tree, own)
    dest = tmp_path / "rpv2"
    first = export.run(own, dest, OPTIONS)
    files = sorted(p for p in dest.rglob("*.json.gz"))
    stamps = {p: p.stat().st_mtime_ns for p in files}
    again = export.run(own, dest, OPTIONS)
    assert again.tasks_run == 0 and again.tasks_skipped == first.tasks_total
    assert again.stats.docs_out == first.stats.docs_out  # the totals of the run that did the work
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    # A deleted or truncated file is written again, and only that shard.
    victim, cut = files[0], files[1]
    victim.unlink()
    cut.write_bytes(cut.read_bytes()[:10])
    repaired = export.run(own, dest, OPTIONS)
    assert repaired.tasks_run == 2
    assert victim.exists() and cut.stat().st_size > 10
    # Signals recomputed upstream (another marker hash) make their shard export again.
    sig = own / "quality_signals" / "2020-16" / "0174" / "en_head.parquet"
    mark = sig.with_name(f".{sig.name}.done.json")
    record = json.loads(mark.read_text())
    record["sha256"] = "0" * 64
    mark.write_text(json.dumps(record))
    assert export.run(own, dest, OPTIONS).tasks_run == 1
    # Another destination gets every file (the tree remembers the last destination only).
    assert export.run(own, tmp_path / "other", OPTIONS).tasks_run == first.tasks_total
    forced = export.run(own, dest, RunOptions(workers=1, progress=False, overwrite=True))
    assert forced.tasks_run == first.tasks_total


def test_exported_ids_are_rpv2_ids_of_the_exported_lines(tree: Path, tmp_path: Path):
    # Every input format: `<cc_net_source>/<line>` of the exported documents file (A.2.7), so the
    # exported documents and signals join again after a re-ingest, whatever our ids were.
    from redpajama.ids import id_int_of

    dest = tmp_path / "rpv2"
    assert export.run(tree, dest, OPTIONS).failed == {}
    files = sorted((dest / "quality_signals").rglob("*.signals.json.gz"))
    assert len(files) > 1
    for path in files:
        source = path.relative_to(dest / "quality_signals").as_posix().replace(".signals.json.gz", ".json.gz")
        with gzip.open(path, "rt") as handle:
            records = [json.loads(line) for line in handle]
        assert [r["id"] for r in records] == [f"{source}/{i}" for i in range(len(records))]
        assert all(r["id_int"] == id_int_of(r["id"]) for r in records)
    back = tmp_path / "back"
    ingest.run([str(dest / "documents"), str(dest / "quality_signals")], back, ingest.IngestConfig(), OPTIONS)
    reingested = sorted((back / "quality_signals").rglob("*.parquet"))
    assert len(reingested) == len(files)
    for path in reingested:
        relative = path.relative_to(back / "quality_signals")
        signal_ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
        document_ids = pq.read_table(back / "documents" / relative, columns=["id"]).column("id").to_pylist()
        assert signal_ids == document_ids


def test_round_trip_parquet_rpv2_json_parquet(tree: Path, tmp_path: Path):
    dest = tmp_path / "rpv2"
    assert export.run(tree, dest, OPTIONS).failed == {}
    back = tmp_path / "back"
    ingest.run(
        [str(dest / "documents" / "2020-16"), str(dest / "quality_signals" / "2020-16")],
        back,
        ingest.IngestConfig(),
        OPTIONS,
    )
    for relative in ("2020-16/0174/en_head.parquet",):
        ours = pq.read_table(tree / "quality_signals" / relative)
        theirs = pq.read_table(back / "quality_signals" / relative)
        assert theirs.schema.equals(ours.schema)
        assert theirs.equals(ours)


def test_rpv2_signals_file_with_unknown_and_bad_records(tmp_path: Path):
    folder = tmp_path / "quality_signals" / "2023-14" / "0001"
    folder.mkdir(parents=True)
    lines = [
        {"id": "2023-14/0001/en_head.json.gz/0", "id_int": 5, "metadata": {},
         "quality_signals": {"rps_doc_word_count": [[0, 10, 3]], "ccnet_perplexity": [[0, 10, 120.5]],
                             "rps_lines_num_words": [[0, 4, 1], [4, 10, 2]],
                             "my_unknown_signal": [[0, 10, 0.5]]}},
    ]  # fmt: skip
    payload = "\n".join(json.dumps(x) for x in lines) + "\n{broken\n"
    with gzip.open(folder / "en_head.signals.json.gz", "wt") as handle:
        handle.write(payload)
    summary = ingest.run(
        [str(folder / "en_head.signals.json.gz")], tmp_path / "out", ingest.IngestConfig(), OPTIONS
    )
    assert summary.stats.errors == {"json": 1}
    table = pq.read_table(tmp_path / "out" / "quality_signals" / "2023-14" / "0001" / "en_head.parquet")
    row = table.to_pylist()[0]
    assert row["rps_doc_word_count"] == 3
    assert row["rps_lines_num_words"] == [
        {"start": 0, "end": 4, "score": 1.0},
        {"start": 4, "end": 10, "score": 2.0},
    ]
    assert row["ccnet_perplexity"] == 120.5  # a registered document-level signal: its score
    # not a registered signal: kept losslessly as spans
    assert row["my_unknown_signal"] == [{"start": 0, "end": 10, "score": 0.5}]
