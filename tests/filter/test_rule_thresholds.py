"""Every shipped document rule on documents just inside and just outside its threshold."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from filter_helpers import lines, passing_signals, write_tree

from redpajama.errors import UserError
from redpajama.pipelines import filter as stage
from redpajama.pipelines import rules as rule_sets
from redpajama.runners.local import RunOptions


def _bullets(n_bullet: int, n: int) -> list[dict]:
    return [dict(s, score=1.0 if i < n_bullet else 0.0) for i, s in enumerate(lines(n))]


def _punct(n_punct: int, n: int = 100) -> dict:
    spans = [dict(s, score=1.0 if i < n_punct else 0.0) for i, s in enumerate(lines(n))]
    # An empty line (just "\n") never counts for FineWeb's ratios.
    spans.append({"start": n * 50, "end": n * 50 + 1, "score": 0.0})
    return {"rps_lines_ending_with_terminal_punctution_mark": spans}


def _short(n_short: int, n: int = 100) -> dict:
    spans, pos = [], 0
    for i in range(n):
        length = 30 if i < n_short else 31  # a span of 30 includes the newline: 29 characters
        spans.append({"start": pos, "end": pos + length, "score": 5.0})
        pos += length
    return {"rps_lines_num_words": spans}


# rule -> (signals just inside, signals just outside)
CASES: dict[str, list[tuple[dict, dict]]] = {
    "gopher_word_count": [
        ({"rps_doc_word_count": 50}, {"rps_doc_word_count": 49}),
        ({"rps_doc_word_count": 100_000}, {"rps_doc_word_count": 100_001}),
        ({"rps_doc_word_count": 500}, {"rps_doc_word_count": None}),
    ],
    "gopher_mean_word_length": [
        ({"rps_doc_mean_word_length": 3.0}, {"rps_doc_mean_word_length": 2.999}),
        ({"rps_doc_mean_word_length": 10.0}, {"rps_doc_mean_word_length": 10.001}),
    ],
    "gopher_symbol_to_word": [
        ({"rps_doc_symbol_to_word_ratio": 0.1}, {"rps_doc_symbol_to_word_ratio": 0.1001})
    ],
    "gopher_bullet_lines": [
        (
            {"rps_lines_start_with_bulletpoint": _bullets(9, 10)},
            {"rps_lines_start_with_bulletpoint": _bullets(19, 20)},
        )
    ],
    "gopher_ellipsis_lines": [
        ({"rps_doc_frac_lines_end_with_ellipsis": 0.3}, {"rps_doc_frac_lines_end_with_ellipsis": 0.3001})
    ],
    "gopher_alpha_words": [({"rps_doc_frac_no_alph_words": 0.2}, {"rps_doc_frac_no_alph_words": 0.2001})],
    "gopher_stop_words": [
        (
            {"rps_doc_word_count": 100, "rps_doc_stop_word_fraction": 0.02},
            {"rps_doc_word_count": 100, "rps_doc_stop_word_fraction": 0.0199},
        )
    ],
    **{
        f"gopher_top_{n}gram": [
            ({f"rps_doc_frac_chars_top_{n}gram": t}, {f"rps_doc_frac_chars_top_{n}gram": t + 1e-4})
        ]
        for n, t in ((2, 0.20), (3, 0.18), (4, 0.16))
    },
    **{
        f"gopher_dupe_{n}gram": [
            ({f"rps_doc_frac_chars_dupe_{n}grams": t}, {f"rps_doc_frac_chars_dupe_{n}grams": t + 1e-4})
        ]
        for n, t in zip(range(5, 11), (0.15, 0.14, 0.13, 0.12, 0.11, 0.10), strict=True)
    },
    "c4_min_sentences": [({"rps_doc_num_sentences": 3.0}, {"rps_doc_num_sentences": 2.0})],
    "c4_no_bad_words": [({"rps_doc_ldnoobw_words": 0.0}, {"rps_doc_ldnoobw_words": 1.0})],
    "c4_no_lorem_ipsum": [({"rps_doc_lorem_ipsum": 0.0}, {"rps_doc_lorem_ipsum": 0.001})],
    "c4_no_curly_bracket": [({"rps_doc_curly_bracket": 0.0}, {"rps_doc_curly_bracket": 0.001})],
    "rpv1_wikiref": [({"rps_doc_ml_wikiref_score": 0.25}, {"rps_doc_ml_wikiref_score": 0.2499})],
    "fineweb_line_punct": [(_punct(13), _punct(12))],
    "fineweb_short_lines": [(_short(66), _short(67))],
}
SETS = ["gopher", "c4", "rpv1", "fineweb"]


def test_every_shipped_document_rule_has_a_case():
    shipped = {r.name for r in rule_sets.resolve(SETS)}
    assert shipped == set(CASES)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    rows = [{"id": "baseline", "signals": passing_signals()}]
    for rule, cases in CASES.items():
        for n, (inside, outside) in enumerate(cases):
            rows.append({"id": f"{rule}/{n}/in", "signals": {**passing_signals(), **inside}})
            rows.append({"id": f"{rule}/{n}/out", "signals": {**passing_signals(), **outside}})
    write_tree(root, rows)
    config = stage.FilterConfig(source=str(root), rules=tuple(rule_sets.resolve(SETS)), keep_dropped=True)
    stage.run(root / "curated", config, RunOptions(workers=1))
    kept = pq.read_table(root / "curated" / "documents").to_pylist()
    dropped = pq.read_table(root / "curated" / "dropped").to_pylist()
    return {r["id"]: r["first_failed_rule"] for r in kept + dropped}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_threshold(judged, rule):
    for n in range(len(CASES[rule])):
        assert judged[f"{rule}/{n}/in"] is None, f"{rule} case {n} inside should be kept"
        assert judged[f"{rule}/{n}/out"] == rule, f"{rule} case {n} outside should fail {rule}"
    assert judged["baseline"] is None


def test_every_rule_cites_its_source():
    for rules in rule_sets.shipped().values():
        for rule in rules:
            assert rule.citation and rule.description, rule.name


def test_user_rules_unknown_keys_and_bad_names_are_errors(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("rules:\n  - {name: a, sql: x > 1, threshold: 3}\n")
    with pytest.raises(UserError, match="unknown key"):
        rule_sets.resolve([str(bad)])
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - {name: long_docs, sql: rps_doc_word_count > 100}\n")
    assert [r.name for r in rule_sets.resolve([str(good)], ["short=rps_doc_word_count < 5"])] == [
        "long_docs",
        "short",
    ]
    with pytest.raises(UserError):
        rule_sets.parse_inline("no equals sign")
    with pytest.raises(UserError, match="unknown rule set"):
        rule_sets.resolve(["gopher-typo"])
