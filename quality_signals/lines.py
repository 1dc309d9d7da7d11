"""Line-level signals (RPv2 `lines.py`; REFERENCE A.1.3): one (start, end, score) per raw line.

Lines are RPv2's: split after every '\\n' (kept in the line), empty lines included. Raw-text
signals read per-character flags of the raw text; normalized-text signals read the per-line
statistics of the normalized text (`DocView.nd_line_stats`).
"""

from __future__ import annotations

import numpy as np

from redpajama.quality_signals.view import DocView

PRECISION = 8
_TERMINAL = frozenset(map(ord, (".", "!", "?", "\u201d")))
_BULLETS = frozenset((0x2022, 0x2023, 0x25B6, 0x25C0, 0x25E6, 0x25A0, 0x25A1, 0x25AA, 0x25AB, 0x2013))

Span = tuple[int, int, float | int | None]


def _spans(view: DocView, scores: list) -> list[Span]:
    starts, ends = view.line_bounds
    return list(zip(starts.tolist(), ends.tolist(), scores, strict=True))


def _line_flag_scores(view: DocView, positions: np.ndarray, symbols: frozenset[int]) -> list[float]:
    """1.0 where the char at positions[i] is one of symbols (positions[i] == -1: none), else 0.0."""
    cps = view.raw_cps
    if cps.size == 0:
        return [0.0] * len(positions)
    chars = np.where(positions >= 0, cps[np.maximum(positions, 0)], 0).tolist()
    return [1.0 if c in symbols else 0.0 for c in chars]


def lines_ending_with_terminal_punctuation_mark(view: DocView, res=None) -> list[Span]:
    """1.0 if line.rstrip() ends with . ! ? or ” else 0.0."""
    return _spans(view, _line_flag_scores(view, view.line_last_nonspace, _TERMINAL))


def lines_start_with_bulletpoint(view: DocView, res=None) -> list[Span]:
    """1.0 if line.lstrip() starts with a bullet symbol (• ‣ ▶ ◀ ◦ ■ □ ▪ ▫ –) else 0.0."""
    if view.num_lines == 0:
        return [(0, view.length, None)]
    return _spans(view, _line_flag_scores(view, view.line_first_nonspace, _BULLETS))


def lines_uppercase_letter_fraction(view: DocView, res=None) -> list[Span]:
    """Uppercase chars / line length (the trailing '\\n' counts in the length)."""
    starts, ends = view.line_bounds
    if starts.size == 0:
        return []
    counts = view.line_upper_counts.tolist()
    lengths = (ends - starts).tolist()
    scores = [round(c / n, PRECISION) if c else 0.0 for c, n in zip(counts, lengths, strict=True)]
    return list(zip(starts.tolist(), ends.tolist(), scores, strict=True))


def lines_num_words(view: DocView, res=None) -> list[Span]:
    """Number of words of the normalized line (int, as RPv2)."""
    if view.num_lines == 0:
        return []
    return _spans(view, view.nd_line_stats[0].tolist())


def lines_numerical_chars_fraction(view: DocView, res=None) -> list[Span]:
    """Numeric chars (str.isnumeric) / length of the normalized line; 0.0 for an empty one."""
    if view.num_lines == 0:
        return []
    _, norm_len, n_num = view.nd_line_stats
    scores = [
        round(c / n, PRECISION) if c else 0.0 for c, n in zip(n_num.tolist(), norm_len.tolist(), strict=True)
    ]
    return _spans(view, scores)


def lines_javascript_counts(view: DocView, res=None) -> list[Span]:
    """Number of words equal to 'javascript' in the normalized line."""
    num = view.num_lines
    if num == 0:
        return []
    if "javascript" not in view.nd:
        return _spans(view, [0.0] * num)
    nd = view.nd
    starts, ends = view.nd_line_bounds
    scores = [
        float(nd[s:e].split().count("javascript")) if "javascript" in nd[s:e] else 0.0
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    ]
    return _spans(view, scores)


SIGNALS = (
    (
        "rps_lines_ending_with_terminal_punctution_mark",  # sic: RPv2's published column name
        lines_ending_with_terminal_punctuation_mark,
        "Per line: 1.0 if it ends with a terminal punctuation mark.",
    ),
    ("rps_lines_javascript_counts", lines_javascript_counts, "Per line: number of words 'javascript'."),
    ("rps_lines_num_words", lines_num_words, "Per line: number of normalized words."),
    (
        "rps_lines_numerical_chars_fraction",
        lines_numerical_chars_fraction,
        "Per line: fraction of numeric characters (normalized).",
    ),
    (
        "rps_lines_start_with_bulletpoint",
        lines_start_with_bulletpoint,
        "Per line: 1.0 if it starts with a bullet point symbol.",
    ),
    (
        "rps_lines_uppercase_letter_fraction",
        lines_uppercase_letter_fraction,
        "Per line: fraction of uppercase characters (raw).",
    ),
)
