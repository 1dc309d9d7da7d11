"""Rule sets for the survival funnel: named SQL predicates over the columns of the `signals` view.

The shipped rule sets live in `redpajama.pipelines.rules` (the `filter` stage's). Until that
module is importable this file's small stand-in list is used, so the report works on its own;
`load` says which source it used. A predicate is TRUE for a document the rule keeps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    predicate: str  # SQL over signals columns; TRUE = kept


def _gopher_dupes() -> list[Rule]:
    # Gopher (Rae et al. 2021, Table A1): fraction of characters in duplicated n-grams.
    limits = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    return [Rule(f"dupe_{n}grams", f"rps_doc_frac_chars_dupe_{n}grams <= {v}") for n, v in limits.items()]


# Stand-in thresholds, from the papers as RPv2's README applies them to its signals.
_LOCAL: dict[str, tuple[Rule, ...]] = {
    "gopher": (
        Rule("word_count", "rps_doc_word_count BETWEEN 50 AND 100000"),
        Rule("mean_word_length", "rps_doc_mean_word_length BETWEEN 3 AND 10"),
        Rule("symbol_to_word_ratio", "rps_doc_symbol_to_word_ratio <= 0.1"),
        Rule("lines_end_with_ellipsis", "rps_doc_frac_lines_end_with_ellipsis <= 0.3"),
        Rule("no_alph_words", "rps_doc_frac_no_alph_words <= 0.2"),
        Rule("top_2gram", "rps_doc_frac_chars_top_2gram <= 0.20"),
        Rule("top_3gram", "rps_doc_frac_chars_top_3gram <= 0.18"),
        Rule("top_4gram", "rps_doc_frac_chars_top_4gram <= 0.16"),
        *_gopher_dupes(),
        Rule(
            "bullet_lines",
            "coalesce(list_avg([s.score FOR s IN rps_lines_start_with_bulletpoint]), 0) <= 0.9",
        ),
    ),
    # C4 (Raffel et al. 2020, section 2.2), its document-level rules.
    "c4": (
        Rule("curly_bracket", "rps_doc_curly_bracket = 0"),
        Rule("lorem_ipsum", "rps_doc_lorem_ipsum = 0"),
        Rule("bad_words", "rps_doc_ldnoobw_words = 0"),
        Rule("num_sentences", "rps_doc_num_sentences >= 3"),
    ),
    # RedPajama-V1's Wikipedia-reference classifier cut.
    "rpv1": (Rule("wikiref", "rps_doc_ml_wikiref_score >= 0.25"),),
}


def _from_pipelines(names: list[str]) -> tuple[list[Rule], list[str]] | None:
    """(document rules, names of line rules) from the filter stage's rule sets, if installed."""
    try:
        from redpajama.pipelines import rules as shipped
    except ImportError:
        return None
    chosen = shipped.resolve(names)  # raises UserError (one line + hint) on an unknown name
    # Line rules rewrite raw_content line by line instead of dropping documents: not a funnel step.
    doc = [Rule(r.name, r.sql) for r in chosen if getattr(r, "level", "document") == "document"]
    return doc, [r.name for r in chosen if getattr(r, "level", "document") != "document"]


def load(names: list[str]) -> tuple[list[Rule], str, list[str]]:
    """Document rules of the named sets in order, where they came from, and skipped line rules."""
    found = _from_pipelines(names)
    if found is not None:
        return found[0], "redpajama.pipelines.rules", found[1]
    rules: list[Rule] = []
    for name in names:
        if name not in _LOCAL:
            raise ValueError(f"unknown rule set {name!r} (known: {', '.join(sorted(_LOCAL))})")
        rules += [Rule(f"{name}_{r.name}", r.predicate) for r in _LOCAL[name]]
    return rules, "the report's stand-in list (redpajama.pipelines.rules is not installed)", []
