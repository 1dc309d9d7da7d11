"""CCNet signals (RPv2 `worker.py`; REFERENCE A.1.1): the document's own CCNet fields, as floats.

ccnet_length, ccnet_original_length, ccnet_nlines, ccnet_original_nlines, ccnet_language_score,
ccnet_perplexity, ccnet_bucket. They come from `DocView.fields` (the documents file's columns),
not from the text: a document that never went through the ccnet stage has null fields, and so
null signals (RPv2 always had them, so it never produced a null here except for the bucket).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from redpajama.quality_signals.resources import Resources
from redpajama.quality_signals.view import DocView

#: documents column -> signal name; also the columns the signals stage reads when present.
FIELDS = {
    "length": "ccnet_length",
    "original_length": "ccnet_original_length",
    "nlines": "ccnet_nlines",
    "original_nlines": "ccnet_original_nlines",
    "language_score": "ccnet_language_score",
    "perplexity": "ccnet_perplexity",
    "bucket": "ccnet_bucket",
}
BUCKET_IDS = {"head": 0.0, "middle": 1.0, "tail": 2.0}


def field_value(view: DocView, res: Resources | None = None, *, field: str) -> float | None:
    value: Any = view.fields.get(field)
    return None if value is None else float(value)


def bucket(view: DocView, res: Resources | None = None) -> float | None:
    """head 0.0, middle 1.0, tail 2.0; anything else (our "all", None) null, as RPv2."""
    return BUCKET_IDS.get(view.fields.get("bucket"))


_DESCRIPTIONS = {
    "length": "CCNet length: characters of raw_content after CCNet's line dedup.",
    "original_length": "CCNet original_length: characters before CCNet's line dedup.",
    "nlines": "CCNet nlines: number of lines after CCNet's line dedup.",
    "original_nlines": "CCNet original_nlines: number of lines before CCNet's line dedup.",
    "language_score": "CCNet language_score: fastText lid.176 probability of the language.",
    "perplexity": "CCNet perplexity under the language's Wikipedia KenLM model.",
}

SIGNALS = (
    *((FIELDS[f], partial(field_value, field=f), d) for f, d in _DESCRIPTIONS.items()),
    ("ccnet_bucket", bucket, "CCNet perplexity bucket: head 0.0, middle 1.0, tail 2.0, else null."),
)
