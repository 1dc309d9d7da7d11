"""Ingest of damaged inputs: RPv2 signals with bad values or late columns, lost Parquet row
groups, temp files of a killed run, and reruns of a run that failed on its error rate."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from redpajama.pipelines import ingest
from redpajama.runners.local import RunOptions

OPTIONS = RunOptions(workers=1, progress=False)


def _signals_line(i: int, **signals) -> dict:
    quality = {"ccnet_length": [[0, 100, float(i)]], "rps_lines_num_words": [[0, 50, 1], [50, 100, 2]]}
    quality.update(signals)
    return {
        "id": f"2023-14/0001/en_head.json.gz/{i}",
        "id_int": i,
        "metadata": {},
        "quality_signals": quality,
    }


def _write_signals(tmp_path: Path, lines: list[dict]) -> Path:
    folder = tmp_path / "in" / "2023-14" / "0001"
    folder.mkdir(parents=True)
    path = folder / "en_head.signals.json.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _signals_out(out: Path) -> Path:
    return out / "quality_signals" / "2023-14" / "0001" / "en_head.parquet"


def test_badly_typed_signals_line_is_one_error_and_the_others_are_kept(tmp_path: Path):
    lines = [_signals_line(i) for i in range(10)]
    lines[3]["quality_signals"]["ccnet_length"] = [[0, 100, "abc"]]  # a score that is a string
    lines[7]["id_int"] = -5  # an id_int that does not fit uint64
    path = _write_signals(tmp_path, lines)

    summary = ingest.run([str(path)], tmp_path / "out", ingest.IngestConfig(), OPTIONS)

    assert summary.failed == {}
    assert summary.stats.errors == {"signal_type": 2}
    table = pq.read_table(_signals_out(tmp_path / "out"))
    assert table.column("id_int").to_pylist() == [0, 1, 2, 4, 5, 6, 8, 9]
    errors = [json.loads(x) for x in (tmp_path / "out" / "_runs" / "ingest" / "errors.jsonl").open()]
    assert [(e["source_file"], e["index"]) for e in errors] == [(str(path), 3), (str(path), 7)]
    assert "'abc'" in errors[0]["message"] and "ccnet_length" in errors[0]["message"]


def test_signals_columns_first_seen_late_are_kept(tmp_path: Path):
    # Past the first batch (1,000 rows) and past the first row group (10,000 rows), which
    # makes the file widen after rows were already written.
    lines = [_signals_line(i) for i in range(10_500)]
    lines[1200]["quality_signals"]["late_signal"] = [[0, 100, 7.0]]
    lines[10_200]["quality_signals"]["rps_doc_word_count"] = [[0, 100, 42]]
    path = _write_signals(tmp_path, lines)

    summary = ingest.run([str(path)], tmp_path / "out", ingest.IngestConfig(), OPTIONS)

    assert summary.failed == {} and summary.stats.error_count == 0
    out = _signals_out(tmp_path / "out")
    table = pq.read_table(out)
    assert table.num_rows == 10_500
    # registered signals in registry order, then the unknown one (kept as spans)
    assert table.column_names == ["id", "id_int", "ccnet_length", "rps_doc_word_count"] + [
        "rps_lines_num_words",
        "late_signal",
    ]
    assert table.schema.field("rps_doc_word_count").type == pa.int64()
    late = table.column("late_signal").to_pylist()
    assert late[1200] == [{"start": 0, "end": 100, "score": 7.0}] and late.count(None) == 10_499
    words = table.column("rps_doc_word_count").to_pylist()
    assert words[10_200] == 42 and words.count(None) == 10_499
    assert table.column("id_int").to_pylist() == list(range(10_500))
    assert not list(out.parent.glob(".*.tmp-*"))

    # The same input gives the same bytes (a rerun after a crash reproduces the file).
    again = ingest.run([str(path)], tmp_path / "out2", ingest.IngestConfig(), OPTIONS)
    assert again.failed == {}
    assert _signals_out(tmp_path / "out2").read_bytes() == out.read_bytes()


def test_rerun_removes_temp_files_a_killed_signals_ingest_left(tmp_path: Path):
    path = _write_signals(tmp_path, [_signals_line(i) for i in range(3)])
    out = tmp_path / "out"
    stale = out / "quality_signals" / "2023-14" / "0001" / ".en_head.parquet.tmp-99999"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a parquet file")  # what a SIGKILL mid-write leaves

    summary = ingest.run([str(path)], out, ingest.IngestConfig(), OPTIONS)

    assert summary.failed == {}
    assert not stale.exists()
    assert pq.read_table(_signals_out(out)).num_rows == 3


def test_rerun_removes_a_task_marker_temp_a_killed_run_left(tmp_path: Path):
    # A SIGKILL between writing a task marker's temp and its rename leaves the temp in the stage's
    # own folder, not in any output folder the stage names (seen once in test_kill_and_resume).
    path = _write_signals(tmp_path, [_signals_line(i) for i in range(3)])
    out = tmp_path / "out"
    stale = out / "_runs" / "ingest" / "tasks" / ".part-00.json.tmp-99999"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b'{"outputs": [')

    summary = ingest.run([str(path)], out, ingest.IngestConfig(), OPTIONS)

    assert summary.failed == {}
    assert not stale.exists()
    assert not list(out.rglob(".*.tmp-*"))


def test_lost_parquet_row_group_counts_all_its_rows(tmp_path: Path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [f"document {i}" for i in range(1000)]}), path, row_group_size=500)
    meta = pq.ParquetFile(path).metadata.row_group(1).column(0)
    data = bytearray(path.read_bytes())
    start = meta.dictionary_page_offset or meta.data_page_offset
    data[start : start + 16] = b"\xff" * 16  # the second group's first page header
    path.write_bytes(bytes(data))

    summary = ingest.run([str(path)], tmp_path / "out", ingest.IngestConfig(), OPTIONS)

    assert summary.stats.docs_out == 500
    assert summary.stats.errors == {"parquet_row_group": 500}
    assert summary.stats.docs_in == 1000 and summary.error_rate == 0.5


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "redpajama", *args], capture_output=True, text=True, env=dict(os.environ)
    )


def test_rerun_of_a_failed_run_reports_the_same_errors_and_exit_status(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(9)) + "{broken\n")
    out = tmp_path / "out"
    stats_path = out / "_runs" / "ingest" / "stats.json"

    first = _cli("ingest", str(src), "-o", str(out), "--no-progress", "-w", "1")
    first_stats = json.loads(stats_path.read_text())
    marker = next((out / "_runs" / "ingest" / "tasks").glob("*.json")).read_bytes()
    second = _cli("ingest", str(src), "-o", str(out), "--no-progress", "-w", "1")
    second_stats = json.loads(stats_path.read_text())

    assert first.returncode == second.returncode == 1  # 10% bad > --max-error-rate 5%
    assert "error rate 10.00%" in first.stderr and "error rate 10.00%" in second.stderr
    assert (first_stats["tasks_run"], second_stats["tasks_run"], second_stats["tasks_skipped"]) == (1, 0, 1)
    for key in ("docs_in", "docs_out", "errors", "error_count", "error_rate"):
        assert second_stats[key] == first_stats[key], key
    assert second_stats["error_count"] == 1
    assert "1 bad records (10.00%)" in second.stdout
    # still a no-op otherwise: the finished task was not redone
    assert next((out / "_runs" / "ingest" / "tasks").glob("*.json")).read_bytes() == marker


def test_signals_only_ingest_names_the_folder_it_wrote(tmp_path: Path):
    path = _write_signals(tmp_path, [_signals_line(i) for i in range(3)])
    out = tmp_path / "out"
    result = _cli("ingest", str(path), "-o", str(out), "--no-progress", "-w", "1")
    assert result.returncode == 0, result.stderr
    assert f"output: {out / 'quality_signals'}\n" in result.stdout
