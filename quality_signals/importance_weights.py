"""DSIR importance-weight signals (RPv2 `importance_weights.py`; REFERENCE A.1.6, A.5).

rps_doc_{books,openwebtext,wikipedia}_importance and their `_length_correction` variants: the
log-likelihood ratio of the document's hashed uni+bigram counts under a target bag-of-ngrams
model p (Wikipedia, books, OpenWebText) against the source model q (CCNet),
`<counts, log(p + 1e-8) - log(q + 1e-8)>`, rounded to 8 decimals.

The length correction adds `log(Poisson(L; lt) + 1e-8) - log(Poisson(L; ls) + 1e-8)` with the
datasets' mean raw-word counts lt, ls but L = len(raw_content) in characters: RPv2's unit
mismatch, reproduced (REFERENCE A.1.9 #6). For real documents both pmfs underflow and the
correction is 0; near the lambdas it is computed with scipy's pmf and numpy's log, as RPv2 does.

Counts and lambdas come from the bundle (`dsir/<lang>/...`), hashed with the mode its manifest
records (`Resources.dsir_hash`). Null for an empty document or a missing model; books and
OpenWebText exist for English only (enforced, as classifiers.py does for its models).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache, partial

import numpy as np

from redpajama.artifacts.bundle import Bundle
from redpajama.quality_signals.dsir_features import DSIR_FEATURE_DIM
from redpajama.quality_signals.resources import Resources, canonical_language
from redpajama.quality_signals.view import DocView

PRECISION = 8
EPS = 1e-8
SOURCE = "ccnet"
ENGLISH_ONLY = frozenset({"books", "openwebtext"})


@dataclass(frozen=True)
class DsirModel:
    log_ratio: np.ndarray  # log(p + 1e-8) - log(q + 1e-8), one weight per bucket
    target_lambda: float
    source_lambda: float

    @property
    def dim(self) -> int:
        return int(self.log_ratio.shape[0])

    @classmethod
    def from_counts(
        cls, target: np.ndarray, source: np.ndarray, target_lambda: float, source_lambda: float
    ) -> DsirModel:
        p = target / target.sum()
        q = source / source.sum()
        return cls(np.log(p + EPS) - np.log(q + EPS), float(target_lambda), float(source_lambda))


@cache
def load_model(target_counts: str, target_lambda: str, source_counts: str, source_lambda: str) -> DsirModel:
    """Once per process: the 10k-vector model is shared by every document of the language."""
    target, source = np.load(target_counts), np.load(source_counts)
    if target.shape != source.shape:
        raise ValueError(
            f"DSIR counts differ in shape: {target_counts} {target.shape}, {source_counts} {source.shape}"
        )
    return DsirModel.from_counts(target, source, np.load(target_lambda), np.load(source_lambda))


def model_for(res: Resources, language: str | None, dataset: str) -> DsirModel | None:
    if res.bundle is None:
        return None
    return _bundle_model(res.bundle, canonical_language(language), dataset)


@cache
def _bundle_model(bundle: Bundle, lang: str, dataset: str) -> DsirModel | None:
    # cached per language: the file lookups would otherwise cost ~10 stat calls per document
    if dataset in ENGLISH_ONLY and lang != "en":
        return None
    target = bundle.dsir(lang, dataset, DSIR_FEATURE_DIM)
    source = bundle.dsir(lang, SOURCE, DSIR_FEATURE_DIM)
    if target is None or source is None:
        return None
    return load_model(str(target[0]), str(target[1]), str(source[0]), str(source[1]))


def poisson_log_pmf(k: int, lam: float) -> float:
    """log Poisson(k; lam) via lgamma: lam**k / k! overflows for document lengths."""
    if lam <= 0.0:
        return 0.0 if k == 0 and lam == 0.0 else -math.inf
    return k * math.log(lam) - lam - math.lgamma(k + 1)


# A pmf below this vanishes next to RPv2's +1e-8 (half an ulp of 1e-8 is 8.3e-25): log(pmf + 1e-8)
# is then log(1e-8) exactly, whatever the pmf's last bits.
_NEGLIGIBLE_LOG_PMF = math.log(1e-25)


def length_correction(length: int, target_lambda: float, source_lambda: float) -> float:
    """log(Poisson(L; lt) + 1e-8) - log(Poisson(L; ls) + 1e-8), computed as RPv2 does (scipy's pmf,
    numpy's log), so the rounded score matches to the last decimal. Where both pmfs are negligible
    (every length far from both lambdas: nearly all documents) it is exactly 0 without scipy."""
    largest = max(poisson_log_pmf(length, target_lambda), poisson_log_pmf(length, source_lambda))
    if largest < _NEGLIGIBLE_LOG_PMF:
        return 0.0
    return _rpv2_length_correction(length, float(target_lambda), float(source_lambda))


@lru_cache(maxsize=1 << 16)
def _rpv2_length_correction(length: int, target_lambda: float, source_lambda: float) -> float:
    from scipy import stats

    target = stats.poisson.pmf(length, target_lambda)
    source = stats.poisson.pmf(length, source_lambda)
    return float(np.log(target + EPS) - np.log(source + EPS))


def importance_score(counts: np.ndarray, model: DsirModel, length: int, corrected: bool) -> float:
    score = float(np.inner(counts, model.log_ratio))
    if corrected:
        score += length_correction(length, model.target_lambda, model.source_lambda)
    return round(score, PRECISION)


def importance(view: DocView, res: Resources, *, dataset: str, corrected: bool) -> float | None:
    if view.length == 0:
        return None
    model = model_for(res, view.language, dataset)
    if model is None:
        return None
    return importance_score(view.dsir_counts(model.dim, res.dsir_hash), model, view.length, corrected)


_NAMES = {"books": "books", "openwebtext": "OpenWebText", "wikipedia": "Wikipedia"}


def _specs():
    # RPv2's class order (sorted class names): Books, OpenWebText, Wikipedia; plain, then corrected
    for dataset, label in _NAMES.items():
        where = " (English only)" if dataset in ENGLISH_ONLY else ""
        yield (
            f"rps_doc_{dataset}_importance",
            partial(importance, dataset=dataset, corrected=False),
            f"DSIR log-likelihood ratio of hashed uni+bigrams, {label} vs CCNet{where}.",
        )
        yield (
            f"rps_doc_{dataset}_importance_length_correction",
            partial(importance, dataset=dataset, corrected=True),
            f"rps_doc_{dataset}_importance plus RPv2's Poisson length term (chars vs mean words){where}.",
        )


SIGNALS = tuple(_specs())
