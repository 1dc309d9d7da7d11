"""The Beam engine (DirectRunner) writes the same rows as the local runner, and reports failures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from redpajama.pipelines import filter as filter_stage
from redpajama.pipelines import ingest, minhash, signals
from redpajama.pipelines.rules import resolve
from redpajama.runners.local import RunOptions, TaskContext, TaskResult, run_tasks
from redpajama.runners.stats import Stats

pytest.importorskip("apache_beam")

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "inputs"
LOCAL = RunOptions(workers=1, progress=False)
# One worker keeps the DirectRunner in-process (fast); the recipe test covers multi_processing.
BEAM = RunOptions(workers=1, progress=False, runner="beam")


def rows(root: Path, component: str) -> dict[str, pa.Table]:
    """Each file's rows sorted by id, keyed by its path under `component`."""
    out = {}
    for path in sorted((root / component).rglob("*.parquet")):
        if not path.name.startswith("."):
            table = pq.read_table(path)
            out[path.relative_to(root / component).as_posix()] = table.sort_by("id")
    return out


def assert_same(a: Path, b: Path, component: str) -> None:
    left, right = rows(a, component), rows(b, component)
    assert left and sorted(left) == sorted(right)
    for name, table in left.items():
        assert table.equals(right[name]), f"{component}/{name} differs"


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    made = {}
    for name, options in (("local", LOCAL), ("beam", BEAM)):
        root = tmp_path_factory.mktemp(name)
        for summary in (
            ingest.run([str(SAMPLES)], root, options=options),
            signals.run(root, options=options),
            minhash.run(root, minhash.MinHashConfig(thresholds=(0.8,)), options=options),
        ):
            assert not summary.failed and summary.tasks_run > 0
        curated = root.parent / f"{name}-curated"
        config = filter_stage.FilterConfig(source=str(root), rules=tuple(resolve(["gopher"])))
        summary, _ = filter_stage.run(curated, config, options)
        assert not summary.failed
        made[name] = root
    return made


@pytest.mark.parametrize("component", ["documents", "quality_signals", "minhash"])
def test_stage_rows_match_local(trees, component) -> None:
    assert_same(trees["local"], trees["beam"], component)


def test_filter_rows_match_local(trees) -> None:
    assert_same(trees["local"].parent / "local-curated", trees["beam"].parent / "beam-curated", "documents")


def test_stats_come_from_task_markers(trees) -> None:
    # A rerun finds every task done: the Beam run left complete markers behind.
    summary = minhash.run(trees["beam"], minhash.MinHashConfig(thresholds=(0.8,)), options=BEAM)
    assert summary.tasks_run == 0 and summary.tasks_skipped > 0


@dataclass(frozen=True)
class Job:
    key: str
    weight: int = 1


@dataclass(frozen=True)
class FailOn:
    bad: str

    def __call__(self, task: Job, ctx: TaskContext) -> TaskResult:
        if task.key == self.bad:
            raise ValueError(f"no good: {task.key}")
        return TaskResult(outputs=[], stats=Stats(docs_in=1, docs_out=1))


def test_failing_task_is_reported_and_others_finish(tmp_path) -> None:
    jobs = [Job("a"), Job("b"), Job("c")]
    summary = run_tasks("toy", jobs, FailOn("b"), tmp_path, BEAM)
    assert summary.failed == {"b": "ValueError: no good: b"}
    assert summary.tasks_run == 2 and summary.stats.docs_out == 2
    assert not list((tmp_path / "_runs" / "toy").glob("beam-*")), "failure notes are cleaned up"
    # The rerun redoes only the failed task.
    again = run_tasks("toy", jobs, FailOn("none"), tmp_path, BEAM)
    assert (again.tasks_run, again.tasks_skipped, again.failed) == (1, 2, {})


def test_engine_args_pass_through() -> None:
    from redpajama.runners.beam_engine import pipeline_options

    options = pipeline_options(RunOptions(runner="beam", workers=3, engine_args=("--runner=FlinkRunner",)))
    everything = options.get_all_options()
    assert everything["runner"] == "FlinkRunner"
    assert everything["direct_num_workers"] == 3
