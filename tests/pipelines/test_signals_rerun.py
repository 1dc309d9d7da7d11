"""The signals stage up front: other signals than a finished tree holds, a missing UT1 map, documents without a language."""

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from redpajama.errors import UserError
from redpajama.pipelines import ingest, signals
from redpajama.runners.local import RunOptions

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "inputs"
OPTIONS = RunOptions(workers=1, progress=False)


def test_other_signals_on_a_finished_tree(tmp_path):
    ingest.run([str(SAMPLES)], tmp_path, ingest.IngestConfig(), OPTIONS)
    one = signals.SignalsConfig(names=("rps_doc_word_count",))
    assert signals.run(tmp_path, one, OPTIONS).failed == {}
    assert signals.run(tmp_path, one, OPTIONS).tasks_run == 0  # same ask: a no-op
    with pytest.raises(UserError, match="missing rps_doc_mean_word_length"):
        signals.run(tmp_path, signals.SignalsConfig(names=("rps_doc_word_count", "rps_doc_mean_word_length")))
    both = signals.SignalsConfig(names=("rps_doc_word_count", "rps_doc_mean_word_length"))
    assert signals.run(tmp_path, both, RunOptions(workers=1, progress=False, overwrite=True)).failed == {}
    names = pq.read_schema(next((tmp_path / "quality_signals").rglob("*.parquet"))).names
    assert "rps_doc_mean_word_length" in names


def test_a_ut1_map_that_does_not_exist_fails_once_up_front(tmp_path):
    ingest.run([str(SAMPLES)], tmp_path, ingest.IngestConfig(), OPTIONS)
    with pytest.raises(UserError, match="UT1 map"):
        signals.run(tmp_path, signals.SignalsConfig(ut1_map=str(tmp_path / "nope.parquet")), OPTIONS)


def test_documents_without_a_language_are_counted(tmp_path):
    ingest.run([str(SAMPLES)], tmp_path, ingest.IngestConfig(), OPTIONS)
    unknown = sum(
        pq.read_metadata(p).num_rows for p in (tmp_path / "documents").rglob("und_*.parquet") if p.is_file()
    )
    assert unknown > 0  # the samples hold WARC/WET/JSONL pages that never went through CCNet
    assert signals.documents_without_language(tmp_path, signals.SignalsConfig()) == unknown
