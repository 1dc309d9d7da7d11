"""RPv2's quality signals as data: name -> `Signal`, in RPv2's schema order (REFERENCE A.1.8).

    from redpajama.quality_signals.registry import SIGNALS, compute
    from redpajama.quality_signals.view import DocView
    from redpajama.quality_signals.resources import Resources

    values = compute(DocView(text, language="en", source_domain="example.com"), Resources.load())

`compute` returns {name: value}: document-level values are int/float/None, line-level values are
lists of (start, end, score). `Signal.dtype` is the Arrow type of the signal's storage column
(`arrow_schema()` builds the whole schema).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import pyarrow as pa

from redpajama.quality_signals import (
    ccnet,
    classifiers,
    content,
    importance_weights,
    lines,
    natural_language,
    repetitions,
)
from redpajama.quality_signals.resources import Resources, default_resources
from redpajama.quality_signals.view import DocView

__all__ = [
    "Signal",
    "SIGNALS",
    "LINE_SPANS_TYPE",
    "RPV2_RECORD_ORDER",
    "RPV2_SCHEMA_ORDER",
    "HEURISTIC_SIGNALS",
    "CCNET_SIGNALS",
    "ML_SIGNALS",
    "register",
    "compute",
    "arrow_schema",
]

Level = Literal["document", "line"]

# One span per line: offsets into raw_content (end exclusive) and the line's score.
LINE_SPAN_TYPE = pa.struct([("start", pa.int32()), ("end", pa.int32()), ("score", pa.float64())])
LINE_SPANS_TYPE = pa.list_(LINE_SPAN_TYPE)


@dataclass(frozen=True)
class Signal:
    """One quality signal: `func(view, resources)` -> number/None (document) or spans (line)."""

    name: str
    level: Level
    dtype: pa.DataType
    func: Callable[[DocView, Resources], Any]
    description: str
    family: str
    int_scores: bool = False  # RPv2 writes integer scores (JSON `2`, not `2.0`)


SIGNALS: dict[str, Signal] = {}


def register(
    name: str,
    func: Callable[[DocView, Resources], Any],
    *,
    level: Level = "document",
    dtype: pa.DataType | None = None,
    description: str = "",
    family: str = "custom",
    int_scores: bool | None = None,
    replace: bool = False,
) -> Signal:
    """Add a signal to SIGNALS (at the end). dtype defaults to float64 / line spans."""
    if name in SIGNALS and not replace:
        raise ValueError(f"signal {name!r} is already registered")
    if level not in ("document", "line"):
        raise ValueError(f"level must be 'document' or 'line', got {level!r}")
    if dtype is None:
        dtype = LINE_SPANS_TYPE if level == "line" else pa.float64()
    if int_scores is None:
        int_scores = pa.types.is_integer(dtype)
    sig = Signal(
        name=name,
        level=level,
        dtype=dtype,
        func=func,
        description=description,
        family=family,
        int_scores=int_scores,
    )
    SIGNALS[name] = sig
    return sig


# RPv2's QUALITY_SIGNALS_SCHEMA order: the ccnet_* fields, then modules content,
# natural_language, repetitions, lines, classifiers, importance_weights; inside a module, class
# names sorted (inspect.getmembers).
CCNET_SIGNALS = tuple(name for name, _, _ in ccnet.SIGNALS)
# The 29 heuristic rps_* signals: pure functions of the text and the word lists.
HEURISTIC_SIGNALS = (
    "rps_doc_curly_bracket",
    "rps_doc_ldnoobw_words",
    "rps_doc_lorem_ipsum",
    "rps_doc_stop_word_fraction",
    "rps_doc_ut1_blacklist",
    "rps_doc_frac_all_caps_words",
    "rps_doc_frac_lines_end_with_ellipsis",
    "rps_doc_frac_no_alph_words",
    "rps_doc_frac_unique_words",
    "rps_doc_mean_word_length",
    "rps_doc_num_sentences",
    "rps_doc_symbol_to_word_ratio",
    "rps_doc_unigram_entropy",
    "rps_doc_word_count",
    "rps_doc_frac_chars_dupe_10grams",
    "rps_doc_frac_chars_dupe_5grams",
    "rps_doc_frac_chars_dupe_6grams",
    "rps_doc_frac_chars_dupe_7grams",
    "rps_doc_frac_chars_dupe_8grams",
    "rps_doc_frac_chars_dupe_9grams",
    "rps_doc_frac_chars_top_2gram",
    "rps_doc_frac_chars_top_3gram",
    "rps_doc_frac_chars_top_4gram",
    "rps_lines_ending_with_terminal_punctution_mark",
    "rps_lines_javascript_counts",
    "rps_lines_num_words",
    "rps_lines_numerical_chars_fraction",
    "rps_lines_start_with_bulletpoint",
    "rps_lines_uppercase_letter_fraction",
)
ML_SIGNALS = tuple(name for module in (classifiers, importance_weights) for name, _, _ in module.SIGNALS)
RPV2_SCHEMA_ORDER = (*CCNET_SIGNALS, *HEURISTIC_SIGNALS, *ML_SIGNALS)
# The order RPv2's files hold a record's signals in, which is not the schema's: its worker builds
# the dict `{**ccnet, **rp_v2_signals}` with the modules registered content, repetitions,
# natural_language, lines, classifiers, importance_weights, and msgspec writes dicts in insertion
# order. Same order inside a module.
_RECORD_FAMILIES = (
    "ccnet", "content", "repetitions", "natural_language", "lines", "classifiers", "importance_weights"
)  # fmt: skip

_DOC_DTYPES = {"rps_doc_word_count": pa.int64(), "rps_doc_ut1_blacklist": pa.int32()}
# Signals whose RPv2 scores are Python ints (line scores are stored as doubles, exported as ints).
_INT_SCORES = frozenset({"rps_doc_word_count", "rps_doc_ut1_blacklist", "rps_lines_num_words"})


def _builtin_specs() -> Iterable[tuple[str, Callable, str, str, Level]]:
    for family, module, level in (
        ("ccnet", ccnet, "document"),
        ("content", content, "document"),
        ("natural_language", natural_language, "document"),
        ("lines", lines, "line"),
        ("classifiers", classifiers, "document"),
        ("importance_weights", importance_weights, "document"),
    ):
        for name, func, description in module.SIGNALS:
            yield name, func, description, family, level
    for n in repetitions.TOP_NGRAM_SIZES:
        yield (
            f"rps_doc_frac_chars_top_{n}gram",
            partial(repetitions.doc_frac_chars_top_ngram, n=n),
            f"Fraction of word characters in the most frequent word {n}-gram.",
            "repetitions",
            "document",
        )
    for n in repetitions.DUPE_NGRAM_SIZES:
        yield (
            f"rps_doc_frac_chars_dupe_{n}grams",
            partial(repetitions.doc_frac_chars_dupe_ngrams, n=n),
            f"Fraction of word characters in duplicated word {n}-grams.",
            "repetitions",
            "document",
        )


def _register_builtins() -> None:
    specs = {name: rest for name, *rest in _builtin_specs()}
    assert set(specs) == set(RPV2_SCHEMA_ORDER), set(specs) ^ set(RPV2_SCHEMA_ORDER)
    for name in RPV2_SCHEMA_ORDER:
        func, description, family, level = specs[name]
        dtype = LINE_SPANS_TYPE if level == "line" else _DOC_DTYPES.get(name, pa.float64())
        register(
            name,
            func,
            level=level,
            dtype=dtype,
            description=description,
            family=family,
            int_scores=name in _INT_SCORES,
        )


_register_builtins()
RPV2_RECORD_ORDER = tuple(
    sorted(RPV2_SCHEMA_ORDER, key=lambda name: _RECORD_FAMILIES.index(SIGNALS[name].family))
)


def compute(
    view: DocView,
    resources: Resources | None = None,
    names: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Compute the named signals (default: all registered) for one document."""
    res = resources if resources is not None else default_resources()
    if names is None:
        return {name: sig.func(view, res) for name, sig in SIGNALS.items()}
    return {name: SIGNALS[name].func(view, res) for name in names}


def arrow_schema(names: Iterable[str] | None = None) -> pa.Schema:
    """Arrow schema of the signal columns (document: typed scalar; line: list of spans)."""
    sigs = SIGNALS.values() if names is None else [SIGNALS[n] for n in names]
    return pa.schema([pa.field(s.name, s.dtype, nullable=True) for s in sigs])
