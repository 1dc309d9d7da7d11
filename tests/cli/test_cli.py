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
    for command in ("ingest", "signals", "export", "artifacts ut1"):
        assert command.split()[0] in top.stdout
        sub = _cli(*command.split(), "--help")
        assert sub.returncode == 0
        assert "Example" in sub.stdout, command


def test_missing_input_is_one_line_with_a_hint(tmp_path: Path):
    result = _cli("ingest", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("Error: ") and "nope.jsonl" in lines[0]
    assert lines[1].startswith("Hint: ")
    assert "Traceback" not in result.stderr


def test_stage_before_its_prerequisite_says_what_to_run(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    for command in ("signals", "minhash"):
        result = _cli(command, str(tmp_path / "empty"))
        assert result.returncode == 2, command
        first = result.stderr.strip().splitlines()[0]
        assert "None" not in first and "redpajama ingest" in first, first


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
    negative = _cli("minhash", ".", "--workers", "-3")
    assert negative.returncode == 2 and "--workers" in negative.stderr and "Traceback" not in negative.stderr


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


def test_ut1_map_built_by_artifacts_feeds_the_signal(tmp_path: Path):
    import io
    import tarfile

    import pyarrow.parquet as pq

    tarball = tmp_path / "blacklists.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for category, domains in {
            "adult": ["911blogger.com"],
            "gambling": ["911blogger.com", "x.org"],
        }.items():
            data = ("\n".join(domains) + "\n").encode()
            info = tarfile.TarInfo(f"blacklists/{category}/domains")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    built = _cli("artifacts", "ut1", str(tarball), "-o", str(tmp_path / "ut1.parquet"))
    assert built.returncode == 0, built.stderr
    source = ROOT / "data" / "samples" / "inputs" / "jsonl" / "cc_en_head-0091.jsonl.gz"
    assert _cli("ingest", str(source), "-o", str(tmp_path / "out")).returncode == 0
    result = _cli(
        "signals",
        str(tmp_path / "out"),
        "--ut1-map",
        str(tmp_path / "ut1.parquet"),
        "-s",
        "rps_doc_ut1_blacklist",
    )
    assert result.returncode == 0, result.stderr
    (signals_file,) = (tmp_path / "out" / "quality_signals").rglob("*.parquet")
    (documents_file,) = (tmp_path / "out" / "documents").rglob("*.parquet")
    domains = pq.read_table(documents_file, columns=["source_domain"]).column(0).to_pylist()
    values = pq.read_table(signals_file).column("rps_doc_ut1_blacklist").to_pylist()
    # {adult, gambling} is id 20 among RPv2's 13 sorted categories; unlisted domains are null.
    assert {d: v for d, v in zip(domains, values, strict=True)} == {
        d: (20 if d == "911blogger.com" else None) for d in domains
    }
