"""fastText quality-classifier signals (RPv2 `classifiers.py`; REFERENCE A.1.6).

rps_doc_ml_palm_score, rps_doc_ml_wikipedia_score, rps_doc_ml_wikiref_score: the probability of
the high-quality class, `round(score, 8)`. The models come from the artifact bundle
(`classifiers/<lang>/<name>.model.bin`) and are loaded once per process.

As RPv2: null when the document is empty (raw_content == "") or there is no model for its
language. palm and wikiref exist for English only and wikipedia for the other languages; we
enforce that split even if a bundle holds other files, so the columns mean what RPv2's mean.
"""

from __future__ import annotations

from functools import cache, partial
from pathlib import Path
from typing import Any

from redpajama.artifacts.bundle import Bundle
from redpajama.quality_signals.resources import Resources, canonical_language
from redpajama.quality_signals.view import DocView

PRECISION = 8
CCNET_LABEL = "__label__cc"  # the negative (unfiltered CommonCrawl) class of every model
ENGLISH_ONLY = frozenset({"palm", "wikiref"})


@cache
def load_model(path: str) -> Any:
    """A fastText model, loaded once per process (workers share nothing, so each loads its own)."""
    import fasttext

    # fastText warns on stderr that load_model returns a plain model; it always does here
    fasttext.FastText.eprint = lambda *args, **kwargs: None
    return fasttext.load_model(path)


def classifier_input(raw_content: str) -> str:
    """The text the models see: lines joined by spaces (fastText predicts one line), stripped."""
    return " ".join(raw_content.splitlines()).strip()


def model_for(res: Resources, language: str | None, name: str) -> Any | None:
    if res.bundle is None:
        return None
    return _bundle_model(res.bundle, canonical_language(language), name)


@cache
def _bundle_model(bundle: Bundle, lang: str, name: str) -> Any | None:
    # cached per language: spares the per-document file lookups
    if (name in ENGLISH_ONLY) != (lang == "en"):
        return None
    path: Path | None = bundle.classifier(lang, name)
    return None if path is None else load_model(str(path))


def score_prediction(label: str, prob: float) -> float:
    """P(high quality): the models are binary, so 1 - p when the top label is CCNet's."""
    score = 1.0 - prob if label == CCNET_LABEL else prob
    return round(score, PRECISION)


def ml_score(view: DocView, res: Resources, *, name: str) -> float | None:
    if not view.raw_content:
        return None
    model = model_for(res, view.language, name)
    if model is None:
        return None
    labels, probs = model.predict(classifier_input(view.raw_content))
    if len(labels) == 0:  # fastText gives no label for a text with no tokens
        return None
    return score_prediction(labels[0], float(probs[0]))


# RPv2's class order (inspect.getmembers sorts by class name): Palm, Wikipedia, Wikiref.
SIGNALS = (
    (
        "rps_doc_ml_palm_score",
        partial(ml_score, name="palm"),
        "fastText P(Wikipedia/OpenWebText/books-like) vs CCNet (English only).",
    ),
    (
        "rps_doc_ml_wikipedia_score",
        partial(ml_score, name="wikipedia"),
        "fastText P(Wikipedia-like) vs CCNet (non-English only).",
    ),
    (
        "rps_doc_ml_wikiref_score",
        partial(ml_score, name="wikiref"),
        "fastText P(page cited by Wikipedia) vs CCNet, RPv1's classifier (English only).",
    ),
)
