"""The report's numbers against counts computed independently with pyarrow; escaping; missing parts."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from report_helpers import SCRIPT_DOC, make_tree

from redpajama.report import ReportConfig, build_report, stats, tree
from redpajama.report import funnel as funnel_mod
from redpajama.report.rulesets import Rule


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "out")


def _html(out: Path, dest: Path, **kw) -> str:
    path = build_report(out, dest, ReportConfig(**kw))
    assert path == dest / "index.html"
    return path.read_text("utf-8")


def _stat(html: str, key: str) -> int:
    return int(re.search(rf'id="{key}"><b>([\d,]+)</b>', html).group(1).replace(",", ""))


def test_counts_match_pyarrow(tiny: Path, tmp_path: Path) -> None:
    html = _html(tiny, tmp_path / "rep", rules=("rpv1",))
    table = ds.dataset(tiny / "documents", format="parquet").to_table(columns=["raw_content", "length"])
    assert _stat(html, "total-docs") == table.num_rows == 10
    assert _stat(html, "total-chars") == pc.sum(table["length"]).as_py()
    assert _stat(html, "total-bytes") == pc.sum(pc.binary_length(table["raw_content"])).as_py()
    # language x bucket: from the file names, counted by pyarrow rows per file
    expected: Counter = Counter()
    for f in (tiny / "documents").rglob("*.parquet"):
        lang, bucket = f.stem.rsplit("_", 1)
        expected[(lang, bucket)] += ds.dataset(f).count_rows()
    block = html[html.index('id="lang-bucket"') :]
    block = block[: block.index("</table>")]
    header = re.findall(r"<th>([^<]+)</th>", block)
    buckets = header[: header.index("total")]
    for lang in ("en", "de"):
        row = re.search(rf'<td class="l">{lang}</td>(.*?)</tr>', block).group(1)
        cells = [int(c.replace(",", "")) for c in re.findall(r"<td>(?:<b>)?([\d,]+)", row)]
        assert cells[:-1] == [expected[(lang, b)] for b in buckets]
        assert cells[-1] == sum(v for (la, _), v in expected.items() if la == lang)


def test_document_html_is_escaped(tiny: Path, tmp_path: Path) -> None:
    html = _html(tiny, tmp_path / "rep", rules=("rpv1",), sample=20)
    assert "<script" not in html.lower()  # neither the document's nor any of ours
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;&lt;/pre&gt;&lt;b&gt;bold" in html
    assert "Content-Security-Policy" in html
    assert SCRIPT_DOC not in html


def test_funnel_counts(tiny: Path) -> None:
    t = tree.discover(tiny)
    con = tree.connect(t)
    rules = [
        Rule("long", "rps_doc_word_count >= 60"),
        Rule("mean", "rps_doc_mean_word_length <= 5"),  # NULL for one doc per file: fails
        Rule("bullets", "list_avg([s.score FOR s IN rps_lines_start_with_bulletpoint]) < 0.5"),
    ]
    f = funnel_mod.funnel(
        con, rules, sample=3, doc_columns=["rps_doc_word_count", "rps_doc_mean_word_length"]
    )
    rows = ds.dataset(tiny / "quality_signals", format="parquet").to_table().to_pylist()
    keep = [
        lambda r: r["rps_doc_word_count"] >= 60,
        lambda r: r["rps_doc_mean_word_length"] is not None and r["rps_doc_mean_word_length"] <= 5,
        lambda r: sum(s["score"] for s in r["rps_lines_start_with_bulletpoint"]) / 2 < 0.5,
    ]
    assert f.total == len(rows) == 10
    for i, step in enumerate(f.steps):
        assert step.survivors == sum(all(k(r) for k in keep[: i + 1]) for r in rows), step.rule
        assert step.dropped_alone == sum(not keep[i](r) for r in rows), step.rule
        by_id = {r["id"]: r for r in rows}
        assert all(keep[i](by_id[x]) for x in step.kept_ids)
        assert all(not keep[i](by_id[x]) for x in step.dropped_ids)
        assert len(step.kept_ids) <= 3 and len(step.dropped_ids) <= 3
    assert f.steps[0].columns == ["rps_doc_word_count"]
    assert set(f.final_kept_ids) <= {r["id"] for r in rows if all(k(r) for k in keep)}


def test_funnel_in_page(tiny: Path, tmp_path: Path) -> None:
    html = _html(tiny, tmp_path / "rep", rules=("rpv1",))
    table = ds.dataset(tiny / "quality_signals", format="parquet").to_table(
        columns=["rps_doc_ml_wikiref_score"]
    )
    kept = sum(v >= 0.25 for v in table["rps_doc_ml_wikiref_score"].to_pylist())
    block = html[html.index('id="funnel-table"') :]
    survivors, _share, dropped = re.search(
        r"</code></td><td>([\d,]+)</td><td>([\d.]+%)</td><td>([\d,]+)</td>", block
    ).groups()
    assert (int(survivors), int(dropped)) == (kept, 10 - kept)


def test_cluster_sizes(tiny: Path, tmp_path: Path) -> None:
    t = tree.discover(tiny)
    [c] = stats.cluster_sizes(tree.connect(t), t)
    ids = ds.dataset(tiny / "clusters", format="parquet").to_table()["cluster_id"].to_pylist()
    assert c.mode == "fuzzy-0.8"
    assert c.sizes == sorted(Counter(Counter(ids).values()).items()) == [(2, 2), (3, 1)]
    assert (c.clusters, c.documents, c.duplicates) == (3, 7, 4)
    html = _html(tiny, tmp_path / "rep", rules=("rpv1",))
    assert "3 clusters holding 7 documents; 4 duplicates to drop." in html
    sizes = html[html.index('data-mode="fuzzy-0.8"') :]
    assert "<tr><td>2</td><td>2</td><td>4</td></tr><tr><td>3</td><td>1</td><td>3</td></tr>" in sizes


def test_histograms_count_every_value(tiny: Path) -> None:
    t = tree.discover(tiny)
    con = tree.connect(t)
    hists = {h.signal: h for h in stats.histograms(con, stats.signal_columns(con), bins=7)}
    assert set(hists) == {
        "rps_doc_word_count", "rps_doc_ml_wikiref_score", "rps_doc_mean_word_length",
        "rps_lines_start_with_bulletpoint",
    }  # fmt: skip
    assert hists["rps_lines_start_with_bulletpoint"].level == "line"
    for h in hists.values():
        assert sum(h.total) == h.n and h.n + h.nulls == 10
        assert sum(sum(v) for v in h.by_group.values()) == h.n
    mwl = hists["rps_doc_mean_word_length"]
    assert mwl.nulls == 3  # the second document of each file with two or more
    assert sum(hists["rps_doc_word_count"].by_group[("en", "head")]) == 7


def test_tree_without_signals_or_clusters(tmp_path: Path) -> None:
    out = make_tree(tmp_path / "bare", signals=False, clusters=False)
    html = _html(out, tmp_path / "rep")
    assert _stat(html, "total-docs") == 10
    assert "Run <code>redpajama signals OUT</code>" in html
    assert "Run <code>redpajama minhash OUT &amp;&amp; redpajama dedup OUT --threshold 0.8</code>" in html


def test_empty_tree_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    html = _html(tmp_path / "empty", tmp_path / "rep")
    assert "Run <code>redpajama ingest INPUTS -o OUT</code>" in html
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "nope", tmp_path / "rep2")


def test_cli(tiny: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    dest = tmp_path / "cli-report"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "redpajama",
            "report",
            str(tiny),
            "-o",
            str(dest),
            "--rules",
            "rpv1",
            "--sample",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (dest / "index.html").is_file() and str(dest / "index.html") in done.stdout
    assert not [p for p in dest.iterdir() if p.name != "index.html"]  # no temp file left behind
    bad = subprocess.run(
        [sys.executable, "-m", "redpajama", "report", str(tiny), "-o", str(dest), "--rules", "no-such-set"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "no-such-set" in bad.stderr
