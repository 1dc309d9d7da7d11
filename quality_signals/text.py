"""Text primitives of the RedPajama-V2 heuristic signals: normalization, WordPunct tokens, lines.

The plain functions here (`normalize`, `word_punct_tokenize`, `line_spans`) state the RPv2
semantics directly and serve as the readable definition. The fast paths in `view.py` compute the
same things with numpy over a code-point array and per-code-point flag tables (`char_flags`);
tests check that both agree.

RPv2 semantics reproduced (REFERENCE A.1.0):

* normalize: delete ASCII `string.punctuation`, `lower()`, `strip()` + collapse `\\s+` to one
  space, then Unicode NFD (so accents become combining marks and count toward lengths).
* raw words: NLTK WordPunctTokenizer, i.e. `re.findall(r"\\w+|[^\\w\\s]+", text)`.
* lines: `re.finditer(r"([^\\n]*\\n|[^\\n]+$)", text)`; the `\\n` stays in the line, empty lines
  are kept, a final line without `\\n` is kept when non-empty.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from functools import lru_cache

import numpy as np

__all__ = [
    "PUNCT_TABLE",
    "PUNCT_BYTES",
    "WORD_PUNCT_RE",
    "LINE_RE",
    "normalize",
    "word_punct_tokenize",
    "line_spans",
    "codepoints",
    "char_flags",
    "F_SPACE",
    "F_WORD",
    "F_UPPER",
    "F_LOWER_OR_TITLE",
    "F_NUMERIC",
    "F_ASCII_ALPHA",
    "F_SENT_END",
]

# ASCII punctuation only: Unicode punctuation (“ ” … — « ») survives normalization.
PUNCT_TABLE = str.maketrans("", "", string.punctuation)
PUNCT_BYTES = string.punctuation.encode("ascii")
WORD_PUNCT_RE = re.compile(r"\w+|[^\w\s]+")
LINE_RE = re.compile(r"([^\n]*\n|[^\n]+$)")
_WS_RE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """RPv2 `normalize()`: drop ASCII punctuation, lowercase, collapse whitespace, NFD."""
    text = text.translate(PUNCT_TABLE).lower().strip()
    text = _WS_RE.sub(" ", text)
    return unicodedata.normalize("NFD", text)


def word_punct_tokenize(text: str) -> list[str]:
    """NLTK WordPunctTokenizer without NLTK: runs of word chars, or of other non-space chars."""
    return WORD_PUNCT_RE.findall(text)


def line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line as RPv2 splits them (end exclusive, `\\n` included)."""
    return [m.span() for m in LINE_RE.finditer(text)]


# ---------------------------------------------------------------------------------------------
# Per-code-point flag table (exact by construction: built with the same predicates RPv2 calls)
# ---------------------------------------------------------------------------------------------
F_SPACE = np.uint8(1)  # str.isspace / str.strip / str.split / regex \s
F_WORD = np.uint8(2)  # regex \w (unicode)
F_UPPER = np.uint8(4)  # str.isupper() of the single character
F_LOWER_OR_TITLE = np.uint8(8)  # a character that makes str.isupper() of a token False
F_NUMERIC = np.uint8(16)  # str.isnumeric()
F_ASCII_ALPHA = np.uint8(32)  # [a-zA-Z]
F_SENT_END = np.uint8(64)  # one of . ! ? (the sentence regex's separators)


def codepoints(text: str) -> np.ndarray:
    """The string as a uint32 array of code points (index i == Python index i)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _mark_regex_runs(flags: np.ndarray, pattern: str, all_chars: str, bit: np.uint8) -> None:
    for m in re.finditer(pattern, all_chars):
        flags[m.start() : m.end()] |= bit


@lru_cache(maxsize=1)
def char_flags() -> np.ndarray:
    """uint8 flags for every code point 0..0x10FFFF (built once per process, ~0.3 s)."""
    n = sys.maxunicode + 1
    all_chars = "".join(map(chr, range(n)))
    flags = np.zeros(n, dtype=np.uint8)
    # regex classes straight from the regex engine, so they match re's \s and \w exactly
    _mark_regex_runs(flags, r"\s+", all_chars, F_SPACE)
    _mark_regex_runs(flags, r"\w+", all_chars, F_WORD)
    flags[np.fromiter(map(str.isupper, all_chars), dtype=bool, count=n)] |= F_UPPER
    # str.isupper() on a token is False as soon as one char is lower- or titlecase
    lower_or_title = np.fromiter(map(str.islower, all_chars), dtype=bool, count=n)
    # single-char str.istitle() is "titlecase or uppercase"; only titlecase (Lt) is wanted here
    is_upper = (flags & F_UPPER) != 0
    lower_or_title |= np.fromiter(map(str.istitle, all_chars), dtype=bool, count=n) & ~is_upper
    flags[lower_or_title] |= F_LOWER_OR_TITLE
    flags[np.fromiter(map(str.isnumeric, all_chars), dtype=bool, count=n)] |= F_NUMERIC
    for c in string.ascii_letters:
        flags[ord(c)] |= F_ASCII_ALPHA
    for c in ".!?":
        flags[ord(c)] |= F_SENT_END
    flags.setflags(write=False)
    return flags
