"""The Ray executor itself: a local Ray it starts is stopped again, failures are reported per task
as the local runner reports them, and the run's stats are merged."""

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ray_helpers import local_ray  # noqa: E402

from redpajama.io import layout  # noqa: E402
from redpajama.runners.local import RunOptions, TaskContext, TaskResult, run_tasks  # noqa: E402
from redpajama.runners.stats import Stats  # noqa: E402


@dataclass(frozen=True)
class Job:
    key: str
    weight: int = 1


@dataclass(frozen=True)
class Work:
    fail: str = ""
    crash: str = ""

    def __call__(self, task: Job, ctx: TaskContext) -> TaskResult:
        if task.key == self.fail:
            raise ValueError(f"bad input {task.key}")
        if task.key == self.crash:  # as the OOM killer would, on every attempt
            os.kill(os.getpid(), signal.SIGKILL)
        ctx.progress(10)
        return TaskResult(outputs=[], stats=Stats(docs_in=10, docs_out=9))


OPTIONS = RunOptions(runner="ray", workers=1, progress=False)

# Workers cannot import this test module by name: ship its classes by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_starts_and_stops_its_own_local_ray(tmp_path: Path):
    assert not ray.is_initialized()
    summary = run_tasks("toy", [Job("a"), Job("b")], Work(), tmp_path / "out", OPTIONS)
    assert summary.failed == {} and summary.tasks_run == 2
    assert summary.stats.docs_in == 20 and summary.stats.docs_out == 18
    assert not ray.is_initialized()  # what the engine started, it shut down


@pytest.fixture(scope="module")
def cluster():
    with local_ray():
        yield


def test_task_exception_is_reported_and_others_finish(cluster, tmp_path: Path):
    root = tmp_path / "out"
    jobs = [Job(k) for k in "abcd"]
    summary = run_tasks("toy", jobs, Work(fail="c"), root, OPTIONS)
    assert summary.failed == {"c": "ValueError: bad input c"}
    assert summary.tasks_run == 3 and summary.stats.docs_in == 30
    assert not layout.task_marker(root, "toy", "c").exists()
    assert layout.task_marker(root, "toy", "a").exists()
    # The rerun redoes only the failed task.
    again = run_tasks("toy", jobs, Work(), root, OPTIONS)
    assert again.tasks_run == 1 and again.tasks_skipped == 3 and again.failed == {}


def test_relative_root_reaches_workers_as_absolute(cluster, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary = run_tasks("toy", [Job("a")], Work(), Path("rel-out"), OPTIONS)
    assert summary.failed == {}
    assert layout.task_marker(tmp_path / "rel-out", "toy", "a").exists()


def test_worker_dying_on_every_attempt_is_reported(cluster, tmp_path: Path):
    root = tmp_path / "out"
    summary = run_tasks("toy", [Job("a"), Job("b")], Work(crash="b"), root, OPTIONS)
    assert summary.failed == {"b": "worker died"}
    assert summary.tasks_run == 1 and summary.stats.docs_in == 10
    assert not layout.task_marker(root, "toy", "b").exists()
