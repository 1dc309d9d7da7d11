"""`redpajama dedup` end to end through the installed entry point."""

import json
import subprocess
import sys
from pathlib import Path

from redpajama.pipelines.dedup import synthetic


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "redpajama", *args], capture_output=True, text=True, timeout=120
    )


def test_fuzzy_and_exact_verbs(tmp_path: Path):
    synthetic.write_planted_tree(tmp_path, synthetic.PlantedSpec(docs_per_file=500, files=2, bases=50))
    result = _cli("dedup", str(tmp_path), "--threshold", "0.8", "--partitions", "2", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "duplicates to drop" in result.stdout
    summary = json.loads((tmp_path / "_runs" / "dedup" / "summary.json").read_text())["fuzzy-0.8"]
    assert summary["duplicates"] > 0
    as_json = json.loads(_cli("dedup", str(tmp_path), "--threshold", "0.8", "--format", "json").stdout)
    assert as_json["dedup"]["duplicates"] == summary["duplicates"]  # the stage's totals, not only the run's
    bad = _cli("dedup", str(tmp_path), "--keep", "oldest")
    assert bad.returncode == 2 and "keep policy" in bad.stderr
    missing = _cli("dedup", str(tmp_path), "--exact")
    assert missing.returncode != 0 and "documents" in (missing.stdout + missing.stderr)
