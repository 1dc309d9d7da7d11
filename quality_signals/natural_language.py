"""Natural-language document signals (RPv2 `natural_language.py`; REFERENCE A.1.2).

Each function takes a `DocView` and the `Resources` and returns one number or None. Scores are
rounded to 8 decimals where RPv2 rounds (`PRECISION`).
"""

from __future__ import annotations

import math

import numpy as np

from redpajama.quality_signals.view import DocView

PRECISION = 8
_ELLIPSIS = 0x2026
_DOT = 0x2E


def doc_word_count(view: DocView, res=None) -> int:
    """Number of normalized words."""
    return view.num_normalized_words


def doc_mean_word_length(view: DocView, res=None) -> float | None:
    """Mean code-point length of the normalized (NFD) words."""
    n = view.num_normalized_words
    if n == 0:
        return None
    return round(float(view.total_word_chars) / n, PRECISION)


def doc_num_sentences(view: DocView, res=None) -> float:
    """Matches of \\b[^.!?]+[.!?]* in the raw text (splits on every . ! ?)."""
    return float(view.num_sentences)


def doc_symbol_to_word_ratio(view: DocView, res=None) -> float | None:
    """(#'#' + #'...' + #'…') / number of raw words (substring counts, "...." counts once)."""
    n = view.num_raw_words
    if n == 0:
        return None
    raw = view.raw_content
    symbols = float(raw.count("#") + raw.count("...") + raw.count("\u2026"))
    return round(symbols / n, PRECISION)


def doc_frac_lines_end_with_ellipsis(view: DocView, res=None) -> float | None:
    """Lines whose rstrip() ends with '...' or '…' / all lines (empty lines included)."""
    num_lines = view.num_lines
    if num_lines == 0:
        return None
    starts, _ = view.line_bounds
    last = view.line_last_nonspace
    if last.size == 0:
        return None
    cps = view.raw_cps
    safe = np.maximum(last, 0)
    c0 = cps[safe]
    has = last >= 0
    ellipsis = has & (c0 == _ELLIPSIS)
    three = has & (last - 2 >= starts)
    if three.any():
        c1 = cps[np.maximum(safe - 1, 0)]
        c2 = cps[np.maximum(safe - 2, 0)]
        ellipsis |= three & (c0 == _DOT) & (c1 == _DOT) & (c2 == _DOT)
    return round(float(int(np.count_nonzero(ellipsis))) / num_lines, PRECISION)


def doc_frac_no_alph_words(view: DocView, res=None) -> float | None:
    """1 - (raw words containing [a-zA-Z]) / number of raw words."""
    n = view.num_raw_words
    if n == 0:
        return None
    return round(1.0 - float(view.num_raw_words_with_ascii_alpha) / n, PRECISION)


def doc_frac_unique_words(view: DocView, res=None) -> float | None:
    """Distinct normalized words / normalized words."""
    n = view.num_normalized_words
    if n == 0:
        return None
    return round(float(view.num_unique_words) / n, PRECISION)


def doc_unigram_entropy(view: DocView, res=None) -> float | None:
    """sum(-c/N * ln(c/N)) over distinct normalized words, summed in first-occurrence order."""
    total = view.num_normalized_words
    if total == 0:
        return None
    counts = view.unigram_counts
    log = math.log
    terms: dict[int, float] = {}
    for c in set(counts):
        terms[c] = -c / total * log(c / total)
    # builtin sum in Counter order: the same float summation as RPv2 on the same Python
    return round(sum(map(terms.__getitem__, counts)), PRECISION)


def doc_frac_all_caps_words(view: DocView, res=None) -> float | None:
    """Raw words with str.isupper() / raw words."""
    words = view.raw_words
    n = len(words)
    if n == 0:
        return None
    return round(float(sum(map(str.isupper, words))) / n, PRECISION)


SIGNALS = (
    # (name, function, description); RPv2 schema order is applied by the registry
    ("rps_doc_frac_all_caps_words", doc_frac_all_caps_words, "Fraction of raw words that are all caps."),
    (
        "rps_doc_frac_lines_end_with_ellipsis",
        doc_frac_lines_end_with_ellipsis,
        "Fraction of lines ending with '...' or '…'.",
    ),
    ("rps_doc_frac_no_alph_words", doc_frac_no_alph_words, "Fraction of raw words without an ASCII letter."),
    ("rps_doc_frac_unique_words", doc_frac_unique_words, "Fraction of distinct normalized words."),
    ("rps_doc_mean_word_length", doc_mean_word_length, "Mean length of normalized words."),
    ("rps_doc_num_sentences", doc_num_sentences, "Number of sentences (regex split on . ! ?)."),
    ("rps_doc_symbol_to_word_ratio", doc_symbol_to_word_ratio, "('#' + '...' + '…') count per raw word."),
    ("rps_doc_unigram_entropy", doc_unigram_entropy, "Entropy of the normalized-word distribution."),
    ("rps_doc_word_count", doc_word_count, "Number of normalized words."),
)
