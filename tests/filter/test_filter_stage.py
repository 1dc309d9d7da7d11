"""The filter stage: provenance, dedup anti-join, C4 line rewrite, reruns, sample-data counts."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from filter_helpers import RELATIVE, passing_signals, write_clusters, write_duplicates, write_tree

from redpajama.io import markers
from redpajama.pipelines import filter as stage
from redpajama.pipelines import rules as rule_sets
from redpajama.runners.local import RunOptions

LINES = [
    "A fine first line with enough words.\n",
    "short.\n",
    "no terminal punctuation in this line at all\n",
    "Please enable javascript to view this page.\n",
    "\n",
    "Ça marche très bien, vraiment, oui!",
]
# per line: terminal punctuation, words, javascript
SCORES = [(1, 7, 0), (1, 1, 0), (0, 8, 0), (1, 7, 1), (0, 0, 0), (1, 6, 0)]


def _line_signals() -> dict:
    spans, pos = {n: [] for n in ("t", "w", "j")}, 0
    for text, (t, w, j) in zip(LINES, SCORES, strict=True):
        for key, score in (("t", t), ("w", w), ("j", j)):
            spans[key].append({"start": pos, "end": pos + len(text), "score": float(score)})
        pos += len(text)
    return {
        "rps_lines_ending_with_terminal_punctution_mark": spans["t"],
        "rps_lines_num_words": spans["w"],
        "rps_lines_javascript_counts": spans["j"],
    }


def _run(root, dest, sets, **kwargs):
    config = stage.FilterConfig(source=str(root), rules=tuple(rule_sets.resolve(sets)), **kwargs)
    return stage.run(dest, config, RunOptions(workers=1))


def test_c4_lines_rewrite_raw_content_from_kept_spans(tmp_path):
    lined = {**passing_signals(), **_line_signals()}
    empty = {**passing_signals(), **{k: [dict(s, score=0.0) for s in v] for k, v in _line_signals().items()}}
    write_tree(
        tmp_path,
        [
            {"id": "lined", "raw_content": "".join(LINES), "signals": lined},
            {"id": "nothing-left", "raw_content": "".join(LINES), "signals": empty},
        ],
    )
    _, stats = _run(tmp_path, tmp_path / "cur", ["c4-lines"], keep_dropped=True)
    (row,) = pq.read_table(tmp_path / "cur" / "documents").to_pylist()
    assert row["raw_content"] == LINES[0] + LINES[5]
    assert row["length"] == len(LINES[0] + LINES[5]) and row["nlines"] == 2
    assert row["passed_rules"] == ["c4_line_terminal_punct", "c4_line_no_javascript", "c4_line_min_words"]
    (gone,) = pq.read_table(tmp_path / "cur" / "dropped").to_pylist()
    assert gone["first_failed_rule"] == stage.LINES_EMPTY and gone["raw_content"] == "".join(LINES)
    assert stats["lines"]["in"] == 12 and stats["lines"]["kept"] == 2


def test_provenance_dedup_and_idempotent_rerun(tmp_path):
    rows = [{"id": f"d{n}", "signals": passing_signals()} for n in range(5)]
    rows[1]["signals"] = {**passing_signals(), "rps_doc_word_count": 10}
    write_tree(tmp_path, rows)
    write_duplicates(tmp_path, "fuzzy-0.8", ["d3"])
    dest = tmp_path / "cur"
    summary, stats = _run(tmp_path, dest, ["gopher"], dedup="fuzzy-0.8", keep_dropped=True)
    kept = pq.read_table(dest / "documents" / RELATIVE)
    assert kept.column("id").to_pylist() == ["d0", "d2", "d4"]  # input order kept
    assert (
        kept.schema.names[: len(kept.schema.names) - 2]
        == pq.read_schema(tmp_path / "documents" / RELATIVE).names
    )
    assert set(kept.column("passed_rules").to_pylist()[0]) == {r.name for r in rule_sets.resolve(["gopher"])}
    dropped = {r["id"]: r["first_failed_rule"] for r in pq.read_table(dest / "dropped").to_pylist()}
    assert dropped == {"d1": "gopher_word_count", "d3": "duplicate:fuzzy-0.8"}
    assert markers.read_marker(dest / "documents" / RELATIVE).rows == 3
    on_disk = json.loads((dest / "_runs" / "filter" / "stats.json").read_text())
    assert on_disk["funnel"][0] == {"step": "input", "docs": 5}
    assert on_disk["funnel"][-1] == {"step": "duplicate:fuzzy-0.8", "dropped": 1, "docs": 3}
    before = (dest / "documents" / RELATIVE).read_bytes()
    again, stats2 = _run(tmp_path, dest, ["gopher"], dedup="fuzzy-0.8", keep_dropped=True)
    assert again.tasks_skipped == 1 and again.tasks_run == 0
    assert stats2["funnel"] == stats["funnel"]
    assert (dest / "documents" / RELATIVE).read_bytes() == before
    other, _ = _run(tmp_path, dest, ["rpv1"])  # other rules: redone, not reused
    assert other.tasks_run == 1
    assert not (dest / "dropped").exists()  # the gopher run's dropped rows are not left beside it


@pytest.fixture(scope="module")
def sample_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample") / "out"
    for args in (["ingest", "data/samples/inputs", "-o", str(root)], ["signals", str(root)]):
        subprocess.run(
            [sys.executable, "-m", "redpajama", *args, "--workers", "2"],
            check=True,
            capture_output=True,
            cwd=rule_sets.RULES_DIR.parents[1],
        )
    return root


def _hand_gopher(signals) -> np.ndarray:
    """Gopher's rules recomputed with numpy over the signal columns (NaN/None fail)."""
    col = {
        n: np.array([np.nan if v is None else v for v in signals.column(n).to_pylist()], dtype=float)
        for n in signals.schema.names
        if n.startswith("rps_doc")
    }
    bullets = signals.column("rps_lines_start_with_bulletpoint").to_pylist()
    frac = np.array([sum(s["score"] == 1 for s in b) / len(b) if b else np.nan for b in bullets])
    with np.errstate(invalid="ignore"):
        ok = (
            (col["rps_doc_word_count"] >= 50)
            & (col["rps_doc_word_count"] <= 100_000)
            & (col["rps_doc_mean_word_length"] >= 3)
            & (col["rps_doc_mean_word_length"] <= 10)
            & (col["rps_doc_symbol_to_word_ratio"] <= 0.1)
            & (frac <= 0.9)
            & (col["rps_doc_frac_lines_end_with_ellipsis"] <= 0.3)
            & (col["rps_doc_frac_no_alph_words"] <= 0.2)
            & (col["rps_doc_stop_word_fraction"] * col["rps_doc_word_count"] >= 2)
        )
        for n, t in ((2, 0.20), (3, 0.18), (4, 0.16)):
            ok &= col[f"rps_doc_frac_chars_top_{n}gram"] <= t
        for n, t in zip(range(5, 11), (0.15, 0.14, 0.13, 0.12, 0.11, 0.10), strict=True):
            ok &= col[f"rps_doc_frac_chars_dupe_{n}grams"] <= t
    return ok


def test_sample_drop_counts_match_a_hand_count(sample_tree, tmp_path):
    signals = pq.read_table(sample_tree / "quality_signals")
    ok = _hand_gopher(signals)
    _, stats = _run(sample_tree, tmp_path / "cur", ["gopher"])
    assert stats["funnel"][0]["docs"] == signals.num_rows
    assert stats["docs_kept"] == int(ok.sum())
    assert 0 < stats["docs_kept"] < signals.num_rows  # the sample exercises both sides
    kept = pq.read_table(tmp_path / "cur" / "documents").column("id").to_pylist()
    assert sorted(kept) == sorted(np.array(signals.column("id").to_pylist())[ok].tolist())
    wc = np.array([np.nan if v is None else v for v in signals.column("rps_doc_word_count").to_pylist()])
    with np.errstate(invalid="ignore"):
        hand_wc_failures = int((~((wc >= 50) & (wc <= 100_000))).sum())
    assert stats["rules"][0] == {"name": "no_signals", "failed": 0, "dropped_first": 0}
    assert stats["rules"][1] == {
        "name": "gopher_word_count",
        "failed": hand_wc_failures,
        "dropped_first": hand_wc_failures,
    }


def test_missing_signals_are_their_own_drop_reason_and_empty_signals_warned(tmp_path):
    from pathlib import Path

    no_wikiref = {**passing_signals(), "rps_doc_ml_wikiref_score": None}
    write_tree(tmp_path, [{"id": "a", "signals": no_wikiref}, {"id": "b", "signals": no_wikiref}])
    signals_file = tmp_path / "quality_signals" / RELATIVE  # as our writers write it: no statistics
    pq.write_table(pq.read_table(signals_file), signals_file, write_statistics=False)
    markers.write_marker(tmp_path, signals_file, 2)
    tail = Path("2023-14/0000/en_tail.parquet")
    write_tree(tmp_path, [{"id": "t", "signals": passing_signals()}], relative=tail)
    (tmp_path / "quality_signals" / tail).unlink()  # RPv2 ships no signals for the tail
    _, stats = _run(tmp_path, tmp_path / "cur", ["gopher"], keep_dropped=True)
    funnel = {step["step"]: step.get("dropped") for step in stats["funnel"]}
    assert funnel["no_signals"] == 1 and funnel["gopher_word_count"] == 0
    dropped = pq.read_table(tmp_path / "cur" / "dropped").to_pylist()
    assert [(r["id"], r["first_failed_rule"]) for r in dropped] == [("t", "no_signals")]
    assert stats["docs_kept"] == 2 and stats["warnings"] == []
    _, stats = _run(tmp_path, tmp_path / "cur-rpv1", ["rpv1"])
    assert stats["docs_kept"] == 0
    (warning,) = stats["warnings"]
    assert "rpv1_wikiref" in warning and "rps_doc_ml_wikiref_score" in warning


def test_exact_and_fuzzy_dedup_combined_keep_one_copy_of_every_group(tmp_path):
    # a1 == a2 (exact keeps a1) and both sit in a fuzzy cluster with c whose kept member is a2; e1 == e2
    # (exact keeps e1) in no fuzzy cluster; the cluster {f, g} keeps f; z is alone. Dropping both
    # lists would lose the whole a-group; combined, fuzzy decides inside its clusters, exact outside.
    ids = ["a1", "a2", "c", "e1", "e2", "f", "g", "z"]
    write_tree(tmp_path, [{"id": i, "signals": passing_signals()} for i in ids])
    write_duplicates(tmp_path, "exact", ["a2", "e2"])
    write_duplicates(tmp_path, "fuzzy-0.8", ["a1", "c", "g"])
    write_clusters(tmp_path, "fuzzy-0.8", [["a1", "a2", "c"], ["f", "g"]])
    for modes in (("exact", "fuzzy-0.8"), ("fuzzy-0.8", "exact")):  # the order given does not matter
        dest = tmp_path / f"cur-{modes[0]}"
        _, stats = _run(tmp_path, dest, [], dedup=modes, keep_dropped=True)
        kept = pq.read_table(dest / "documents", columns=["id"]).column("id").to_pylist()
        assert kept == ["a2", "e1", "f", "z"]
        dropped = pq.read_table(dest / "dropped", columns=["id", "first_failed_rule"]).to_pylist()
        assert {r["id"]: r["first_failed_rule"] for r in dropped} == {
            "a1": "duplicate:fuzzy-0.8",
            "c": "duplicate:fuzzy-0.8",
            "g": "duplicate:fuzzy-0.8",
            "e2": "duplicate:exact",
        }
        assert [(s["step"], s["docs"]) for s in stats["funnel"]] == [
            ("input", 8),
            ("duplicate:fuzzy-0.8", 5),
            ("duplicate:exact", 4),
        ]
        assert stats["dedup"] == "fuzzy-0.8+exact"
    # Without the clusters the combination cannot be decided; two fuzzy modes are refused.
    import shutil

    from redpajama.errors import UserError

    write_duplicates(tmp_path, "fuzzy-0.9", ["a1"])
    with pytest.raises(UserError, match="exact and one fuzzy mode"):
        _run(tmp_path, tmp_path / "two-fuzzy", [], dedup=("fuzzy-0.8", "fuzzy-0.9"))
    shutil.rmtree(tmp_path / "clusters")
    with pytest.raises(UserError, match="needs the fuzzy clusters"):
        _run(tmp_path, tmp_path / "no-clusters", [], dedup=("exact", "fuzzy-0.8"))


def test_two_dedup_modes_from_the_cli(tmp_path):
    write_tree(
        tmp_path, [{"id": "a", "signals": passing_signals()}, {"id": "b", "signals": passing_signals()}]
    )
    write_duplicates(tmp_path, "exact", ["b"])
    write_duplicates(tmp_path, "fuzzy-0.8", [])
    write_clusters(tmp_path, "fuzzy-0.8", [])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "redpajama",
            "filter",
            str(tmp_path),
            "--dedup",
            "exact",
            "--dedup",
            "fuzzy-0.8",
        ]
        + ["-o", str(tmp_path / "cur"), "--format", "json"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["docs_kept"] == 1


def test_a_damaged_signals_file_fails_its_own_documents_file_only(tmp_path):
    other = RELATIVE.with_name("de_head.parquet")
    write_tree(tmp_path, [{"id": "a", "signals": passing_signals()}])
    write_tree(tmp_path, [{"id": "b", "signals": passing_signals()}], relative=other)
    damaged = tmp_path / "quality_signals" / RELATIVE
    damaged.write_bytes(damaged.read_bytes()[:-100])
    summary, _ = _run(tmp_path, tmp_path / "cur", ["gopher"])
    key = f"documents/{RELATIVE.as_posix()}"
    assert list(summary.failed) == [key] and summary.tasks_run == 1
    assert f"{damaged}: " in summary.failed[key] and "damaged since" in summary.failed[key]
    assert pq.read_table(tmp_path / "cur" / "documents").column("id").to_pylist() == ["b"]
