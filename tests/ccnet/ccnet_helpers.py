import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
LID = SHARED / "lid-fasttext-lid176-ftz" / "lid.176.ftz"


def cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "redpajama", *args], capture_output=True, text=True, env={**os.environ}
    )
    assert result.returncode == 0, result.stderr
    return result


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for i, text in enumerate(texts):
            handle.write(json.dumps({"text": text, "url": f"http://example.com/{path.stem}/{i}"}) + "\n")
    return path


def rows(root: Path) -> dict[str, dict]:
    """Every document of the tree by id."""
    out = {}
    for path in sorted((root / "documents").rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            row["_file"] = path.relative_to(root).as_posix()
            out[row["id"]] = row
    return out
