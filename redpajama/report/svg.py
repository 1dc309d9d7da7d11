"""Hand-written inline SVG charts.

Chosen over matplotlib: the charts are bars and step lines, a few dozen lines of SVG each; inline
SVG keeps the page small, sharp at any zoom and text-searchable, and adds no dependency (matplotlib
brings Pillow, fonttools and a font cache to a data pipeline install).
Every label goes through `html.escape`.
"""

from __future__ import annotations

import math
from html import escape

from redpajama.report.stats import Histogram

# Colour-blind-safe (Okabe-Ito), then greys for the rest.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
BAR = "#9aa5b1"


def num(x: float | int | None) -> str:
    """Short label for an axis or a table cell."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    ax = abs(x)
    if ax >= 1e5 or ax < 1e-3:
        return f"{x:.2e}"
    return f"{x:.3g}" if ax < 100 else f"{x:,.1f}"


def _text(x: float, y: float, s: str, anchor: str = "start", size: int = 10, fill: str = "#333") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}">'
        f"{escape(s)}</text>"
    )


def histogram(h: Histogram, groups: list[tuple[str, str]], width: int = 280, height: int = 150) -> str:
    """Grey bars: share of all documents per bin; coloured steps: share within each (lang, bucket)."""
    left, right, top, bottom = 34, 8, 8, 22
    pw, ph = width - left - right, height - top - bottom
    total = sum(h.total) or 1
    shares = [[c / total for c in h.total]]
    for g in groups:
        counts = h.by_group.get(g)
        if counts:
            gt = sum(counts) or 1
            shares.append([c / gt for c in counts])
    ymax = max(max(s) for s in shares) or 1.0
    bw = pw / h.bins
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f"<title>{escape(h.signal)}</title>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ddd"/>',
    ]
    for i, s in enumerate(shares[0]):
        bh = s / ymax * ph
        parts.append(
            f'<rect x="{left + i * bw:.1f}" y="{top + ph - bh:.1f}" width="{max(bw - 1, 0.5):.1f}" '
            f'height="{bh:.1f}" fill="{BAR}"/>'
        )
    for gi, s in enumerate(shares[1:]):
        pts = []
        for i, v in enumerate(s):
            y = top + ph - v / ymax * ph
            pts += [f"{left + i * bw:.1f},{y:.1f}", f"{left + (i + 1) * bw:.1f},{y:.1f}"]
        color = PALETTE[gi % len(PALETTE)]
        parts.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" stroke-width="1.4"/>')
    parts.append(_text(left - 3, top + 8, f"{ymax:.0%}", "end", 9))
    parts.append(_text(left - 3, top + ph, "0", "end", 9))
    parts.append(_text(left, height - 8, num(h.lo), "start", 9))
    parts.append(_text(left + pw / 2, height - 8, num((h.lo + h.hi) / 2), "middle", 9))
    parts.append(_text(left + pw, height - 8, num(h.hi), "end", 9))
    parts.append("</svg>")
    return "".join(parts)


def hbars(
    rows: list[tuple[str, float, str]],
    width: int = 720,
    bar_h: int = 18,
    label_w: int = 220,
    color: str = "#0072B2",
) -> str:
    """Horizontal bars: (label, value, text shown after the bar)."""
    vmax = max((v for _, v, _ in rows), default=0) or 1
    pw = width - label_w - 150
    height = len(rows) * (bar_h + 4) + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    ]
    for i, (label, value, note) in enumerate(rows):
        y = 3 + i * (bar_h + 4)
        w = max(value / vmax * pw, 0)
        parts.append(_text(label_w - 6, y + bar_h - 5, label, "end", 11))
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        parts.append(_text(label_w + w + 5, y + bar_h - 5, note, "start", 11))
    parts.append("</svg>")
    return "".join(parts)


def legend(groups: list[tuple[str, str]]) -> str:
    items = [f'<span class="key"><i style="background:{BAR}"></i>all documents (bars)</span>']
    for gi, (lang, bucket) in enumerate(groups):
        color = PALETTE[gi % len(PALETTE)]
        items.append(
            f'<span class="key"><i style="background:{color}"></i>{escape(lang)} / {escape(bucket)}</span>'
        )
    return "".join(items)
