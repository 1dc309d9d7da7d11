"""The Apache Beam engine: a stage's tasks as `Create | Reshuffle | ParDo(run one task)`.

Every task commits itself (outputs atomic and marked, then its errors file and its task marker),
so the driver needs nothing back from the pipeline: once it finishes, the task markers are the
results. That keeps the pipeline free of shuffles of data and lets any Beam runner execute it.
The output root must be a filesystem every Beam worker sees (a local disk for DirectRunner, a
shared mount for Dataflow, Flink or Spark workers).

Locally this uses the DirectRunner: Prism would need its Go binary fetched from GitHub at first
use, which fails offline. With more than one worker it runs in `multi_processing` mode, because
the stages are CPU-bound Python and threads would share one GIL; with one worker, `in_memory`
saves the worker start-up (about a second per worker).

Failures: the DirectRunner does not retry a failed bundle, and a failed bundle fails the whole
pipeline on every runner. So a task that raises is retried in place (`RunOptions.retries`) and
then recorded as failed in a note next to the markers, and the other tasks go on; a worker that
dies outright is the runner's to retry (Dataflow, Flink and Spark reschedule the bundle).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from redpajama.io import atomic, layout
from redpajama.runners.stats import Stats

# Default pipeline options when none are given: local and offline.
LOCAL_ARGS = ("--runner=DirectRunner",)


def pipeline_options(options: Any) -> Any:
    """Beam PipelineOptions from `--engine-arg`s; DirectRunner parallelism from `--workers`."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, WorkerOptions

    result = PipelineOptions(list(options.engine_args) or list(LOCAL_ARGS))
    direct = result.view_as(DirectOptions)
    given = {a.split("=", 1)[0] for a in options.engine_args}
    if "--direct_num_workers" not in given:
        direct.direct_num_workers = options.workers or os.cpu_count() or 1
    if "--direct_running_mode" not in given:
        direct.direct_running_mode = "multi_processing" if direct.direct_num_workers > 1 else "in_memory"
    if "--default_sdk_harness_log_level" not in given:
        # The SDK workers log every channel they open at INFO: ~140 lines for a small recipe.
        result.view_as(WorkerOptions).default_sdk_harness_log_level = "WARNING"
    return result


def _failure_note(notes: Path, key: str) -> Path:
    return notes / f"{hashlib.sha1(key.encode('utf-8')).hexdigest()}.json"


class _RunTask:
    """The ParDo body; a plain picklable callable so any runner can ship it to its workers."""

    def __init__(self, stage: str, root: Path, work: Any, retries: int, notes: Path) -> None:
        self.stage, self.root, self.work, self.retries, self.notes = stage, root, work, retries, notes

    def __call__(self, task: Any) -> None:
        from redpajama.runners.local import run_one

        for attempt in range(self.retries + 1):
            try:
                run_one(self.stage, self.root, self.work, task, lambda docs, nbytes: None)
                return
            except Exception as exc:  # one task's failure must not fail the other tasks' bundles
                reason = f"{type(exc).__name__}: {exc}"
                if attempt == self.retries:
                    atomic.write_json(
                        _failure_note(self.notes, task.key), {"task": task.key, "reason": reason}
                    )


def execute(
    stage: str,
    root: Path,
    work: Any,
    todo: list[Any],
    options: Any,
    progress: Any,
    stats: Stats,
    failed: dict[str, str],
) -> None:
    """Run `todo` as one Beam pipeline; fill `stats` from the task markers and `failed` from the rest."""
    if not todo:
        return
    import apache_beam as beam

    # The job service relays each worker's plumbing warnings (unparsed direct-runner flags, no
    # staging folder) once per worker; a task's own failure is recorded in its note instead.
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)

    # A task being redone may still have the marker of an earlier run: drop it, so that after the
    # pipeline a marker means "committed by this run".
    for task in todo:
        with contextlib.suppress(FileNotFoundError):
            layout.task_marker(root, stage, task.key).unlink()
    notes = layout.stage_dir(root, stage) / f"beam-{uuid.uuid4().hex}"
    notes.mkdir(parents=True, exist_ok=True)
    watcher = _Watcher(root, stage, todo, notes, progress)
    error: BaseException | None = None
    try:
        pipeline = beam.Pipeline(options=pipeline_options(options))
        _ = (
            pipeline
            | f"{stage} tasks" >> beam.Create(todo, reshuffle=False)
            # Spreads tasks over workers: Create alone may hand them all to one bundle.
            | "spread" >> beam.Reshuffle()
            | f"run {stage}" >> beam.Map(_RunTask(stage, root, work, options.retries, notes))
        )
        watcher.start()
        pipeline.run().wait_until_finish()
    except Exception as exc:  # the pipeline itself failed: whatever committed still counts
        error = exc
    finally:
        watcher.stop()
    for task in todo:
        record = _marker(root, stage, task.key)
        if record is not None:
            stats.merge(Stats.from_dict(record["stats"]))
            continue
        note = _read_json(_failure_note(notes, task.key))
        if note is not None:
            failed[task.key] = note["reason"]
        elif error is not None:
            failed[task.key] = f"beam pipeline failed: {type(error).__name__}: {error}"
        else:
            failed[task.key] = "beam pipeline finished without committing this task"
    shutil.rmtree(notes, ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def _marker(root: Path, stage: str, key: str) -> dict[str, Any] | None:
    record = _read_json(layout.task_marker(root, stage, key))
    return record if record is not None and isinstance(record.get("stats"), dict) else None


class _Watcher:
    """Advances the progress bar as task markers (or failure notes) appear; workers may be remote."""

    def __init__(self, root: Path, stage: str, todo: list[Any], notes: Path, progress: Any) -> None:
        self.root, self.stage, self.notes, self.progress = root, stage, notes, progress
        self.pending = {t.key for t in todo}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"beam-{stage}-progress", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()
        self._poll()

    def _loop(self) -> None:
        while not self.done.wait(0.5):
            self._poll()

    def _poll(self) -> None:
        for key in sorted(self.pending):
            record = _marker(self.root, self.stage, key)
            if record is None and not _failure_note(self.notes, key).exists():
                continue
            self.pending.discard(key)
            if record is not None:
                self.progress.add(record["stats"].get("docs_in", 0), record["stats"].get("bytes_in", 0))
            self.progress.task_done()
