"""Per-task statistics, merged per run (docs in/out, bytes, errors by kind, seconds per phase)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    docs_in: int = 0  # records read, good or bad
    docs_out: int = 0  # rows written
    bytes_in: int = 0  # input bytes as stored (compressed size)
    bytes_out: int = 0  # output bytes written
    errors: Counter[str] = field(default_factory=Counter)  # bad records by kind
    seconds: Counter[str] = field(default_factory=Counter)  # wall seconds by phase

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start

    def merge(self, other: Stats) -> None:
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.errors.update(other.errors)
        self.seconds.update(other.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "errors": dict(sorted(self.errors.items())),
            "error_count": self.error_count,
            "phase_seconds": {k: round(v, 4) for k, v in sorted(self.seconds.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        return cls(
            docs_in=data.get("docs_in", 0),
            docs_out=data.get("docs_out", 0),
            bytes_in=data.get("bytes_in", 0),
            bytes_out=data.get("bytes_out", 0),
            errors=Counter(data.get("errors", {})),
            seconds=Counter(data.get("phase_seconds", {})),
        )
