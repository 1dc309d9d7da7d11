"""CCNet's text normalizers (`cc_net/text_normalizer.py`), same output, table-driven for speed.

`normalize` is what the perplexity model sees: strip, lowercase, strip accents (NFD, drop marks),
every Unicode decimal digit -> "0", CCNet's Unicode punctuation map, control characters removed
(0-31 and 127-159: newlines included, which is why CCNet scores a whole document as one line).
`normalize_for_dedup` is the line key of the paragraph dedup: strip, lowercase, digits -> "0", and
the punctuation of that map and control characters removed (accents kept).

CCNet applies these steps as regex passes one after the other; each step maps single characters
to fixed strings and no step creates a character a later step would change, except that the
fullwidth "１" is both a digit and a key of the punctuation map. Digits go first in CCNet, so one
`str.translate` table with the digit entry winning gives identical output. Accent stripping is NFD
followed by deleting the nonspacing marks (category Mn), which the same table does.
"""

from __future__ import annotations

import sys
import unicodedata

UNICODE_PUNCT: dict[str, str] = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"',
    "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!",
    "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...",
    "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%", "►": "-",
}  # fmt: skip

NON_PRINTING = [chr(c) for c in (*range(0, 32), *range(127, 160))]
# Python's `\d` on str is exactly the Unicode category Nd.
_CATEGORIES = [(chr(c), unicodedata.category(chr(c))) for c in range(sys.maxunicode + 1)]
DIGITS = [c for c, cat in _CATEGORIES if cat == "Nd"]
# strip_accents drops every nonspacing mark after NFD; none of them is a digit or in the map.
MARKS = [c for c, cat in _CATEGORIES if cat == "Mn"]
del _CATEGORIES

_NORMALIZE_TABLE: dict[int, str | None] = {ord(k): v for k, v in UNICODE_PUNCT.items()}
_NORMALIZE_TABLE.update({ord(c): None for c in NON_PRINTING})
_NORMALIZE_TABLE.update({ord(d): "0" for d in DIGITS})
_NORMALIZE_TABLE.update({ord(m): None for m in MARKS})
_MARKS_TABLE: dict[int, None] = {ord(m): None for m in MARKS}

_DEDUP_TABLE: dict[int, str | None] = {ord(k): None for k in UNICODE_PUNCT}
_DEDUP_TABLE.update({ord(c): None for c in NON_PRINTING})
_DEDUP_TABLE.update({ord(d): "0" for d in DIGITS})


def strip_accents(text: str) -> str:
    if text.isascii():  # nothing to decompose: skip the costly NFD pass
        return text
    return unicodedata.normalize("NFD", text).translate(_MARKS_TABLE)


def normalize(line: str) -> str:
    """CCNet `normalize(line)` with its defaults (accent, case, numbers, punct=1)."""
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    if not line.isascii():
        line = unicodedata.normalize("NFD", line)  # the marks go with the table below
    return line.translate(_NORMALIZE_TABLE)


def normalize_for_dedup(line: str) -> str:
    """CCNet `normalize_for_dedup(line)`."""
    line = line.strip()
    if not line:
        return line
    return line.lower().translate(_DEDUP_TABLE)
