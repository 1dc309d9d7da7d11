"""PIQA: the real validation files, and acc versus acc_norm worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_eval_fakes import BigramModel, ByteTokenizer, random_table, uniform_model

from redpajama.errors import UserError
from redpajama.training.evaluation.piqa import (
    PIQA_FOLDER,
    PiqaItem,
    choose,
    context_for,
    evaluate,
    load_piqa,
    score_items,
)

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def needs_data() -> None:
    if not (SHARED_DATA / PIQA_FOLDER).is_dir():
        pytest.skip("shared PIQA data not found")


def test_acc_and_acc_norm_disagree_by_hand() -> None:
    # Uniform model over bytes: a choice of c characters scores -(c + 1) log V (the space counts).
    # acc picks the shorter choice; per character -(1 + 1/c) log V, acc_norm picks the longer one.
    items = [
        PiqaItem(goal="g1", solutions=("short", "a longer one"), label=1),  # acc wrong, acc_norm right
        PiqaItem(goal="g2", solutions=("tiny", "much much longer"), label=1),  # acc wrong, acc_norm right
        PiqaItem(goal="g3", solutions=("ok", "the long answer"), label=0),  # acc right, acc_norm wrong
    ]
    result = score_items(uniform_model(257), ByteTokenizer(), items, batch_size=4)
    assert result["acc"] == pytest.approx(1 / 3) and result["acc_norm"] == pytest.approx(2 / 3)
    # Sample std of (0, 0, 1) is sqrt(1/3); over sqrt(3) gives 1/3.
    assert result["acc_stderr"] == pytest.approx(1 / 3) and result["acc_norm_stderr"] == pytest.approx(1 / 3)
    assert result["n"] == 3


def test_scores_are_loglikelihoods_of_space_plus_solution_after_the_prompt() -> None:
    table = random_table(257, seed=7)
    tokenizer = ByteTokenizer()
    item = PiqaItem(
        goal="Open a jar", solutions=("Twist the lid.", "Cut the lid off with scissors."), label=0
    )

    def logprob(solution: str) -> float:
        tokens = tokenizer.encode(context_for(item) + " " + solution)
        start = len(tokenizer.encode(context_for(item)))
        return sum(float(table[tokens[i - 1], tokens[i]]) for i in range(start, len(tokens)))

    scores = [logprob(sol) for sol in item.solutions]
    lengths = [len(sol) for sol in item.solutions]
    expect_acc = int(scores.index(max(scores)) == 0)
    normed = [s / n for s, n in zip(scores, lengths, strict=True)]
    expect_norm = int(normed.index(max(normed)) == 0)
    result = score_items(BigramModel(table), tokenizer, [item])
    assert (result["acc"], result["acc_norm"]) == (expect_acc, expect_norm)
    assert result["acc_stderr"] is None  # undefined for one item
    assert context_for(item) == "Question: Open a jar\nAnswer:"


def test_choose_breaks_ties_towards_the_first_choice() -> None:
    assert choose([-3.0, -3.0]) == 0
    assert choose([-4.0, -3.0]) == 1
    assert choose([-4.0, -3.0], lengths=[8, 2]) == 0  # -0.5 beats -1.5 per character


def test_real_validation_files_are_aligned() -> None:
    needs_data()
    items = load_piqa(data_dir=SHARED_DATA)
    assert len(items) == 1838
    assert items[0].goal == "How do I ready a guinea pig cage for it's new occupants?" and items[0].label == 0
    assert items[1].goal == "dresser" and items[1].label == 1
    assert items[1].solutions == ("replace drawer with bobby pin ", "finish, woodgrain with  bobby pin ")
    labels = (SHARED_DATA / PIQA_FOLDER / "valid-labels.lst").read_text().split()
    assert [item.label for item in items] == [int(label) for label in labels]
    assert load_piqa(limit=5, data_dir=SHARED_DATA) == items[:5]


def test_evaluate_real_items_with_a_limit() -> None:
    needs_data()
    result = evaluate(uniform_model(257), ByteTokenizer(), limit=20, data_dir=SHARED_DATA)
    items = load_piqa(limit=20, data_dir=SHARED_DATA)
    # Uniform model: acc = shorter solution (ties to the first), acc_norm = longer solution.
    shorter = [0 if len(i.solutions[0]) <= len(i.solutions[1]) else 1 for i in items]
    longer = [0 if len(i.solutions[0]) >= len(i.solutions[1]) else 1 for i in items]
    assert result["n"] == 20
    assert result["acc"] == pytest.approx(sum(s == i.label for s, i in zip(shorter, items, strict=True)) / 20)
    assert result["acc_norm"] == pytest.approx(
        sum(s == i.label for s, i in zip(longer, items, strict=True)) / 20
    )


def test_misaligned_or_bad_files_are_user_errors(tmp_path: Path) -> None:
    folder = tmp_path / PIQA_FOLDER
    folder.mkdir()
    item = json.dumps({"goal": "g", "sol1": "a", "sol2": "b"})
    (folder / "valid.jsonl").write_text(item + "\n" + item + "\n")
    (folder / "valid-labels.lst").write_text("0\n")
    with pytest.raises(UserError, match="not aligned: .* 2 items, .* 1 labels"):
        load_piqa(data_dir=tmp_path)
    (folder / "valid-labels.lst").write_text("0\n2\n")
    with pytest.raises(UserError, match="line 2: label '2' is not 0 or 1"):
        load_piqa(data_dir=tmp_path)
    (folder / "valid.jsonl").write_text(item + "\n{not json\n")
    (folder / "valid-labels.lst").write_text("0\n1\n")
    with pytest.raises(UserError, match="valid.jsonl line 2 is not an item"):
        load_piqa(data_dir=tmp_path)
    assert len(load_piqa(limit=1, data_dir=tmp_path)) == 1  # the limit stops before the bad line
