"""A signals rerun asking for other signals than the finished files hold is refused, not skipped."""

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
