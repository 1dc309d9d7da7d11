"""The CCNet transform of one record batch: dedup -> lid -> keep_lang -> sp/lm -> bucket.

A pure function of the batch, the group's duplicate keys and the loaded models; it returns the
kept rows (input order, DOCUMENT_SCHEMA) and why the others were dropped. The stage routes the
rows to `<lang>_<bucket>.parquet`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from redpajama import schema
from redpajama.pipelines.ccnet.buckets import bucket_of
from redpajama.pipelines.ccnet.language_id import LanguageIdentifier
from redpajama.pipelines.ccnet.line_dedup import dedup_doc, is_duplicate, line_keys
from redpajama.pipelines.ccnet.perplexity import LanguageModel

# Why a document left the stage (counted per shard in its marker).
DROP_EMPTY = "empty"  # no text at all
DROP_SHORT = "too_short"  # shorter than min_length before dedup (CCNet's min_len)
DROP_DEDUP = "empty_after_dedup"  # every line was a duplicate
DROP_LANG_SCORE = "below_lang_threshold"
DROP_LANG = "language_not_kept"


@dataclass(kw_only=True)
class TransformOptions:
    lang_threshold: float = 0.5
    min_length: int = 0
    keep_languages: frozenset[str] | None = None  # None: every language
    per_line_perplexity: bool = False


@dataclass
class Models:
    lid: LanguageIdentifier
    language_model: Callable[[str], LanguageModel | None]  # lang -> models, or None
    cutoffs: Mapping[str, tuple[float, float]]


@dataclass
class TransformResult:
    batch: pa.RecordBatch
    drops: Counter[str] = field(default_factory=Counter)


def hashable_text(text: str | None, min_length: int) -> bool:
    """Whether a document takes part in dedup at all (CCNet skips empty and short ones)."""
    return bool(text) and len(text) >= min_length


def transform(
    batch: pa.RecordBatch, duplicates: np.ndarray, models: Models, options: TransformOptions
) -> TransformResult:
    drops: Counter[str] = Counter()
    texts: list[str | None] = batch.column("raw_content").to_pylist()
    nlines_in = batch.column("nlines").to_pylist()
    length_in = batch.column("length").to_pylist()
    orig_nlines_in = batch.column("original_nlines").to_pylist()
    orig_length_in = batch.column("original_length").to_pylist()
    line_ids_in = batch.column("line_ids").to_pylist()

    # dedup: every line of the batch hashed and looked up in one go
    rows: list[int] = []
    split: list[list[str]] = []
    for i, text in enumerate(texts):
        if not text:
            drops[DROP_EMPTY] += 1
        elif len(text) < options.min_length:
            drops[DROP_SHORT] += 1
        else:
            rows.append(i)
            split.append(text.split("\n"))
    counts = np.fromiter((len(lines) for lines in split), np.int64, len(split))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    keys = line_keys([line for lines in split for line in lines])
    duplicate = is_duplicate(keys, duplicates)

    kept: list[int] = []
    new_text: list[str] = []
    new_ids: list[list[int]] = []
    for j, i in enumerate(rows):
        a, b = offsets[j], offsets[j + 1]
        doc = dedup_doc(texts[i], split[j], keys[a:b], duplicate[a:b], line_ids_in[i])
        if doc is None or not doc.text:
            drops[DROP_DEDUP] += 1
            continue
        kept.append(i)
        new_text.append(doc.text)
        new_ids.append(doc.line_ids)

    # language id, one fastText call for the batch
    predictions = models.lid.predict(new_text)
    sel: list[int] = []
    for j, pred in enumerate(predictions):
        if pred.score < options.lang_threshold:
            drops[DROP_LANG_SCORE] += 1
        elif options.keep_languages is not None and pred.language not in options.keep_languages:
            drops[DROP_LANG] += 1
        else:
            sel.append(j)

    # perplexity per language with that language's models
    perplexity: list[float | None] = [None] * len(sel)
    by_lang: dict[str, list[int]] = {}
    for k, j in enumerate(sel):
        by_lang.setdefault(predictions[j].language, []).append(k)
    for lang, ks in by_lang.items():
        model = models.language_model(lang)
        if model is None:
            continue
        values = model.perplexities([new_text[sel[k]] for k in ks], per_line=options.per_line_perplexity)
        for k, value in zip(ks, values, strict=True):
            perplexity[k] = value

    take = [kept[j] for j in sel]
    out = batch.take(pa.array(take, pa.int64())) if take else batch.slice(0, 0)
    final_text = [new_text[j] for j in sel]
    languages = [predictions[j].language for j in sel]
    replaced = {
        "raw_content": final_text,
        "length": [len(t) for t in final_text],
        "nlines": [len(new_ids[j]) for j in sel],
        "original_nlines": [_first(orig_nlines_in[i], nlines_in[i], texts[i].count("\n") + 1) for i in take],
        "original_length": [_first(orig_length_in[i], length_in[i], len(texts[i])) for i in take],
        "line_ids": [new_ids[j] for j in sel],
        "language": languages,
        "language_score": [predictions[j].score for j in sel],
        "perplexity": perplexity,
        "bucket": [bucket_of(p, lang, models.cutoffs) for p, lang in zip(perplexity, languages, strict=True)],
    }
    columns = [
        pa.array(replaced[f.name], f.type) if f.name in replaced else out.column(f.name)
        for f in schema.DOCUMENT_SCHEMA
    ]
    return TransformResult(pa.RecordBatch.from_arrays(columns, schema=schema.DOCUMENT_SCHEMA), drops)


def _first(*values: int | None) -> int:
    # CCNet keeps an existing original_* and otherwise takes the document's own length/nlines.
    return next(v for v in values if v is not None)
