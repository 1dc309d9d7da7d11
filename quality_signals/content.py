"""Content signals (RPv2 `content.py`; REFERENCE A.1.2 and A.1.5).

rps_doc_curly_bracket, rps_doc_ldnoobw_words, rps_doc_lorem_ipsum, rps_doc_stop_word_fraction,
rps_doc_ut1_blacklist. The word lists come from `Resources`, picked by the document's language.
"""

from __future__ import annotations

import re
from itertools import compress

from redpajama.quality_signals.resources import Resources
from redpajama.quality_signals.view import DocView

PRECISION = 8
_LOREM_RE = re.compile(r"lorem ipsum", re.IGNORECASE)


def doc_curly_bracket(view: DocView, res: Resources | None = None) -> float:
    """(#'{' + #'}') / number of raw characters."""
    raw = view.raw_content
    if not raw:
        return 0.0
    n = raw.count("{") + raw.count("}")
    if n == 0:
        return 0.0
    return round(float(n) / len(raw), PRECISION)


def doc_lorem_ipsum(view: DocView, res: Resources | None = None) -> float:
    """Matches of /lorem ipsum/i in the normalized text / its length."""
    content = view.normalized_content
    if not content or "lorem ipsum" not in content:
        return 0.0
    return round(float(len(_LOREM_RE.findall(content))) / len(content), PRECISION)


def doc_stop_word_fraction(view: DocView, res: Resources) -> float:
    """Raw words in the language's stop-word set (case-sensitive) / raw words."""
    if view.num_normalized_words == 0:
        return 0.0
    stop = res.stop_words_for(view.language)
    words = view.raw_words
    return round(float(sum(map(stop.__contains__, words))) / len(words), PRECISION)


def doc_ldnoobw_words(view: DocView, res: Resources) -> float:
    """Count (not a ratio) of normalized words / word n-grams that are LDNOOBW entries."""
    words = view.normalized_words
    if not words:
        return 0.0
    block = res.blocklist_for(view.language)
    count = sum(map(block.words.__contains__, words)) if block.words else 0
    first_ns = block.first_word_ns
    if first_ns:
        nw = len(words)
        phrases = block.phrases
        # only positions whose word starts some phrase can match (one C-level pass to find them)
        for i in compress(range(nw), map(first_ns.__contains__, words)):
            for n in first_ns[words[i]]:
                if i + n <= nw and " ".join(words[i : i + n]) in phrases:
                    count += 1
    return float(count)


def doc_ut1_blacklist(view: DocView, res: Resources) -> int | None:
    """UT1 category-combination id of the exact source_domain, or None."""
    ut1 = res.ut1
    if ut1 is None or view.source_domain is None:
        return None
    return ut1.get(view.source_domain)


SIGNALS = (
    ("rps_doc_curly_bracket", doc_curly_bracket, "Fraction of raw characters that are '{' or '}'."),
    ("rps_doc_ldnoobw_words", doc_ldnoobw_words, "Number of LDNOOBW block-list words and phrases."),
    ("rps_doc_lorem_ipsum", doc_lorem_ipsum, "'lorem ipsum' occurrences per normalized character."),
    ("rps_doc_stop_word_fraction", doc_stop_word_fraction, "Fraction of raw words that are stop words."),
    ("rps_doc_ut1_blacklist", doc_ut1_blacklist, "UT1 blacklist category-combination id of the domain."),
)
