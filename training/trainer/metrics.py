"""metrics.jsonl: one JSON object per logged step, appended and flushed as training goes.

On resume the records after the checkpoint's step are dropped (they belong to the lost tail of the
crashed run), so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
from pathlib import Path

from redpajama.io.atomic import write_bytes


class MetricsLog:
    def __init__(self, path: Path, resume_step: int | None = None, enabled: bool = True) -> None:
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            write_bytes(path, b"")
        elif path.exists():
            kept = [
                line
                for line in path.read_text().splitlines()
                if json.loads(line).get("step", 0) <= resume_step
            ]
            write_bytes(path, "".join(line + "\n" for line in kept).encode())
        self._handle = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        if self.enabled:
            self._handle.write(json.dumps(record, sort_keys=True) + "\n")
            self._handle.flush()

    def close(self) -> None:
        if self.enabled:
            self._handle.close()


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
