"""Repetition signals (RPv2 `repetitions.py`; REFERENCE A.1.4), on normalized words.

One function per family, parametrized by n: the registry binds n with functools.partial.
n-grams are exact integer ids from `DocView.ngram_ids` (no tuples, no hash collisions).
"""

from __future__ import annotations

import numpy as np

from redpajama.quality_signals.view import DocView

PRECISION = 8
TOP_NGRAM_SIZES = (2, 3, 4)
DUPE_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)


def doc_frac_chars_top_ngram(view: DocView, res=None, *, n: int) -> float:
    """chars of the most frequent n-gram * its count / chars of all words (can exceed 1).

    Ties go to the n-gram seen first (Counter.most_common's order); count <= 1 gives 0.0."""
    if view.num_normalized_words < n:
        return 0.0
    counts = view.ngram_counts_by_first(n)
    first = int(np.argmax(counts))  # first position of the earliest n-gram with the max count
    count = int(counts[first])
    if count <= 1:
        return 0.0
    chars = int(view.word_lengths[first : first + n].sum())
    return round(chars * count / view.total_word_chars, PRECISION)


def doc_frac_chars_dupe_ngrams(view: DocView, res=None, *, n: int) -> float:
    """chars of words covered by any n-gram that occurs more than once / chars of all words."""
    nw = view.num_normalized_words
    if nw < n:
        return 0.0
    total = view.total_word_chars
    if total == 0:
        return 0.0
    g = view.ngram_ids(n)
    counts = view.ngram_counts_by_first(n)
    starts = np.flatnonzero(counts[g] > 1)
    if starts.size == 0:
        return 0.0
    delta = np.bincount(starts, minlength=nw + 1)
    delta -= np.bincount(starts + n, minlength=nw + 1)
    covered = np.cumsum(delta[:nw]) > 0
    duped = int(view.word_lengths[covered].sum())
    return round(duped / total, PRECISION)
