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


def _text_and_spans(texts: list[str], trailing_newline: bool) -> tuple[str, list[dict]]:
    """A document of these lines and RPv2's line spans over it (each span keeps its newline)."""
    text = "\n".join(texts) + ("\n" if trailing_newline else "")
    spans, pos = [], 0
    for i, line in enumerate(texts):
        end = pos + len(line) + (i < len(texts) - 1 or trailing_newline)
        spans.append({"start": pos, "end": end, "score": 0.0})
        pos = end
    return text, spans


def _punct(n_punct: int, n: int = 100) -> dict:
    # n lines and an empty one, the text ending in a newline: datatrove counts n + 2 lines (the
    # empty one and the empty string after the last newline), neither ending with punctuation.
    text, spans = _text_and_spans(["x" * 40] * (n // 2) + [""] + ["x" * 40] * (n - n // 2), True)
    marked = [i for i, s in enumerate(spans) if s["end"] - s["start"] > 1][:n_punct]
    for i in marked:
        spans[i]["score"] = 1.0
    return {"rps_lines_ending_with_terminal_punctution_mark": spans, "raw_content": text}


def _stop_words(n_stop: int) -> dict:
    # 2 raw tokens more than normalized words (a final "." and the em dash), non-ASCII letters and
    # a no-break space: fraction x word count stays below 2 though the text holds 2 stop words, and
    # the rule counts the raw (WordPunct) tokens of raw_content again.
    import re

    words = ["the", "of"][:n_stop] + ["café"] * (58 - n_stop)
    text = " ".join(words) + " naïve\u00a0x—y."
    raw = re.findall(r"\w+|[^\w\s]+", text)
    assert len(raw) == 63 and len(text.split()) == 60
    # RPv2 normalizes "x—y." to one word ("x—y": the em dash is not ASCII punctuation).
    return {
        "raw_content": text,
        "rps_doc_word_count": 60,
        "rps_doc_stop_word_fraction": round(n_stop / len(raw), 8),
    }


def _short(n_short: int, n: int = 100, trailing_newline: bool = False) -> dict:
    # Short lines are <= 30 characters; they come last, so the last line (no newline after it
    # unless trailing_newline) is one of them. A trailing newline adds an empty, short line.
    text, spans = _text_and_spans(["y" * 31] * (n - n_short) + ["z" * 30] * n_short, trailing_newline)
    return {"rps_lines_num_words": [dict(s, score=5.0) for s in spans], "raw_content": text}


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
        ),
        # An empty document: RPv2's one span with a NULL score; a NULL signal fails.
        (
            {"rps_lines_start_with_bulletpoint": _bullets(0, 1)},
            {"rps_lines_start_with_bulletpoint": [{"start": 0, "end": 0, "score": None}]},
        ),
    ],
    "gopher_ellipsis_lines": [
        ({"rps_doc_frac_lines_end_with_ellipsis": 0.3}, {"rps_doc_frac_lines_end_with_ellipsis": 0.3001})
    ],
    "gopher_alpha_words": [({"rps_doc_frac_no_alph_words": 0.2}, {"rps_doc_frac_no_alph_words": 0.2001})],
    "gopher_stop_words": [
        (
            {"rps_doc_word_count": 100, "rps_doc_stop_word_fraction": 0.02},
            {"rps_doc_word_count": 100, "rps_doc_stop_word_fraction": 0.0199},
        ),
        # 2 stop words in 60 words, the fraction rounded to 8 decimals: 0.03333333 x 60 < 2
        (
            {"rps_doc_word_count": 60, "rps_doc_stop_word_fraction": 0.03333333},
            {"rps_doc_word_count": 60, "rps_doc_stop_word_fraction": 0.01666667},
        ),
        # 2 stop words among 63 raw tokens: 0.03174603 x 60 = 1.905, kept on the raw count
        (_stop_words(2), _stop_words(1)),
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
    # 98 lines, the empty one and the empty tail: 13 of 100 kept, 12 of 100 dropped (12 of the
    # 98 non-empty lines would be 0.122, kept)
    "fineweb_line_punct": [
        (_punct(13, 98), _punct(12, 98)),
        # No line at all: 0 / 0 fails (DuckDB's NaN would compare above 0.12)
        (_punct(13, 98), {"rps_lines_ending_with_terminal_punctution_mark": [], "raw_content": ""}),
    ],
    # 66 of 100 kept, 67 dropped; with a trailing newline 65 + 1 of 100 kept, 66 + 1 dropped
    "fineweb_short_lines": [(_short(66), _short(67)), (_short(65, 99, True), _short(66, 99, True))],
}
SETS = ["gopher", "c4", "rpv1", "fineweb"]


def test_every_shipped_document_rule_has_a_case():
    shipped = {r.name for r in rule_sets.resolve(SETS)}
    assert shipped == set(CASES)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    rows = [{"id": "baseline", "signals": passing_signals()}]

    def row(doc_id: str, case: dict) -> dict:
        signals = {k: v for k, v in case.items() if k != "raw_content"}
        text = {"raw_content": case["raw_content"]} if "raw_content" in case else {}
        return {"id": doc_id, "signals": {**passing_signals(), **signals}, **text}

    for rule, cases in CASES.items():
        for n, (inside, outside) in enumerate(cases):
            rows.append(row(f"{rule}/{n}/in", inside))
            rows.append(row(f"{rule}/{n}/out", outside))
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
