"""WikiText-2 and held-out perplexity: lm-eval's document split, detokenizer and denominators."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from test_eval_fakes import BigramModel, ByteTokenizer, random_table, uniform_model

from redpajama.errors import UserError
from redpajama.training.evaluation.perplexity import (
    WIKITEXT_FOLDER,
    held_out,
    load_wikitext,
    wikitext2,
    wikitext_detokenize,
    wikitext_documents,
    word_count,
)

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

SMALL_WIKITEXT = (
    " \n = Alpha = \n \n Alpha is a 1 @,@ 000 @-@ year old ( test ) . \n \n"
    ' = = History = = \n \n It \'s " quoted " , yes . \n \n'
    " = Beta = \n \n Beta . \n"
)


def test_documents_split_at_top_level_headings_only() -> None:
    pages = wikitext_documents(SMALL_WIKITEXT)
    assert len(pages) == 2
    assert pages[0].startswith(" = Alpha = ") and "= = History = =" in pages[0]
    assert pages[1] == " = Beta = \n \n Beta . \n"  # the leading blank line alone is not a page


def test_detokenizer_rules() -> None:
    assert wikitext_detokenize(" Alpha is a 1 @,@ 000 @-@ year old ( test ) . \n") == (
        " Alpha is a 1,000-year old (test).\n"
    )
    assert wikitext_detokenize('It \'s " quoted " , yes . ') == 'It\'s "quoted", yes. '
    assert wikitext_detokenize(" = = History = = \n") == " == History ==\n"
    assert wikitext_detokenize("players ' union") == "players' union"


def test_word_count_follows_lm_eval_split() -> None:
    # re.split keeps the empty strings at both ends: 3 words + 2 = 5.
    assert word_count(" a b  c\n") == 5
    assert word_count("a b") == 2


def test_wikitext2_hand_computed_with_a_uniform_model(tmp_path: Path) -> None:
    folder = tmp_path / WIKITEXT_FOLDER
    folder.mkdir()
    (folder / "test.txt").write_text(SMALL_WIKITEXT, encoding="utf-8")
    tokenizer = ByteTokenizer()
    result = wikitext2(
        uniform_model(tokenizer.vocab_size), tokenizer, "test", max_len=16, batch_size=3, data_dir=tmp_path
    )
    pages = wikitext_documents(SMALL_WIKITEXT)
    n_tokens = sum(len(wikitext_detokenize(page).encode("utf-8")) for page in pages)
    n_words = sum(len(re.split(r"\s+", page)) for page in pages)
    n_bytes = sum(len(page.encode("utf-8")) for page in pages)
    nll = n_tokens * math.log(257)  # every byte, the first included, costs log V
    assert (result["n_documents"], result["n_tokens"], result["n_words"], result["n_bytes"]) == (
        2,
        n_tokens,
        n_words,
        n_bytes,
    )
    assert result["token_perplexity"] == pytest.approx(257.0, rel=1e-5)
    assert result["word_perplexity"] == pytest.approx(math.exp(nll / n_words), rel=1e-5)
    assert result["byte_perplexity"] == pytest.approx(math.exp(nll / n_bytes), rel=1e-5)
    assert result["bits_per_byte"] == pytest.approx(nll / n_bytes / math.log(2), rel=1e-5)
    limited = wikitext2(uniform_model(257), tokenizer, "test", max_len=16, max_documents=1, data_dir=tmp_path)
    assert limited["n_documents"] == 1 and limited["n_bytes"] == len(pages[0].encode("utf-8"))


def test_real_wikitext_splits_into_lm_evals_articles() -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip("shared data not found")
    test_pages = load_wikitext("test", SHARED_DATA)
    valid_pages = load_wikitext("validation", SHARED_DATA)
    # lm-eval's wikitext_document_level has 62 test and 60 validation articles.
    assert (len(test_pages), len(valid_pages)) == (62, 60)
    assert test_pages[0].startswith(" = Robert <unk> = ")
    # Nothing is lost: the pages joined back are the file, minus the blank line before the first heading.
    text = (SHARED_DATA / WIKITEXT_FOLDER / "test.txt").read_text(encoding="utf-8")
    assert "\n".join(test_pages) == text[text.index(" = Robert") :]


def test_unknown_split_and_missing_folder_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown WikiText-2 split 'train'"):
        load_wikitext("train", tmp_path)
    with pytest.raises(UserError, match="lm-wikitext-2-valid-test not found"):
        load_wikitext("test", tmp_path)


def test_held_out_loss_and_perplexity_by_hand() -> None:
    table = random_table(6, seed=2)
    windows = [torch.tensor([[1, 2, 3, 4], [5, 5, 0, 1]]), torch.tensor([[2, 2, 2, 3]])]
    expected_nll = -sum(
        float(table[a, b])
        for window in windows
        for row in window.tolist()
        for a, b in zip(row, row[1:], strict=False)
    )
    result = held_out(BigramModel(table), iter(windows))
    assert (result["n_tokens"], result["n_windows"]) == (9, 3)
    assert result["loss"] == pytest.approx(expected_nll / 9, abs=1e-6)
    assert result["token_perplexity"] == pytest.approx(math.exp(expected_nll / 9), rel=1e-6)
    uniform = held_out(uniform_model(6), windows, max_windows=1)
    assert uniform["n_tokens"] == 6 and uniform["token_perplexity"] == pytest.approx(6.0, rel=1e-6)
    with pytest.raises(UserError, match="no held-out windows"):
        held_out(BigramModel(table), [])
