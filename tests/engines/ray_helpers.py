"""Helpers of the Ray engine tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}


@contextlib.contextmanager
def local_ray(num_cpus: int = 2) -> Iterator[None]:
    """One local Ray for a whole test module: `execute` reuses it instead of starting its own."""
    import ray

    os.environ.update(RAY_ENV)
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def sorted_table(path: Path) -> pa.Table:
    table = pq.read_table(path)
    return table.sort_by("id") if "id" in table.column_names else table


def assert_same_rows(a: Path, b: Path, component: str) -> int:
    """Every Parquet file of `component` in both trees, equal row for row once sorted by id;
    returns how many files were compared."""
    files_a = sorted(p.relative_to(a).as_posix() for p in (a / component).rglob("*.parquet"))
    files_b = sorted(p.relative_to(b).as_posix() for p in (b / component).rglob("*.parquet"))
    assert files_a == files_b, f"{component}: different files"
    assert files_a, f"{component}: no files"
    for rel in files_a:
        ta, tb = sorted_table(a / rel), sorted_table(b / rel)
        assert ta.schema == tb.schema, rel
        assert ta.equals(tb), f"{rel}: rows differ"
    return len(files_a)


def file_digests(root: Path, component: str) -> dict[str, str]:
    """sha256 of every file (data and markers, hidden ones included) under `component`."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / component).rglob("*"))
        if p.is_file() and not is_temp(p)
    }


def is_temp(path: Path) -> bool:
    """A hidden temp file (io.atomic): what a killed task attempt leaves, never a visible output."""
    return path.name.startswith(".") and ".tmp-" in path.name


def write_jsonl_shards(folder: Path, files: int, docs: int, doc_bytes: int = 3000, seed: int = 0) -> None:
    """`files` JSONL shards of `docs` English-like documents of ~`doc_bytes` each; deterministic."""
    import random

    rng = random.Random(seed)
    words = [
        "the",
        "of",
        "and",
        "to",
        "in",
        "a",
        "is",
        "that",
        "for",
        "it",
        "as",
        "was",
        "with",
        "be",
        "by",
        "on",
        "not",
        "he",
        "this",
        "are",
        "or",
        "his",
        "from",
        "at",
        "which",
        "but",
        "have",
        "an",
        "they",
        "you",
        "were",
        "her",
        "she",
        "there",
        "been",
        "one",
        "all",
        "we",
        "their",
        "has",
        "would",
        "when",
        "if",
        "so",
        "data",
        "river",
        "market",
        "music",
        "garden",
        "winter",
        "science",
        "history",
        "letter",
        "summer",
        "morning",
        "village",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        with open(folder / f"part-{f:02d}.jsonl", "w") as handle:
            for d in range(docs):
                lines, size = [], 0
                while size < doc_bytes:
                    line = " ".join(rng.choice(words) for _ in range(rng.randint(8, 20))).capitalize() + "."
                    lines.append(line)
                    size += len(line) + 1
                handle.write(json.dumps({"text": "\n".join(lines), "url": f"https://x.org/{f}/{d}"}) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(c) for c in path.read_text().split()]
    return []


def descendants(pids: list[int]) -> list[int]:
    out, stack = [], list(pids)
    while stack:
        for child in _children(stack.pop()):
            out.append(child)
            stack.append(child)
    return out


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


class TwoNodeCluster:
    """A head and a second node, each `ray start --block` in its own process group, bound to
    127.0.0.1, with their own temp dir; `stop()` kills everything they started."""

    def __init__(self, cpus_per_node: int = 1) -> None:
        # Ray's Unix sockets live under the temp dir and must stay under ~107 bytes: pytest's
        # tmp_path is too deep for that, so a short one under the system temp dir.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rp-ray-"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Ray clusters require a token since 2.5x: one of our own, shared by the nodes and the driver.
        self.env = {
            **os.environ,
            **RAY_ENV,
            "RAY_TMPDIR": str(self.temp_dir),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
        }
        self.cpus = cpus_per_node
        self.procs: list[subprocess.Popen] = []

    def _ray(self, *args: str, block: bool = True) -> subprocess.Popen:
        ray_bin = str(Path(sys.executable).parent / "ray")
        proc = subprocess.Popen(
            [ray_bin, "start", *args, f"--num-cpus={self.cpus}", "--disable-usage-stats", "--block"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 90) -> None:
        self._ray(
            "--head",
            f"--port={self.port}",
            "--node-ip-address=127.0.0.1",
            "--include-dashboard=false",
            f"--temp-dir={self.temp_dir}",
        )
        self._wait_for(self.head_ready, timeout)
        self._ray(f"--address={self.address}", "--node-ip-address=127.0.0.1")

    def head_ready(self) -> bool:
        ray_bin = str(Path(sys.executable).parent / "ray")
        probe = subprocess.run(
            [ray_bin, "health-check", f"--address={self.address}"],
            env=self.env,
            capture_output=True,
            timeout=30,
        )
        return probe.returncode == 0

    def _wait_for(self, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError("a ray start process exited")
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError("the Ray head did not come up")

    def task_workers(self, function: str) -> dict[int, int]:
        """Ray workers (of this cluster only) now executing `function`: pid -> node index."""
        return {
            pid: node
            for node, proc in enumerate(self.procs)
            for pid in descendants([proc.pid])
            if cmdline(pid).startswith(f"ray::{function}")
        }

    def stop(self) -> None:
        """Stop what this cluster started, by pid: not `ray stop`, which kills every Ray process
        on the machine by name (another test's, a user's)."""
        started = [p.pid for p in self.procs]
        spawned = descendants(started)
        for proc in self.procs:  # `ray start --block` stops its node's daemons on SIGTERM
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
        for pid in started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for pid in spawned + descendants(started):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def run_stages(inputs: Path, out: Path, options) -> list[dict]:
    """ingest, signals, minhash, fuzzy dedup (0.8) of `inputs` into `out`; their summaries."""
    from redpajama.pipelines import ingest, minhash, signals
    from redpajama.pipelines.dedup import stage as dedup
    from redpajama.pipelines.dedup.config import FuzzyConfig

    return [
        ingest.run([str(inputs)], out, options=options).as_dict(),
        signals.run(out, options=options).as_dict(),
        minhash.run(out, options=options).as_dict(),
        dedup.run(out, FuzzyConfig(threshold=0.8, partitions=4), options=options).as_dict(),
    ]


def drive(address: str, inputs: str, out: str, nodes: int) -> None:
    """The driver of the two-node test, run in its own process: waits for the cluster's nodes,
    runs the stages on Ray against `address` and prints their summaries as one JSON line."""
    import ray

    from redpajama.runners.local import RunOptions

    ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    deadline = time.monotonic() + 60
    while sum(n["Alive"] for n in ray.nodes()) < nodes:
        if time.monotonic() > deadline:
            raise TimeoutError("the second node did not join")
        time.sleep(0.2)
    # Disconnect: each stage joins through `options.address` itself, as `--address` does.
    ray.shutdown()
    options = RunOptions(runner="ray", address=address, progress=False, retries=2)
    print(json.dumps(run_stages(Path(inputs), Path(out), options)), flush=True)
