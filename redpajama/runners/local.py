"""Running a stage's tasks: the scheduler every engine shares, and the local engine (the default).

Runs a stage's tasks in parallel processes on this machine. A task is one unit of resumable work
(for ingest: one input file); the stage supplies a picklable `work(task, ctx) -> TaskResult`
function and the runner does the rest:

- skips tasks whose marker says they finished and whose outputs are intact; redoes the others
  (a task killed half way left only hidden temp files, which are removed first);
- writes each task's bad-record log and then its marker, both atomically, so a task is either
  wholly done or not done at all;
- shows a rich progress bar with docs/s on a TTY, and writes merged stats for the run;
- reports every task of the stage, not only those run this time: a task skipped as done adds
  the stats its marker recorded, so a rerun shows (and fails on) the same error totals as the
  run that did the work, and `stats.json` agrees with the merged `errors.jsonl`;
- survives a worker that dies (a crash in a C extension, the OOM killer): its task is retried in
  a fresh pool, then reported as failed without stopping the other tasks.

Workers are spawned (not forked) so that native libraries never inherit a half-initialised state,
and they die with the parent (PR_SET_PDEATHSIG), so a killed run leaves no orphan still writing.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import multiprocessing as mp
import os
import queue
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from redpajama.io import atomic, layout, markers
from redpajama.runners.stats import Stats


class Task(Protocol):
    @property
    def key(self) -> str: ...  # unique within the stage; names the task marker

    @property
    def weight(self) -> int: ...  # e.g. input bytes: biggest tasks start first


@dataclass
class TaskResult:
    outputs: list[markers.OutputMarker]
    stats: Stats
    errors: list[dict[str, Any]] = field(default_factory=list)
    # JSON-able facts the stage keeps in the task's marker record (read back with `task_record`),
    # e.g. where a task wrote outside the tree.
    extra: dict[str, Any] = field(default_factory=dict)


class TaskContext:
    """What a task may use besides its own inputs: the output root and a progress callback."""

    def __init__(self, root: Path, report: Callable[[int, int], None]) -> None:
        self.root = root
        self._report = report
        self._docs = 0
        self._bytes = 0
        self._last = time.monotonic()

    def progress(self, docs: int, nbytes: int = 0) -> None:
        self._docs += docs
        self._bytes += nbytes
        now = time.monotonic()
        if now - self._last >= 0.25:
            self.flush()
            self._last = now

    def flush(self) -> None:
        if self._docs or self._bytes:
            self._report(self._docs, self._bytes)
            self._docs = self._bytes = 0


WorkFn = Callable[[Any, TaskContext], TaskResult]


#: Engines that execute a stage's tasks; every one writes the same files (each task commits its
#: own outputs atomically and marks itself done), so they differ only in where tasks run.
RUNNERS = ("local", "ray", "beam")


@dataclass(kw_only=True)
class RunOptions:
    workers: int = 0  # 0: one per CPU
    progress: bool | None = None  # None: on when stderr is a TTY
    overwrite: bool = False  # redo finished tasks too
    retries: int = 1  # extra attempts for a task whose worker died
    runner: str = "local"  # one of RUNNERS
    address: str | None = None  # ray: a cluster to join (None: start a local one)
    engine_args: tuple[str, ...] = ()  # beam: pipeline options (e.g. --runner=DataflowRunner ...)


@dataclass
class RunSummary:
    stage: str
    tasks_total: int
    tasks_run: int
    tasks_skipped: int
    failed: dict[str, str]  # task key -> reason
    #: Every finished task of the stage: those run now plus those already done (their markers' stats).
    stats: Stats
    seconds: float
    #: Only the tasks run this time (what `seconds` was spent on).
    run_stats: Stats = field(default_factory=Stats)
    #: Top-level folders of the root that hold the finished tasks' outputs (e.g. "documents").
    output_folders: tuple[str, ...] = ()

    @property
    def error_rate(self) -> float:
        return self.stats.error_count / self.stats.docs_in if self.stats.docs_in else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "tasks_total": self.tasks_total,
            "tasks_run": self.tasks_run,
            "tasks_skipped": self.tasks_skipped,
            "tasks_failed": self.failed,
            "error_rate": round(self.error_rate, 6),
            "seconds": round(self.seconds, 3),
            "docs_per_second": round(self.run_stats.docs_in / self.seconds, 1) if self.seconds else None,
            **self.stats.as_dict(),
        }


class RunLockedError(RuntimeError):
    """Another run is writing the same stage of the same output folder."""


def is_task_done(root: Path, stage: str, key: str) -> bool:
    path = layout.task_marker(root, stage, key)
    try:
        record = json.loads(path.read_text("utf-8"))
        outputs = [markers.OutputMarker(**o) for o in record["outputs"]]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return False
    return all(markers.is_complete(root, o) for o in outputs)


def task_record(root: Path, stage: str, key: str) -> dict[str, Any] | None:
    """A finished task's marker record (outputs, stats, extra), or None."""
    try:
        record = json.loads(layout.task_marker(root, stage, key).read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _finish_task(root: Path, stage: str, task: Any, result: TaskResult) -> dict[str, Any]:
    errors_path = layout.task_errors(root, stage, task.key)
    if result.errors:
        lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in result.errors)
        atomic.write_bytes(errors_path, lines.encode("utf-8"))
    else:
        with contextlib.suppress(FileNotFoundError):
            errors_path.unlink()
    record = {
        "task": task.key,
        "outputs": [asdict(o) for o in result.outputs],
        "stats": result.stats.as_dict(),
    }
    if result.extra:
        record["extra"] = result.extra
    # The marker goes last: its presence is what says the task is complete.
    atomic.write_json(layout.task_marker(root, stage, task.key), record)
    return record["stats"]


# --- worker process side -------------------------------------------------------------------

_progress_queue: Any = None


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _init_worker(progress_queue: Any) -> None:
    global _progress_queue
    _progress_queue = progress_queue
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides how to stop


def _report_to_queue(docs: int, nbytes: int) -> None:
    if _progress_queue is not None:
        with contextlib.suppress(Exception):
            _progress_queue.put_nowait((docs, nbytes))


def _run_one(stage: str, root: Path, work: WorkFn, task: Any) -> dict[str, Any]:
    return run_one(stage, root, work, task, _report_to_queue)


# --- parent side ---------------------------------------------------------------------------


@contextlib.contextmanager
def _stage_lock(root: Path, stage: str) -> Iterator[None]:
    lock_path = layout.stage_dir(root, stage) / ".lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"another '{stage}' run is writing {root}; wait for it or use another output folder"
            ) from None
        yield


def _progress_bar(enabled: bool, stage: str, total_tasks: int) -> Any:
    if not enabled:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn(f"[bold]{stage}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "tasks  {task.fields[docs]:,} docs  {task.fields[rate]:,.0f} docs/s  {task.fields[mb]:,.1f} MB"
        ),
        TimeElapsedColumn(),
        transient=False,
    )
    progress.add_task(stage, total=total_tasks, docs=0, rate=0.0, mb=0.0)
    return progress


class _Progress:
    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.docs = 0
        self.bytes = 0
        self.start = time.perf_counter()

    def add(self, docs: int, nbytes: int) -> None:
        self.docs += docs
        self.bytes += nbytes
        self._render(0)

    def task_done(self) -> None:
        self._render(1)

    def _render(self, advance: int) -> None:
        if self.bar is None:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.update(
            self.bar.task_ids[0],
            advance=advance,
            docs=self.docs,
            rate=self.docs / elapsed,
            mb=self.bytes / 1e6,
        )


def run_tasks(
    stage: str,
    tasks: Sequence[Any],
    work: WorkFn,
    root: Path,
    options: RunOptions,
    clean_dirs: Sequence[Path] = (),
    superseded: Callable[[Any], bool] | None = None,
) -> RunSummary:
    """Run `work` over `tasks`, resumably. `clean_dirs`: where a killed run may have left temps
    (the stage's own folder of task markers and stats is always swept too).

    `superseded(task)`: the stage says a finished task's outputs were since replaced by a later
    stage (e.g. ccnet rewrote the ingest output in place), so the task is done though its own
    output files are gone.
    """
    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"stage {stage}: task keys are not unique")
    with _stage_lock(root, stage):
        # Under the stage lock no other run of this stage writes: every temp here is a dead one's.
        for directory in (layout.stage_dir(root, stage), *clean_dirs):
            atomic.remove_stale_temps(directory)
        todo = [
            t
            for t in tasks
            if options.overwrite
            or not (is_task_done(root, stage, t.key) or (superseded is not None and superseded(t)))
        ]
        todo.sort(key=lambda t: (-t.weight, t.key))
        show = options.progress if options.progress is not None else sys.stderr.isatty()
        bar = _progress_bar(show, stage, len(todo))
        progress = _Progress(bar)
        workers = options.workers or os.cpu_count() or 1
        stats = Stats()
        failed: dict[str, str] = {}
        with bar if bar is not None else contextlib.nullcontext():
            if options.runner != "local":
                _engine(options.runner)(stage, root, work, todo, options, progress, stats, failed)
            elif workers == 1 or len(todo) <= 1:
                _run_inline(stage, root, work, todo, progress, stats, failed)
            else:
                _run_pool(stage, root, work, todo, workers, options.retries, progress, stats, failed)
        # Tasks skipped as done count with the stats they recorded, so that a rerun reports the
        # same totals (and the same --max-error-rate verdict) as the run that did the work.
        totals = Stats()
        totals.merge(stats)
        folders: set[str] = set()
        run_now = {t.key for t in todo}
        for key in keys:
            if key in failed:
                continue
            record = task_record(root, stage, key)
            if record is None:
                continue
            if key not in run_now:
                totals.merge(Stats.from_dict(record.get("stats") or {}))
            for output in record.get("outputs") or ():
                top = str(output.get("path", "")).split("/", 1)[0] if isinstance(output, dict) else ""
                if top and top != layout.RUNS:
                    folders.add(top)
        summary = RunSummary(
            stage=stage,
            tasks_total=len(tasks),
            tasks_run=len(todo) - len(failed),
            tasks_skipped=len(tasks) - len(todo),
            failed=failed,
            stats=totals,
            seconds=time.perf_counter() - started,
            run_stats=stats,
            output_folders=tuple(sorted(folders)),
        )
        _write_run_files(root, stage, keys, summary)
        return summary


def _engine(runner: str) -> Callable[..., None]:
    """The executor of another engine: `execute(stage, root, work, todo, options, progress, stats, failed)`."""
    if runner not in RUNNERS:
        raise ValueError(f"unknown runner {runner!r}; known: {', '.join(RUNNERS)}")
    import importlib

    return importlib.import_module(f"redpajama.runners.{runner}_engine").execute


def run_one(
    stage: str, root: Path, work: WorkFn, task: Any, report: Callable[[int, int], None]
) -> dict[str, Any]:
    """Run one task and commit it (errors file, then its marker): what every engine's worker calls."""
    ctx = TaskContext(root, report)
    result = work(task, ctx)
    ctx.flush()
    return _finish_task(root, stage, task, result)


def _run_inline(stage, root, work, todo, progress, stats, failed) -> None:
    for task in todo:
        try:
            stats.merge(Stats.from_dict(run_one(stage, root, work, task, progress.add)))
        except Exception as exc:  # one task's failure must not stop the others
            failed[task.key] = f"{type(exc).__name__}: {exc}"
        progress.task_done()


def _run_pool(stage, root, work, todo, workers, retries, progress, stats, failed) -> None:
    context = mp.get_context("spawn")
    progress_queue = context.Queue()
    attempts: dict[str, int] = {}
    pending = list(todo)
    while pending:
        pool = ProcessPoolExecutor(
            max_workers=min(workers, len(pending)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(progress_queue,),
        )
        futures: dict[Future, Any] = {pool.submit(_run_one, stage, root, work, t): t for t in pending}
        pending = []
        broken = False
        try:
            while futures:
                done, _ = wait(list(futures), timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_queue, progress)
                for future in done:
                    task = futures.pop(future)
                    try:
                        stats.merge(Stats.from_dict(future.result()))
                        progress.task_done()
                    except BrokenProcessPool:
                        broken = True
                        attempts[task.key] = attempts.get(task.key, 0) + 1
                        if attempts[task.key] <= retries:
                            pending.append(task)
                        else:
                            failed[task.key] = "worker process died (crash or out of memory)"
                            progress.task_done()
                    except Exception as exc:
                        failed[task.key] = f"{type(exc).__name__}: {exc}"
                        progress.task_done()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            _drain(progress_queue, progress)
        if broken and pending:
            continue


def _drain(progress_queue: Any, progress: _Progress) -> None:
    while True:
        try:
            docs, nbytes = progress_queue.get_nowait()
        except (queue.Empty, OSError, ValueError):
            return
        progress.add(docs, nbytes)


def _write_run_files(root: Path, stage: str, keys: list[str], summary: RunSummary) -> None:
    stage_dir = layout.stage_dir(root, stage)
    merged = bytearray()
    for key in sorted(keys):
        with contextlib.suppress(FileNotFoundError):
            merged += layout.task_errors(root, stage, key).read_bytes()
    atomic.write_bytes(stage_dir / "errors.jsonl", bytes(merged))
    atomic.write_json(stage_dir / "stats.json", summary.as_dict())
