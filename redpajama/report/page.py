"""The HTML page: one file, inline CSS and SVG, no script, no network.

Every value that comes from the data (paths, ids, urls, document text, rule names and
predicates) goes through `html.escape`; a Content-Security-Policy that allows no script and no
fetch backs that up should an escape ever be missed.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from redpajama.report import svg
from redpajama.report.stats import Counts

if TYPE_CHECKING:  # build imports this module
    from redpajama.report.build import ReportData

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1290px;
 color:#222;padding:0 16px}
h1{font-size:24px;margin:0 0 4px}h2{border-bottom:2px solid #0072B2;padding-bottom:3px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f0f3f6}td.l,th.l{text-align:left}code{font-size:12px;background:#f4f4f4;padding:1px 3px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;border-radius:4px;padding:6px;width:280px;box-sizing:content-box}
.card h4{margin:0;font-size:12px;word-break:break-all}.card p{margin:2px 0;font-size:11px;color:#555}
.key{display:inline-block;margin-right:14px;font-size:12px}.key i{display:inline-block;width:12px;height:12px;
 margin-right:4px;vertical-align:middle}.missing{background:#fff4e5;border-left:4px solid #E69F00;padding:8px}
.stats{display:flex;gap:24px;flex-wrap:wrap}.stat{background:#f0f3f6;padding:8px 14px;border-radius:4px}
.stat b{display:block;font-size:22px}pre{white-space:pre-wrap;word-break:break-word;background:#f8f8f8;
 border:1px solid #eee;padding:6px;font-size:12px;max-height:180px;overflow:auto;margin:4px 0 10px}
.doc{margin-left:8px}.doc small{color:#555}details{margin:6px 0}summary{cursor:pointer}
.cols{display:flex;gap:24px;flex-wrap:wrap}.cols>div{flex:0 1 auto;min-width:300px;max-width:100%}
.samples>div{flex:1 1 0}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _missing(what: str, command: str) -> str:
    return f'<p class="missing">{_e(what)} Run <code>{_e(command)}</code> to make it.</p>'


def _counts_table(title: str, rows: list[tuple[str, Counts]], total: Counts) -> str:
    body = "".join(
        f'<tr><td class="l">{_e(k)}</td><td>{c.docs:,}</td><td>{c.docs / (total.docs or 1):.1%}</td>'
        f"<td>{c.chars:,}</td><td>{c.utf8_bytes:,}</td></tr>"
        for k, c in rows
    )
    return (
        f'<table><tr><th class="l">{_e(title)}</th><th>documents</th><th>share</th><th>characters</th>'
        f"<th>UTF-8 bytes</th></tr>{body}</table>"
    )


def _summary(d: ReportData) -> str:
    out = ["<h2 id=summary>Summary</h2>"]
    if d.totals is None:
        return out[0] + _missing("No documents under OUT/documents.", "redpajama ingest INPUTS -o OUT")
    t = d.totals
    out.append(
        '<div class="stats">'
        f'<div class="stat" id="total-docs"><b>{t.docs:,}</b>documents</div>'
        f'<div class="stat" id="total-chars"><b>{t.chars:,}</b>characters</div>'
        f'<div class="stat" id="total-bytes"><b>{t.utf8_bytes:,}</b>UTF-8 bytes of raw_content</div>'
        f'<div class="stat"><b>{len(d.by.get("snapshot", []))}</b>snapshots</div>'
        f'<div class="stat"><b>{len(d.by.get("lang", []))}</b>languages</div></div>'
    )
    out.append('<div class="cols">')
    for key, title in (("snapshot", "snapshot"), ("lang", "language"), ("bucket", "bucket")):
        out.append(f'<div id="by-{key}">' + _counts_table(title, d.by.get(key, []), t) + "</div>")
    out.append("</div>")
    return "".join(out)


def _lang_bucket(d: ReportData) -> str:
    head = "<h2 id=breakdown>Language &times; bucket</h2>"
    if not d.lang_bucket:
        return head + _missing("No documents under OUT/documents.", "redpajama ingest INPUTS -o OUT")
    langs = [k for k, _ in d.by["lang"]]
    buckets = [k for k, _ in d.by["bucket"]]
    rows = []
    for lang in langs:
        cells = "".join(f"<td>{d.lang_bucket.get((lang, b), 0):,}</td>" for b in buckets)
        total = sum(d.lang_bucket.get((lang, b), 0) for b in buckets)
        rows.append(f'<tr><td class="l">{_e(lang)}</td>{cells}<td><b>{total:,}</b></td></tr>')
    foot = "".join(f"<td><b>{sum(d.lang_bucket.get((x, b), 0) for x in langs):,}</b></td>" for b in buckets)
    hdr = "".join(f"<th>{_e(b)}</th>" for b in buckets)
    note = ""
    if buckets == ["all"]:
        note = _missing("Documents are not bucketed yet (bucket 'all').", "redpajama ccnet OUT")
    return (
        f'{head}{note}<table id="lang-bucket"><tr><th class="l">language</th>{hdr}<th>total</th></tr>'
        f'{"".join(rows)}<tr><td class="l"><b>total</b></td>{foot}<td><b>{sum(d.lang_bucket.values()):,}</b>'
        "</td></tr></table>"
    )


def _signals(d: ReportData) -> str:
    head = "<h2 id=signals>Quality signals</h2>"
    if not d.tree.has_signals:
        return head + _missing("No quality signals under OUT/quality_signals.", "redpajama signals OUT")
    out = [
        head,
        "<p>Share of documents per bin, over the 0.5th to 99.5th percentile of each signal (values "
        "outside count in the edge bins). Grey bars: all documents; lines: each language / bucket "
        "with at least 10 documents and 1% of them, the largest first.</p>",
        f"<p>{svg.legend(d.groups)}</p>",
    ]
    for level, title in (
        ("document", "Document-level signals"),
        ("line", "Line-level signals: per-document mean"),
    ):
        hists = [h for h in d.histograms if h.level == level]
        out.append(f"<h3>{_e(title)} ({len(hists)})</h3><div class=cards>")
        for h in hists:
            desc = d.descriptions.get(h.signal, "")
            if h.n == 0:
                chart = "<p>no values</p>"
            else:
                chart = svg.histogram(h, d.groups)
            clipped = f"; {h.below:,} below, {h.above:,} above the range" if h.below or h.above else ""
            out.append(
                f'<div class="card" id="sig-{_e(h.signal)}"><h4>{_e(h.signal)}</h4><p>{_e(desc)}</p>{chart}'
                f"<p>{h.n:,} values, {h.nulls:,} missing{clipped}</p></div>"
            )
        out.append("</div>")
    return "".join(out)


def _funnel(d: ReportData) -> str:
    names = ", ".join(d.config.rules)
    head = f"<h2 id=funnel>Survival funnel: {_e(names)}</h2>"
    if not d.tree.has_signals or d.funnel is None:
        return head + _missing("The funnel needs quality signals.", "redpajama signals OUT")
    f = d.funnel
    if f.error:
        return head + f'<p class="missing">The rules could not run on these signals: {_e(f.error)}</p>'
    pct = lambda n: f"{n / (f.total or 1):.1%}"
    rows = [("all documents", f.total, f"{f.total:,}")]
    rows += [(s.rule, s.survivors, f"{s.survivors:,} ({pct(s.survivors)})") for s in f.steps]
    table = "".join(
        f'<tr><td class="l">{i + 1}</td><td class="l">{_e(s.rule)}</td><td class="l"><code>{_e(s.predicate)}'
        f"</code></td><td>{s.survivors:,}</td><td>{pct(s.survivors)}</td><td>{s.dropped_alone:,}</td></tr>"
        for i, s in enumerate(f.steps)
    )
    return (
        f"{head}<p>Rules from {_e(d.rules_source)}, applied in order; a document whose signal is "
        "missing fails the rule. <i>Dropped alone</i>: documents the rule drops by itself.</p>"
        + (
            f"<p>Line rules, which rewrite documents rather than drop them, are not in the funnel: "
            f"{_e(', '.join(d.line_rules))}.</p>"
            if d.line_rules
            else ""
        )
        + svg.hbars(rows, label_w=260)
        + '<table id="funnel-table"><tr><th class="l">#</th><th class="l">rule</th><th class="l">keeps</th>'
        f"<th>survivors</th><th>of all</th><th>dropped alone</th></tr>{table}</table>"
    )


def _dedup(d: ReportData) -> str:
    head = "<h2 id=dedup>Deduplication</h2>"
    if not d.clusters:
        return head + _missing(
            "No clusters or duplicates under OUT/clusters, OUT/duplicates.",
            "redpajama minhash OUT && redpajama dedup OUT --threshold 0.8",
        )
    out = [head]
    for c in d.clusters:
        dups = "not listed" if c.duplicates is None else f"{c.duplicates:,}"
        what = f"{c.clusters:,} clusters holding {c.documents:,} documents; " if c.mode != "exact" else ""
        out.append(f'<h3>{_e(c.mode)}</h3><p id="dedup-{_e(c.mode)}">{what}{dups} duplicates to drop.</p>')
        if not c.sizes:
            if c.mode != "exact":
                out.append("<p>No clusters of two or more documents.</p>")
            continue
        rows = [(f"size {s}", float(n), f"{n:,} cluster{'s' * (n != 1)}") for s, n in c.sizes[:40]]
        if len(c.sizes) > 40:
            rest = c.sizes[40:]
            label = f"size {rest[0][0]}-{rest[-1][0]}"
            rows.append((label, float(sum(n for _, n in rest)), f"{sum(n for _, n in rest):,} clusters"))
        out.append(svg.hbars(rows, label_w=140, color="#009E73"))
        body = "".join(f"<tr><td>{s:,}</td><td>{n:,}</td><td>{s * n:,}</td></tr>" for s, n in c.sizes)
        out.append(
            f'<details><summary>cluster sizes as a table</summary><table class="sizes" data-mode="{_e(c.mode)}">'
            f"<tr><th>size</th><th>clusters</th><th>documents</th></tr>{body}</table></details>"
        )
    return "".join(out)


def _sample_list(d: ReportData, ids: list[str], columns: list[str]) -> str:
    if not ids:
        return "<p><i>none</i></p>"
    out = []
    for i in ids:
        s = d.samples.get(i)
        if s is None:
            continue
        vals = ", ".join(f"{c} = {svg.num(s.values.get(c))}" for c in columns)
        url = f" &middot; {_e(s.url)}" if s.url else ""
        out.append(
            f'<div class="doc"><small><code>{_e(s.id)}</code>{url} &middot; {_e(s.lang)}/{_e(s.bucket)}'
            f"{' &middot; ' + _e(vals) if vals else ''}</small><pre>{_e(s.head)}</pre></div>"
        )
    return "".join(out)


def _samples(d: ReportData) -> str:
    head = "<h2 id=samples>Sample documents per rule</h2>"
    if d.funnel is None or d.funnel.error or not d.funnel.steps:
        return head + "<p>No funnel, no samples.</p>"
    if d.config.sample <= 0:
        return head + "<p>Samples are off (<code>--sample 0</code>).</p>"
    out = [
        head,
        f"<p>Up to {d.config.sample} documents each rule keeps and drops (by itself, not after the rules "
        f"before it), the first {d.config.chars} characters, as plain text.</p>",
    ]
    for s in d.funnel.steps:
        out.append(
            f"<details><summary><b>{_e(s.rule)}</b>: drops {s.dropped_alone:,} "
            f"(<code>{_e(s.predicate)}</code>)</summary><div class='cols samples'>"
            f"<div><h4>dropped</h4>{_sample_list(d, s.dropped_ids, s.columns)}</div>"
            f"<div><h4>kept</h4>{_sample_list(d, s.kept_ids, s.columns)}</div></div></details>"
        )
    out.append(
        "<details open><summary><b>kept by every rule</b></summary>"
        f"{_sample_list(d, d.funnel.final_kept_ids, [])}</details>"
    )
    return "".join(out)


def render(d: ReportData) -> str:
    sections = [_summary(d), _lang_bucket(d), _signals(d), _funnel(d), _dedup(d), _samples(d)]
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>redpajama report: {_e(d.root.name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>redpajama report</h1><p><code>{_e(d.root)}</code></p>" + "".join(sections) + "</body></html>\n"
    )
