"""A two-node Ray cluster on this machine (two `ray start` processes), the pipeline run against
it with `--address`, and a Ray worker SIGKILLed in the middle of a stage task: the output is
complete and identical to the local runner's."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from ray_helpers import (  # noqa: E402
    TwoNodeCluster,
    assert_same_rows,
    cmdline,
    file_digests,
    is_temp,
    run_stages,
    write_jsonl_shards,
)

from redpajama.pipelines import signals  # noqa: E402
from redpajama.runners.local import RunOptions  # noqa: E402

HERE = Path(__file__).resolve().parent
COMPONENTS = ("documents", "quality_signals", "minhash", "clusters", "duplicates")


@pytest.fixture
def cluster():
    nodes = TwoNodeCluster(cpus_per_node=1)
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()  # every process the cluster started, by pid


def _watch(cluster: TwoNodeCluster, driver: subprocess.Popen, ready: Path) -> tuple[int | None, set[int]]:
    """SIGKILL one Ray worker while it runs a stage task of a stage after ingest; returns its pid
    and the nodes seen running stage tasks."""
    killed, nodes = None, set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        workers = cluster.task_workers("run_stage_task")
        nodes.update(workers.values())
        if killed is None and ready.exists() and workers:
            pid = next(iter(workers))
            time.sleep(0.2)  # well inside the task, not at its first line
            if cmdline(pid).startswith("ray::run_stage_task"):
                os.kill(pid, signal.SIGKILL)
                killed = pid
        time.sleep(0.02)
    return killed, nodes


@pytest.mark.slow
def test_two_nodes_worker_killed_output_complete_and_identical(cluster, tmp_path: Path):
    inputs = tmp_path / "inputs"
    write_jsonl_shards(inputs, files=8, docs=400)
    reference = tmp_path / "local"
    for summary in run_stages(inputs, reference, RunOptions(workers=2, progress=False)):
        assert summary["tasks_failed"] == {}

    out = tmp_path / "ray"
    code = f"import ray_helpers; ray_helpers.drive({cluster.address!r}, {str(inputs)!r}, {str(out)!r}, 2)"
    driver = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=HERE,
        env={**cluster.env, "PYTHONPATH": str(HERE)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        killed, nodes = _watch(cluster, driver, out / "_runs" / "ingest" / "stats.json")
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, stderr[-3000:]
    assert killed is not None, "no Ray worker was caught running a task"
    assert nodes == {0, 1}, "both nodes ran stage tasks"
    summaries = json.loads(stdout.strip().splitlines()[-1])
    for summary in summaries:
        assert summary["tasks_failed"] == {}, summary
        assert summary["tasks_run"] == summary["tasks_total"], summary
    assert summaries[1]["docs_in"] == 8 * 400  # signals: every document exactly once
    for component in COMPONENTS:
        assert_same_rows(reference, out, component)
        assert file_digests(reference, component) == file_digests(out, component)
    # The killed attempt may have left its hidden temp file; a rerun (a no-op) sweeps it.
    assert signals.run(out, options=RunOptions(workers=1, progress=False)).tasks_run == 0
    assert not [p for p in out.rglob("*") if is_temp(p)]
