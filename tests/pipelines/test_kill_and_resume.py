"""SIGKILL a multi-process ingest run mid-way, rerun it: output identical to an uninterrupted run."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "lm-tinyshakespeare"


def _make_inputs(folder: Path, files: int, docs: int) -> None:
    source = next(SHAKESPEARE.glob("*.txt"), None) if SHAKESPEARE.exists() else None
    lines = source.read_text().splitlines() if source else [f"line {i} of filler text" for i in range(5000)]
    folder.mkdir()
    for f in range(files):
        with open(folder / f"part-{f:02d}.jsonl", "w") as handle:
            for d in range(docs):
                start = (f * docs + d) * 7 % (len(lines) - 40)
                handle.write(json.dumps({"text": "\n".join(lines[start : start + 40]), "n": d}) + "\n")


def _ingest(cwd: Path, out: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "redpajama", "ingest", "inputs", "-o", out, "--workers", "2", "--no-progress"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so the kill takes the worker processes too
        **popen,
    )


def _finished(tasks_dir: Path) -> int:
    # Task markers only: a hidden temp file is a marker the kill interrupted, not a finished task.
    return (
        len([p for p in tasks_dir.glob("*.json") if not p.name.startswith(".")]) if tasks_dir.exists() else 0
    )


def _tree_digest(out: Path) -> dict[str, str]:
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((out / "documents").rglob("*.parquet"))
    }


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_gives_identical_output(tmp_path: Path):
    files = 8
    for docs in (1500, 6000):
        inputs = tmp_path / "inputs"
        if inputs.exists():
            for p in inputs.iterdir():
                p.unlink()
            inputs.rmdir()
        _make_inputs(inputs, files, docs)
        reference = _ingest(tmp_path, "reference")
        assert reference.wait(timeout=600) == 0, reference.stderr.read().decode()

        victim = _ingest(tmp_path, f"killed-{docs}")
        tasks_dir = tmp_path / f"killed-{docs}" / "_runs" / "ingest" / "tasks"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and victim.poll() is None:
            if _finished(tasks_dir):
                break
            time.sleep(0.005)
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait()
        done_at_kill = _finished(tasks_dir)
        if done_at_kill < files:
            break
        (tmp_path / "reference").rename(tmp_path / f"reference-too-fast-{docs}")
    else:
        pytest.fail("the run finished before it could be killed, even with the larger input")

    assert 0 < done_at_kill < files
    killed = tmp_path / f"killed-{docs}"
    rerun = _ingest(tmp_path, killed.name)
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read().decode()
    stats = json.loads((killed / "_runs" / "ingest" / "stats.json").read_text())
    assert stats["tasks_skipped"] >= done_at_kill and stats["tasks_run"] == files - stats["tasks_skipped"]

    assert _tree_digest(killed) == _tree_digest(tmp_path / "reference")
    assert not [p for p in killed.rglob(".*.tmp-*")], "temp files left behind"
    ids = [
        i
        for p in (killed / "documents").rglob("*.parquet")
        for i in pq.read_table(p, columns=["id"]).column("id").to_pylist()
    ]
    assert len(ids) == len(set(ids)) == files * docs
