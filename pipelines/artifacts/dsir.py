"""DSIR hash distributions as RPv2's `hash_dist.py` builds them (REFERENCE A.5).

counts = sum over <= N documents of the hashed unigram + bigram count vectors of their raw words;
lambda = mean raw-word count per document. Features come from the ML-signals module so the bundle
and the signal that reads it can never disagree on hashing.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from redpajama.io.atomic import write_bytes
from redpajama.pipelines.artifacts.config import BuildConfig, SourceConfig
from redpajama.pipelines.artifacts.corpus import iter_documents
from redpajama.quality_signals.text import word_punct_tokenize


@dataclass(frozen=True)
class DsirStats:
    counts: np.ndarray  # float64, shape (dim,)
    lam: float
    docs: int


def _hashed_counts():
    from redpajama.quality_signals.dsir_features import hashed_counts

    return hashed_counts


def compute(source: SourceConfig, config: BuildConfig) -> DsirStats:
    hashed_counts = _hashed_counts()
    counts = np.zeros(config.dsir_dim, dtype=np.float64)
    words = 0
    docs = 0
    for doc in itertools.islice(iter_documents(source, config), config.dsir_num_samples):
        raw_words = word_punct_tokenize(doc)
        counts += hashed_counts(raw_words, dim=config.dsir_dim, mode=config.dsir_hash)
        words += len(raw_words)
        docs += 1
    return DsirStats(counts=counts, lam=words / docs if docs else 0.0, docs=docs)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def save(stats: DsirStats, directory: Path, dataset: str, lang: str, dim: int) -> tuple[Path, Path]:
    """Write `<dataset>.<lang>.<dim>.counts.npy` and `<dataset>.<lang>.lambda.npy` atomically."""
    counts_path = directory / f"{dataset}.{lang}.{dim}.counts.npy"
    lambda_path = directory / f"{dataset}.{lang}.lambda.npy"
    write_bytes(counts_path, npy_bytes(stats.counts))
    write_bytes(lambda_path, npy_bytes(np.array(stats.lam, dtype=np.float64)))
    return counts_path, lambda_path
