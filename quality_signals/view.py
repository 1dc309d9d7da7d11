"""`DocView`: one document and the representations its signals share, each computed once, lazily.

Signals never tokenize or split on their own; they read attributes of the view. Each attribute is
computed on first access and stored on the instance (`_lazy`), so a signal set that does not need
e.g. n-grams never pays for them.

Fast-path equivalences (checked against the RPv2 reference in the golden and unit tests):

* `nd` = NFD(lower(translate(raw))) keeps every `\\n` of the raw text, so its `\\n`-separated
  segments are the raw lines, and `normalize(line) == " ".join(segment.split())` (NFD and
  lowercasing never create, remove or move whitespace; `\\n` is a barrier for both).
* `normalized_words == nd.split()` and `normalized_content == " ".join(normalized_words)`.
* n-grams are identified exactly by integers: a word's id is the position of its first
  occurrence; the id of the k+1-gram at i is the first position of the pair (id_k[i], word[i+k]).
  First-occurrence ids also give Counter's insertion order, which decides RPv2's tie breaks.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from redpajama.quality_signals.dsir_features import hashed_counts
from redpajama.quality_signals.text import (
    F_ASCII_ALPHA,
    F_NUMERIC,
    F_SENT_END,
    F_SPACE,
    F_UPPER,
    F_WORD,
    PUNCT_BYTES,
    WORD_PUNCT_RE,
    char_flags,
    codepoints,
)

__all__ = ["DocView"]

_NL = 10
_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


class _lazy:
    """Non-data descriptor: compute once, then the instance attribute shadows it."""

    __slots__ = ("func", "name")

    def __init__(self, func):
        self.func = func
        self.name = func.__name__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = self.func(obj)
        obj.__dict__[self.name] = value
        return value


def _count_per_line(mask: np.ndarray, ends: np.ndarray, num: int) -> np.ndarray:
    """Number of True positions per segment, segments given by their sorted exclusive ends."""
    line = np.searchsorted(ends, np.flatnonzero(mask), side="right")
    return np.bincount(line, minlength=num + 1)[:num]


class DocView:
    """Lazily computed shared representations of one document.

    Args:
        raw_content: the document text.
        language: ISO code of the document's language (None -> English for word lists).
        source_domain: the document's domain, for the UT1 lookup (None -> no match).
        fields: other columns of the document (e.g. the CCNet fields length, perplexity,
            bucket) for the signals that copy them; missing or None -> those signals are null.
    """

    def __init__(
        self,
        raw_content: str,
        language: str | None = None,
        source_domain: str | None = None,
        fields: Mapping[str, Any] | None = None,
    ):
        self.raw_content = raw_content
        self.language = language
        self.source_domain = source_domain
        self.fields = _NO_FIELDS if fields is None else fields
        self.length = len(raw_content)

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"DocView(len={self.length}, language={self.language!r}, source_domain={self.source_domain!r})"

    # ---------------------------------------------------------------- raw text, char level
    @_lazy
    def raw_cps(self) -> np.ndarray:
        """Code points of the raw content (uint32)."""
        return codepoints(self.raw_content)

    @_lazy
    def raw_flags(self) -> np.ndarray:
        """Per-character flag bits (see text.F_*)."""
        return char_flags()[self.raw_cps]

    # ---------------------------------------------------------------- raw lines
    @_lazy
    def line_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) int64 arrays of RPv2's lines (ends exclusive, `\\n` included)."""
        n = self.length
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        ends = np.flatnonzero(self.raw_cps == _NL) + 1
        if ends.size == 0 or ends[-1] != n:
            ends = np.append(ends, n)
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1]
        return starts, ends

    @property
    def num_lines(self) -> int:
        return len(self.line_bounds[0])

    @_lazy
    def raw_lines(self) -> list[str]:
        """Raw line texts (trailing `\\n` kept); mostly for debugging and tests."""
        text = self.raw_content
        starts, ends = self.line_bounds
        return [text[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]

    @_lazy
    def line_last_nonspace(self) -> np.ndarray:
        """Per line, index of the last non-whitespace char (what `line.rstrip()` ends with), or -1."""
        starts, ends = self.line_bounds
        nonspace = np.flatnonzero((self.raw_flags & F_SPACE) == 0)
        idx = np.searchsorted(nonspace, ends) - 1
        pos = np.where(idx >= 0, nonspace[np.maximum(idx, 0)] if nonspace.size else -1, -1)
        return np.where(pos >= starts, pos, -1)

    @_lazy
    def line_first_nonspace(self) -> np.ndarray:
        """Per line, index of the first non-whitespace char (what `line.lstrip()` starts with), or -1."""
        starts, ends = self.line_bounds
        nonspace = np.flatnonzero((self.raw_flags & F_SPACE) == 0)
        if nonspace.size == 0:
            return np.full(len(starts), -1, dtype=np.int64)
        idx = np.searchsorted(nonspace, starts)
        pos = nonspace[np.minimum(idx, nonspace.size - 1)]
        return np.where((idx < nonspace.size) & (pos < ends), pos, -1)

    # ---------------------------------------------------------------- raw words (WordPunct)
    @_lazy
    def raw_words(self) -> list[str]:
        """NLTK WordPunct tokens of the raw content."""
        return WORD_PUNCT_RE.findall(self.raw_content)

    @property
    def num_raw_words(self) -> int:
        return len(self.raw_words)

    def dsir_counts(self, dim: int, mode: str) -> np.ndarray:
        """DSIR hashed uni+bigram counts of the raw words (dsir_features), once per (dim, mode):
        the six importance signals share them."""
        cache = self.__dict__.setdefault("_dsir_counts", {})
        got = cache.get((dim, mode))
        if got is None:
            got = cache[(dim, mode)] = hashed_counts(self.raw_words, dim, mode)
        return got

    @_lazy
    def num_raw_words_with_ascii_alpha(self) -> int:
        """Number of raw words containing [a-zA-Z]. Only \\w-runs can; keep the ASCII letters and
        the non-word chars (run breakers): a run counts at its first kept letter."""
        flags = self.raw_flags
        sub = flags[((flags & F_ASCII_ALPHA) != 0) | ((flags & F_WORD) == 0)]
        alpha = (sub & F_ASCII_ALPHA) != 0
        if alpha.size == 0:
            return 0
        return int(alpha[0]) + int(np.count_nonzero(alpha[1:] & ~alpha[:-1]))

    @_lazy
    def num_sentences(self) -> int:
        """len(re.findall(r"\\b[^.!?]+[.!?]*", raw)): each maximal run of chars other than
        . ! ? that contains a word char holds exactly one match. Keep the word chars and the
        separators: a run counts at its first word char."""
        flags = self.raw_flags
        sub = flags[(flags & (F_WORD | F_SENT_END)) != 0]
        word = (sub & F_WORD) != 0
        if word.size == 0:
            return 0
        return int(word[0]) + int(np.count_nonzero(word[1:] & ~word[:-1]))

    # ---------------------------------------------------------------- normalized text
    @_lazy
    def nd(self) -> str:
        """NFD(lower(translate(raw))): normalized text before whitespace collapsing, `\\n` kept."""
        # ASCII punctuation bytes never occur inside a multi-byte UTF-8 sequence, so deleting them
        # from the UTF-8 bytes is str.translate(PUNCT_TABLE), ~20x faster
        raw = self.raw_content
        if raw.isascii():
            stripped = raw.encode("ascii").translate(None, PUNCT_BYTES).decode("ascii")
        else:
            stripped = raw.encode("utf-8", "surrogatepass").translate(None, PUNCT_BYTES)
            stripped = stripped.decode("utf-8", "surrogatepass")
        return unicodedata.normalize("NFD", stripped.lower())

    @_lazy
    def normalized_words(self) -> list[str]:
        return self.nd.split()

    @property
    def num_normalized_words(self) -> int:
        return len(self.normalized_words)

    @_lazy
    def normalized_content(self) -> str:
        return " ".join(self.normalized_words)

    @_lazy
    def word_lengths(self) -> np.ndarray:
        """Code-point lengths of the normalized words (int64)."""
        words = self.normalized_words
        return np.fromiter(map(len, words), dtype=np.int64, count=len(words))

    @_lazy
    def total_word_chars(self) -> int:
        return int(self.word_lengths.sum())

    @_lazy
    def _word_id_map(self) -> tuple[np.ndarray, int]:
        words = self.normalized_words
        seen: dict[str, int] = {}
        ids = np.fromiter(map(seen.setdefault, words, range(len(words))), dtype=np.int64, count=len(words))
        return ids, len(seen)

    @property
    def word_ids(self) -> np.ndarray:
        """Per normalized word, the position of its first occurrence (exact word identity)."""
        return self._word_id_map[0]

    @property
    def num_unique_words(self) -> int:
        return self._word_id_map[1]

    @_lazy
    def unigram_counts(self) -> list[int]:
        """Counts of distinct normalized words in first-occurrence order (Counter's order)."""
        counts = np.bincount(self.word_ids, minlength=len(self.normalized_words))
        return counts[counts > 0].tolist()

    @_lazy
    def _ngram_cache(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        ids = self.word_ids
        return {1: (ids, np.bincount(ids, minlength=len(ids)))}

    def _ngrams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        cache = self._ngram_cache
        got = cache.get(n)
        if got is not None:
            return got
        nw = len(self.normalized_words)
        if n > nw:
            empty = np.zeros(0, dtype=np.int64)
            cache[n] = (empty, empty)
            return cache[n]
        k = max(k for k in cache if k < n)
        prev, prev_counts = cache[k]
        ids = self.word_ids
        while k < n:
            m = nw - k  # number of (k+1)-grams
            # the (k+1)-gram at i can repeat only if its k-gram prefix (at i) and suffix (at i+1)
            # both repeat; every other (k+1)-gram is unique and keeps its own position as id
            rep = prev_counts[prev] > 1
            cand = np.flatnonzero(rep[:m] & rep[1 : m + 1])
            if cand.size == 0:
                ones = np.ones(m, dtype=np.int64)
                while k < n:  # nothing repeats from here on: every gram is its own first occurrence
                    m = nw - k
                    k += 1
                    cache[k] = (np.arange(m, dtype=np.int64), ones[:m])
                return cache[n]
            new = np.arange(m, dtype=np.int64)
            keys = prev[cand] * nw + ids[cand + k]
            seen: dict[int, int] = {}
            new[cand] = np.fromiter(
                map(seen.setdefault, keys.tolist(), cand.tolist()), dtype=np.int64, count=cand.size
            )
            counts = np.bincount(new, minlength=m)
            k += 1
            prev, prev_counts = new, counts
            cache[k] = (prev, prev_counts)
        return prev, prev_counts

    def ngram_ids(self, n: int) -> np.ndarray:
        """Per start position i, the first position of the word n-gram words[i:i+n] (exact)."""
        return self._ngrams(n)[0]

    def ngram_counts_by_first(self, n: int) -> np.ndarray:
        """counts[p] = occurrences of the n-gram first seen at position p (0 elsewhere)."""
        return self._ngrams(n)[1]

    # ---------------------------------------------------------------- normalized lines
    @_lazy
    def nd_cps(self) -> np.ndarray:
        return codepoints(self.nd)

    @_lazy
    def nd_line_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Segments of `nd` matching the raw lines one to one (`\\n` excluded)."""
        nl = np.flatnonzero(self.nd_cps == _NL)
        num = self.num_lines
        starts = np.zeros(num, dtype=np.int64)
        ends = np.empty(num, dtype=np.int64)
        k = min(num, nl.size)
        ends[:k] = nl[:k]
        starts[1 : k + 1] = nl[: min(k, num - 1)] + 1
        if num > nl.size:  # final line without '\n'
            ends[num - 1] = len(self.nd_cps)
        return starts, ends

    @_lazy
    def nd_line_stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per line of normalized text: (#words, len(normalized line), #numeric chars)."""
        cps = self.nd_cps
        flags = char_flags()[cps]
        starts, ends = self.nd_line_bounds
        num = len(starts)
        space = (flags & F_SPACE) != 0
        tok_start = ~space
        tok_start[1:] &= space[:-1]
        # a char at position p belongs to the line whose segment end is the first end > p; the
        # '\n' between lines falls to the next line but is neither counted nor a token start
        n_tok = _count_per_line(tok_start, ends, num)
        inner_space = space & (cps != _NL)
        n_nonspace = (ends - starts) - _count_per_line(inner_space, ends, num)
        n_numeric = _count_per_line((flags & F_NUMERIC) != 0, ends, num)
        norm_len = n_nonspace + np.maximum(n_tok - 1, 0)
        return n_tok, norm_len, n_numeric

    @_lazy
    def line_upper_counts(self) -> np.ndarray:
        """Per raw line, number of chars with str.isupper()."""
        _, ends = self.line_bounds
        return _count_per_line((self.raw_flags & F_UPPER) != 0, ends, len(ends))

    @_lazy
    def normalized_lines(self) -> list[str]:
        """normalize(line) for every raw line (slow path; used for rare cases and tests)."""
        nd = self.nd
        starts, ends = self.nd_line_bounds
        return [" ".join(nd[s:e].split()) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
