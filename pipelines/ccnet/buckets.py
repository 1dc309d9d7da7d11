"""CCNet's `PerplexityBucket`: head if pp < p30, middle if pp < p60, else tail.

A language without cutoffs, or a document without a perplexity, gets "all" (CCNet's value, also
our `schema.UNKNOWN_BUCKET`), so its file is `<lang>_all.parquet`.
"""

from __future__ import annotations

from collections.abc import Mapping

from redpajama.schema import UNKNOWN_BUCKET

HEAD, MIDDLE, TAIL = "head", "middle", "tail"


def bucket_of(perplexity: float | None, language: str, cutoffs: Mapping[str, tuple[float, float]]) -> str:
    if perplexity is None or perplexity < 0 or language not in cutoffs:
        return UNKNOWN_BUCKET
    p30, p60 = cutoffs[language]
    if perplexity < p30:
        return HEAD
    if perplexity < p60:
        return MIDDLE
    return TAIL
