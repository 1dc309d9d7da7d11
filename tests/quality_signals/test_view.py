"""The fast paths of DocView equal the plain RPv2 definitions in text.py."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from redpajama.quality_signals.text import line_spans, normalize, word_punct_tokenize
from redpajama.quality_signals.view import DocView

GOLDEN = Path(__file__).resolve().parent / "golden" / "rpv2_reference.json"
ALPHABET = list(
    "aAzZ  \n\n\t\r.!?…#{}'\"-_,;:“”•–0123456789½ⅻ²٣一中é\u0301\u0308ßẞİıΣσςΌ\u212aǅⒶ\u00a0\u2000\u3000\u2028\u0085\x1c😀"
) + ["lorem ipsum", "javascript", "...", "the", "The", " a a "]


def _texts() -> list[str]:
    docs = json.loads(GOLDEN.read_text(encoding="utf-8"))["documents"]
    rng = random.Random(0)
    fuzz = ["".join(rng.choice(ALPHABET) for _ in range(rng.choice((0, 1, 3, 30, 200)))) for _ in range(400)]
    return [d["text"] for d in docs] + fuzz


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return _texts()


def test_normalized_views_equal_normalize(texts):
    for t in texts:
        v = DocView(t)
        assert v.normalized_content == normalize(t)
        assert v.normalized_words == normalize(t).split()
        assert v.word_lengths.tolist() == [len(w) for w in v.normalized_words]


def test_lines_equal_rpv2_regex(texts):
    for t in texts:
        v = DocView(t)
        starts, ends = v.line_bounds
        spans = line_spans(t)
        assert list(zip(starts.tolist(), ends.tolist(), strict=True)) == spans
        assert v.normalized_lines == [normalize(t[s:e]) for s, e in spans]
        n_words, norm_len, _ = v.nd_line_stats
        assert n_words.tolist() == [len(normalize(t[s:e]).split()) for s, e in spans]
        assert norm_len.tolist() == [len(normalize(t[s:e])) for s, e in spans]


def test_raw_word_counts_equal_tokenizer(texts):
    import re

    alpha = re.compile(r"[a-zA-Z]")
    for t in texts:
        v = DocView(t)
        words = word_punct_tokenize(t)
        assert v.raw_words == words
        assert v.num_raw_words_with_ascii_alpha == sum(1 for w in words if alpha.search(w))
        assert v.num_sentences == len(re.findall(r"\b[^.!?]+[.!?]*", t))


def test_ngram_ids_are_first_occurrences(texts):
    for t in texts[:200]:
        v = DocView(t)
        words = v.normalized_words
        for n in (1, 2, 3, 5, 10):
            grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
            first: dict = {}
            expected = [first.setdefault(g, i) for i, g in enumerate(grams)]
            assert v.ngram_ids(n).tolist() == expected
            counts = np.bincount(np.array(expected, dtype=np.int64), minlength=len(grams))
            assert v.ngram_counts_by_first(n).tolist() == counts.tolist()
