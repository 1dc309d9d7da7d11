"""Typed configs of the two dedup runs and RPv2's (bands, rows) per threshold."""

from __future__ import annotations

from dataclasses import dataclass

# RPv2 `optimal_param(threshold, 128)` (REFERENCE A.3.1) at its four thresholds. The dedup stage
# takes the layout from the signatures themselves, so other thresholds and num_perm work too.
BANDS_ROWS: dict[float, tuple[int, int]] = {0.7: (14, 9), 0.8: (9, 13), 0.9: (5, 25), 1.0: (1, 128)}

KEEP_MIN_ID = "min-id"
KEEP_NEWEST = "newest"
KEEP_HIGHEST = "highest:"


def signature_column(threshold: float) -> str:
    return f"signature_sim{float(threshold)}"


def check_keep(keep: str) -> str:
    if keep in (KEEP_MIN_ID, KEEP_NEWEST):
        return keep
    if keep.startswith(KEEP_HIGHEST) and len(keep) > len(KEEP_HIGHEST):
        return keep
    raise ValueError(f"unknown keep policy {keep!r}; use min-id, newest or highest:<signal>")


@dataclass(kw_only=True)
class FuzzyConfig:
    threshold: float = 0.8
    keep: str = KEEP_MIN_ID
    partitions: int | None = None  # None: from memory_gb
    memory_gb: float = 4.0  # budget for one partition's sort plus the global row arrays
    batch_rows: int = 100_000
    edge_chunk: int = 8_000_000  # edges handed to the union-find at once

    def __post_init__(self) -> None:
        if not 0 < float(self.threshold) <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        self.threshold = float(self.threshold)
        check_keep(self.keep)
        if self.partitions is not None and self.partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {self.partitions}")
        if self.memory_gb <= 0:
            raise ValueError(f"memory_gb must be > 0, got {self.memory_gb}")

    @property
    def name(self) -> str:
        return f"fuzzy-{self.threshold}"


@dataclass(kw_only=True)
class ExactConfig:
    capacity: int | None = None  # None: the number of documents in the tree
    error_rate: float = 0.01  # RPv2's default (REFERENCE A.3.3)
    key: str = "digest"  # digest (RPv2: the WET digest without `sha1:`) or text (hash of raw_content)
    buckets: tuple[str, ...] | None = None  # e.g. ("head", "middle") as RPv2; None: every file
    seed: int = 42  # file order within a snapshot, as RPv2's random.seed(42)
    batch_rows: int = 100_000

    def __post_init__(self) -> None:
        if self.key not in ("digest", "text"):
            raise ValueError(f"key must be digest or text, got {self.key!r}")
        if not 0 < self.error_rate < 1:
            raise ValueError(f"error_rate must be in (0, 1), got {self.error_rate}")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {self.capacity}")

    @property
    def name(self) -> str:
        return "exact"
