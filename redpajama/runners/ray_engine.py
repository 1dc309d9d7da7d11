"""The Ray engine: a stage's tasks as Ray tasks, on a local Ray or on a cluster (`--address`).

Each stage task becomes one Ray task that calls `run_one`, so a Ray worker commits the task
exactly as a local worker does (outputs atomic and marked, then its errors file, then its
marker). A worker killed mid-task leaves only hidden temp files; Ray reruns the task on another
worker (`max_retries`), and a task still failing is reported, never half written.

Why tasks and not Ray Data: our stages already stream Arrow batches inside a task and commit
per file; one Ray task per file keeps that commit unit, the resume markers and the output bytes
identical to the local runner, which a Ray Data pipeline (its own block boundaries and writers)
would not.

Paths must be absolute: the tasks run in Ray worker processes whose working directory is not
ours (on a cluster, not even on this machine: the output folder must be on shared storage).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from redpajama.runners.local import RunOptions, WorkFn, run_one
from redpajama.runners.stats import Stats

WORKER_DIED = "worker died"


def _no_report(docs: int, nbytes: int) -> None:
    # Progress is counted when a task's stats arrive; a per-batch channel to the driver (an
    # actor) would cost a round trip per report for a bar that only needs task granularity.
    pass


def run_stage_task(stage: str, root: Path, work: WorkFn, task: Any) -> dict[str, Any]:
    """The Ray task: one stage task, committed. Module level so workers import it by name."""
    return run_one(stage, root, work, task, _no_report)


@contextlib.contextmanager
def session(options: RunOptions) -> Iterator[None]:
    """Ray connected for the block: joins `options.address`, reuses a Ray this process already
    started, or starts a local one and shuts it down afterwards (only what we started)."""
    import ray

    if ray.is_initialized():
        yield
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING, "ignore_reinit_error": True}
    if options.address:
        ray.init(address=options.address, **quiet)
    else:
        ray.init(
            num_cpus=options.workers or os.cpu_count() or 1,
            include_dashboard=False,
            **quiet,
        )
    try:
        yield
    finally:
        ray.shutdown()


def execute(
    stage: str,
    root: Path,
    work: WorkFn,
    todo: list[Any],
    options: RunOptions,
    progress: Any,
    stats: Stats,
    failed: dict[str, str],
) -> None:
    """Run `todo` as Ray tasks; merge their stats into `stats`, failures into `failed`."""
    if not todo:
        return
    import ray

    root = Path(root).resolve()
    with session(options):
        remote = ray.remote(max_retries=options.retries or 1, retry_exceptions=False)(run_stage_task)
        work_ref = ray.put(work)  # shipped once, not once per task
        pending = {remote.remote(stage, root, work_ref, task): task for task in todo}
        try:
            _collect(pending, progress, stats, failed)
        except BaseException:
            # Interrupted: on a cluster we joined, tasks would run on without us.
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise


def _collect(pending: dict, progress: Any, stats: Stats, failed: dict[str, str]) -> None:
    import ray
    from ray.exceptions import RayTaskError

    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        for ref in done:
            task = pending.pop(ref)
            try:
                result = Stats.from_dict(ray.get(ref))
            except RayTaskError as exc:  # the task raised: same message as the local runner
                cause = exc.cause if exc.cause is not None else exc
                failed[task.key] = f"{type(cause).__name__}: {cause}"
            except ray.exceptions.RayError:  # worker or node died beyond the retries
                failed[task.key] = WORKER_DIED
            else:
                stats.merge(result)
                progress.add(result.docs_in, result.bytes_in)
            progress.task_done()
