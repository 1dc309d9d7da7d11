"""Hand-computed values of the heuristic RPv2 signals on small edge cases (REFERENCE A.1.9)."""

from __future__ import annotations

import math
import time

import pytest

from redpajama.quality_signals.registry import SIGNALS, compute
from redpajama.quality_signals.resources import Resources
from redpajama.quality_signals.view import DocView


def sig(text: str, name: str, language: str | None = "en", resources: Resources | None = None, domain=None):
    return compute(DocView(text, language, domain), resources, names=[name])[name]


def scores(text: str, name: str, **kw) -> list:
    return [s[2] for s in sig(text, name, **kw)]


# ------------------------------------------------------------------------- empty and whitespace
def test_empty_document():
    got = compute(DocView("", "en"))
    assert set(got) == set(SIGNALS)
    assert got["rps_doc_word_count"] == 0 and type(got["rps_doc_word_count"]) is int
    for name in (
        "rps_doc_mean_word_length",
        "rps_doc_symbol_to_word_ratio",
        "rps_doc_frac_lines_end_with_ellipsis",
        "rps_doc_frac_no_alph_words",
        "rps_doc_frac_unique_words",
        "rps_doc_unigram_entropy",
        "rps_doc_frac_all_caps_words",
        "rps_doc_ut1_blacklist",
    ):
        assert got[name] is None, name
    for name in (
        "rps_doc_num_sentences",
        "rps_doc_stop_word_fraction",
        "rps_doc_lorem_ipsum",
        "rps_doc_curly_bracket",
        "rps_doc_ldnoobw_words",
        "rps_doc_frac_chars_top_2gram",
        "rps_doc_frac_chars_dupe_5grams",
    ):
        assert got[name] == 0.0 and type(got[name]) is float, name
    # no lines: empty span lists, except the bullet-point signal's single null span
    assert got["rps_lines_num_words"] == []
    assert got["rps_lines_uppercase_letter_fraction"] == []
    assert got["rps_lines_start_with_bulletpoint"] == [(0, 0, None)]


def test_whitespace_only():
    text = "  \t \n\n"
    got = compute(DocView(text, "en"))
    assert got["rps_doc_word_count"] == 0
    assert got["rps_doc_frac_no_alph_words"] is None  # no raw words
    assert got["rps_doc_frac_lines_end_with_ellipsis"] == 0.0  # 2 lines, none with ellipsis
    assert got["rps_lines_num_words"] == [(0, 5, 0), (5, 6, 0)]
    assert got["rps_lines_ending_with_terminal_punctution_mark"] == [(0, 5, 0.0), (5, 6, 0.0)]


# ------------------------------------------------------------------------- lines
def test_line_spans_crlf_and_no_trailing_newline():
    text = "Line one.\r\nLine two!\r\nno end"
    spans = sig(text, "rps_lines_ending_with_terminal_punctution_mark")
    assert spans == [(0, 11, 1.0), (11, 22, 1.0), (22, 28, 0.0)]
    # the uppercase denominator counts the trailing "\r\n"
    assert scores(text, "rps_lines_uppercase_letter_fraction") == [round(1 / 11, 8), round(1 / 11, 8), 0.0]
    assert scores(text, "rps_lines_num_words") == [2, 2, 2]
    assert all(type(s) is int for s in scores(text, "rps_lines_num_words"))


def test_empty_lines_count():
    text = "a\n\n\nb...\n"
    assert [s[:2] for s in sig(text, "rps_lines_num_words")] == [(0, 2), (2, 3), (3, 4), (4, 9)]
    assert sig(text, "rps_doc_frac_lines_end_with_ellipsis") == 0.25  # empty lines in the denominator


def test_terminal_punctuation_marks():
    text = "a.\nb!  \nc?\nd\u201d\ne\u201c\nf,\n"
    assert scores(text, "rps_lines_ending_with_terminal_punctution_mark") == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_bullets():
    text = "\u2022 a\n  \u2013 b\n- c\n\u25aa d\n* e\n"
    assert scores(text, "rps_lines_start_with_bulletpoint") == [1.0, 1.0, 0.0, 1.0, 0.0]


def test_javascript_counts():
    text = "Please enable JavaScript.\njavascript x JAVASCRIPT\njava-script java script\n"
    # normalized lines: "please enable javascript", "javascript x javascript", "javascript java script"
    assert scores(text, "rps_lines_javascript_counts") == [1.0, 2.0, 1.0]


def test_numerical_chars_fraction_uses_normalized_line():
    # "ab, 12!" -> "ab 12": 2 numeric of 5 chars; "½ ⅻ" are numeric too
    assert scores("ab, 12!\n\u00bd \u216b\n...\n", "rps_lines_numerical_chars_fraction") == [
        0.4,
        round(2 / 3, 8),
        0.0,
    ]


def test_uppercase_fraction():
    assert scores("AB\nAbcd", "rps_lines_uppercase_letter_fraction") == [round(2 / 3, 8), 0.25]


# ------------------------------------------------------------------------- natural language
def test_accents_nfd_lengths():
    # "Café" normalizes to NFD: 5 code points
    assert sig("Café", "rps_doc_mean_word_length") == 5.0
    assert sig("Café", "rps_doc_word_count") == 1
    # decomposed input: the combining mark is its own WordPunct token (stdlib re: not \w)
    assert sig("Cafe\u0301", "rps_doc_frac_no_alph_words") == 0.5


def test_cjk():
    text = "中文测试。这是"
    assert sig(text, "rps_doc_word_count") == 1
    assert sig(text, "rps_doc_mean_word_length") == 7.0
    assert sig(text, "rps_doc_num_sentences") == 1.0  # "。" is not a separator
    assert sig(text, "rps_doc_frac_no_alph_words") == 1.0  # tokens 中文测试, 。, 这是


def test_ellipsis_and_symbols():
    text = "Wait...\nthen\u2026\nend\n"
    assert sig(text, "rps_doc_frac_lines_end_with_ellipsis") == round(2 / 3, 8)
    # tokens: Wait, ..., then, …, end -> (1 "..." + 1 "…") / 5
    assert sig(text, "rps_doc_symbol_to_word_ratio") == 0.4
    # "...." counts once, "#" counts
    assert sig("a.... #b", "rps_doc_symbol_to_word_ratio") == round(2 / 4, 8)


def test_all_caps_words():
    assert sig("THIS IS A1 ok", "rps_doc_frac_all_caps_words") == 0.75
    assert sig("I am", "rps_doc_frac_all_caps_words") == 0.5


def test_num_sentences_splits_on_every_dot():
    # runs: "3", "14 is pi", " e", "g", " this"
    assert sig("3.14 is pi. e.g. this", "rps_doc_num_sentences") == 5.0
    assert sig("...!!!", "rps_doc_num_sentences") == 0.0


def test_unique_and_entropy():
    assert sig("a b a b", "rps_doc_frac_unique_words") == 0.5
    assert sig("a b a b", "rps_doc_unigram_entropy") == round(math.log(2), 8)


def test_stop_words_case_sensitive_and_language():
    assert sig("The the THE", "rps_doc_stop_word_fraction") == round(1 / 3, 8)
    assert sig("der Hund und die Katze", "rps_doc_stop_word_fraction", language="de") == 0.6
    # unknown language and None fall back to English stop words
    assert sig("the cat", "rps_doc_stop_word_fraction", language=None) == 0.5
    assert sig("the cat", "rps_doc_stop_word_fraction", language="xx") == 0.5
    assert sig("the cat", "rps_doc_stop_word_fraction", language="en-US") == 0.5


def test_lorem_ipsum_and_curly_bracket():
    assert sig("Lorem ipsum dolor", "rps_doc_lorem_ipsum") == round(1 / 17, 8)
    assert sig("lorem-ipsum", "rps_doc_lorem_ipsum") == 0.0  # punctuation removed: "loremipsum"
    assert sig("{a}", "rps_doc_curly_bracket") == round(2 / 3, 8)


# ------------------------------------------------------------------------- repetitions
def test_top_ngram_overlaps_exceed_one():
    text = "a a a a a"
    assert sig(text, "rps_doc_frac_chars_top_2gram") == 1.6
    assert sig(text, "rps_doc_frac_chars_top_3gram") == 1.8
    assert sig(text, "rps_doc_frac_chars_top_4gram") == 1.6
    assert sig(text, "rps_doc_frac_chars_dupe_5grams") == 0.0  # a single 5-gram


def test_top_ngram_tie_goes_to_first_seen():
    # (aaa, b) and (c, d) both occur twice; Counter.most_common picks the one seen first
    assert sig("aaa b aaa b c d c d", "rps_doc_frac_chars_top_2gram") == round(4 * 2 / 12, 8)
    assert sig("c d c d aaa b aaa b", "rps_doc_frac_chars_top_2gram") == round(2 * 2 / 12, 8)
    assert sig("a b c d", "rps_doc_frac_chars_top_2gram") == 0.0


def test_dupe_ngrams_cover_overlaps_once():
    text = "x y z x y z x y z"
    assert sig(text, "rps_doc_frac_chars_dupe_5grams") == 1.0
    assert sig(text, "rps_doc_frac_chars_dupe_6grams") == 1.0
    assert sig(text, "rps_doc_frac_chars_dupe_7grams") == 0.0
    # 5-gram "one two three four five" twice, separated: 10 of the 11 words' chars
    text = "one two three four five x one two three four five"
    expected = round(2 * len("onetwothreefourfive") / len("onetwothreefourfivexonetwothreefourfive"), 8)
    assert sig(text, "rps_doc_frac_chars_dupe_5grams") == expected
    assert sig(text, "rps_doc_frac_chars_dupe_6grams") == 0.0


# ------------------------------------------------------------------------- content
def _res(ldnoobw=None, ut1=None) -> Resources:
    base = Resources.load()
    return Resources(stop_words=base.stop_words, ldnoobw=ldnoobw or base.ldnoobw, ut1=ut1)


def test_ldnoobw_counts_words_and_phrases():
    res = _res(ldnoobw={"en": frozenset({"foo", "foo bar", "x y z"})})
    assert sig("Foo bar, foo! x y z y z", "rps_doc_ldnoobw_words", resources=res) == 4.0
    # entries are not normalized: a precomposed accent never matches the NFD words
    res = _res(ldnoobw={"en": frozenset({"café"})})
    assert sig("café", "rps_doc_ldnoobw_words", resources=res) == 0.0
    # languages without a list count nothing
    res = _res(ldnoobw={"en": frozenset({"foo"})})
    assert sig("foo", "rps_doc_ldnoobw_words", language="ru", resources=res) == 0.0
    assert sig("foo", "rps_doc_ldnoobw_words", language=None, resources=res) == 1.0


def test_ut1_exact_domain_lookup():
    res = _res(ut1={"bad.example": 23})
    assert sig("x", "rps_doc_ut1_blacklist", resources=res, domain="bad.example") == 23
    assert sig("x", "rps_doc_ut1_blacklist", resources=res, domain="www.bad.example") is None
    assert sig("x", "rps_doc_ut1_blacklist", resources=res, domain=None) is None
    assert sig("x", "rps_doc_ut1_blacklist", domain="bad.example") is None  # no map configured


# ------------------------------------------------------------------------- big input
def test_one_megabyte_document():
    line = "The quick brown fox jumps over the lazy dog. 123 {x}\u2026\n"
    text = (line * (1_000_000 // len(line) + 1))[:1_000_000]
    t0 = time.perf_counter()
    got = compute(DocView(text, "en"))
    elapsed = time.perf_counter() - t0
    assert elapsed < 30
    assert got["rps_doc_word_count"] > 150_000
    assert 0.0 <= got["rps_doc_frac_chars_dupe_10grams"] <= 1.0
    assert got["rps_doc_frac_chars_dupe_5grams"] > 0.99
    assert len(got["rps_lines_num_words"]) == text.count("\n") + 1
    assert got["rps_doc_frac_lines_end_with_ellipsis"] > 0.99


@pytest.mark.parametrize("name", list(SIGNALS))
def test_every_signal_returns_its_declared_kind(name):
    value = sig("Hello World.\nSecond line 42!\n", name)
    if SIGNALS[name].level == "line":
        assert isinstance(value, list) and all(len(s) == 3 for s in value)
    else:
        assert value is None or isinstance(value, int | float)
