"""BLiMP: reading the real archive, and pair choices from hand-set bigram probabilities."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch
from test_eval_fakes import BigramModel, ByteTokenizer, CharTokenizer, random_table

from redpajama.errors import UserError
from redpajama.training.evaluation.blimp import BLIMP_ARCHIVE, BLIMP_FOLDER, evaluate, load_blimp, score_pairs

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ARCHIVE = SHARED_DATA / BLIMP_FOLDER / BLIMP_ARCHIVE

# Tokens: EOS=0, a=1, b=2, space=3; row = previous token.
PROBS = torch.tensor(
    [
        [0.1, 0.1, 0.1, 0.7],
        [0.1, 0.1, 0.7, 0.1],
        [0.4, 0.2, 0.2, 0.2],
        [0.1, 0.5, 0.3, 0.1],
    ]
)


def needs_archive() -> None:
    if not ARCHIVE.is_file():
        pytest.skip("shared BLiMP archive not found")


def test_pairs_by_hand_and_ties_count_as_wrong() -> None:
    model = BigramModel(PROBS.log())
    # " ab" = .7 * .5 * .7 beats " ba" = .7 * .3 * .2; " a" = .7 * .5 beats " ab" (one more factor).
    pairs = [("ab", "ba"), ("ba", "ab"), ("ab", "ab"), ("a", "ab")]
    assert score_pairs(model, CharTokenizer("ab "), pairs, batch_size=3) == [True, False, False, True]


def test_real_archive_has_67_paradigms_of_1000_pairs() -> None:
    needs_archive()
    data = load_blimp(archive=ARCHIVE)
    assert len(data) == 67
    assert {len(pairs) for pairs in data.values()} == {1000}
    assert list(data) == sorted(data)
    assert data["adjunct_island"][0] == (
        "Who should Derek hug after shocking Richard?",
        "Who should Derek hug Richard after shocking?",
    )
    limited = load_blimp(paradigms=["adjunct_island", "passive_1"], limit_per_paradigm=3, archive=ARCHIVE)
    assert limited == {"adjunct_island": data["adjunct_island"][:3], "passive_1": data["passive_1"][:3]}


def test_evaluate_on_real_pairs_matches_hand_sums() -> None:
    needs_archive()
    table = random_table(257, seed=4)
    tokenizer = ByteTokenizer()
    names = ["anaphor_gender_agreement", "determiner_noun_agreement_1"]
    result = evaluate(
        BigramModel(table),
        tokenizer,
        paradigms=names,
        limit_per_paradigm=6,
        batch_size=5,
        data_dir=SHARED_DATA,
    )
    data = load_blimp(paradigms=names, limit_per_paradigm=6, archive=ARCHIVE)

    def logprob(sentence: str) -> float:
        tokens = [tokenizer.eos_id, *tokenizer.encode(" " + sentence)]
        return sum(float(table[a, b]) for a, b in zip(tokens, tokens[1:], strict=False))

    expected = {name: sum(logprob(g) > logprob(b) for g, b in data[name]) / 6 for name in names}
    assert result["per_paradigm"] == pytest.approx(expected)
    assert result["accuracy"] == pytest.approx(sum(expected.values()) / 2)
    assert (result["n_pairs"], result["n_paradigms"]) == (12, 2)


def test_unknown_paradigm_is_a_user_error() -> None:
    needs_archive()
    with pytest.raises(UserError, match="unknown BLiMP paradigm"):
        load_blimp(paradigms=["adjunct_island", "no_such_paradigm"], archive=ARCHIVE)


def test_bad_line_names_member_and_line(tmp_path: Path) -> None:
    lines = [json.dumps({"sentence_good": "A b.", "sentence_bad": "B a."}), '{"sentence_good": "x"}']
    payload = ("\n".join(lines) + "\n").encode()
    archive = tmp_path / "blimp.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("data/toy.jsonl")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    assert load_blimp(archive=archive, limit_per_paradigm=1) == {"toy": [("A b.", "B a.")]}
    with pytest.raises(UserError, match=r"data/toy.jsonl line 2 is not a minimal pair"):
        load_blimp(archive=archive)
    with pytest.raises(UserError, match="cannot read BLiMP archive"):
        load_blimp(archive=tmp_path / "missing.tar.gz")


def test_limit_must_be_positive() -> None:
    with pytest.raises(UserError, match="limit_per_paradigm must be at least 1"):
        load_blimp(limit_per_paradigm=0, archive=ARCHIVE)
