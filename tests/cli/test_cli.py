"""The command line: help with examples, one-line errors, tracebacks only when asked."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "redpajama", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def test_every_command_has_an_example_in_its_help():
    top = _cli("--help")
    assert top.returncode == 0
    for command in ("ingest", "signals", "export"):
        assert command in top.stdout
        sub = _cli(command, "--help")
        assert sub.returncode == 0
        assert "Example" in sub.stdout, command


def test_missing_input_is_one_line_with_a_hint(tmp_path: Path):
    result = _cli("ingest", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Error: ") and "nope.jsonl" in lines[0]
    assert lines[1].startswith("Hint: ")
    assert "Traceback" not in result.stderr


def test_debug_env_shows_the_traceback(tmp_path: Path):
    result = _cli(
        "ingest", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "out"), env={"REDPAJAMA_DEBUG": "1"}
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_usage_error_exit_code():
    result = _cli("ingest")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_ingest_json_summary_and_error_rate_gate(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a"}\n{broken\n{"text": "b"}\n')
    ok = _cli("ingest", str(src), "-o", str(tmp_path / "o1"), "--format", "json", "--max-error-rate", "0.5")
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert summary["docs_out"] == 2 and summary["errors"] == {"json": 1}
    strict = _cli("ingest", str(src), "-o", str(tmp_path / "o2"), "--max-error-rate", "0.1")
    assert strict.returncode == 1
    assert "error rate" in strict.stderr
    assert (tmp_path / "o2" / "documents").exists()  # the good records are kept all the same
