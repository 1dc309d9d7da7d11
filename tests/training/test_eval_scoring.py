"""Log-likelihood machinery against hand sums from fake models with known probabilities."""

from __future__ import annotations

import math
import random

import pytest
import torch
from test_eval_fakes import EOS, BigramModel, CharTokenizer, PositionModel, random_table

from redpajama.errors import UserError
from redpajama.training.evaluation.scoring import (
    encode_pairs,
    loglikelihoods,
    rolling_nll,
    rolling_nll_many,
    rolling_windows,
)

# Hand-written bigram probabilities over tokens 0..3 (0 is EOS): row = previous token.
PROBS = torch.tensor(
    [
        [0.10, 0.60, 0.20, 0.10],
        [0.05, 0.05, 0.80, 0.10],
        [0.25, 0.25, 0.20, 0.30],
        [0.40, 0.30, 0.20, 0.10],
    ]
)
TABLE = PROBS.log()


def lp(prev: int, nxt: int) -> float:
    return math.log(float(PROBS[prev, nxt]))


def test_loglikelihood_is_the_hand_sum_and_greedy_flag() -> None:
    model = BigramModel(TABLE)
    # 2 -> 3 is the argmax of row 2, 3 -> 0 the argmax of row 3: greedy.
    # 1 -> 3 is not the argmax of row 1 (that is 2): not greedy.
    results = loglikelihoods(model, [([1, 2], [3, 0]), ([2], [1, 3])], max_len=8, batch_size=4)
    assert results[0][0] == pytest.approx(lp(2, 3) + lp(3, 0), abs=1e-6)
    assert results[0][1] is True
    assert results[1][0] == pytest.approx(lp(2, 1) + lp(1, 3), abs=1e-6)
    assert results[1][1] is False


def test_empty_context_is_conditioned_on_eos() -> None:
    model = BigramModel(TABLE)
    [(score, _)] = loglikelihoods(model, [([], [2, 3])], max_len=8, eos_id=EOS)
    assert score == pytest.approx(lp(EOS, 2) + lp(2, 3), abs=1e-6)
    with pytest.raises(ValueError, match="eos_id"):
        loglikelihoods(model, [([], [2])], max_len=8)


def test_empty_continuation_scores_zero_without_a_forward() -> None:
    model = BigramModel(TABLE)
    assert loglikelihoods(model, [([1, 2], [])], max_len=4) == [(0.0, True)]
    assert model.shapes == []


def test_long_context_is_left_truncated_to_max_len() -> None:
    table = random_table(6, rows=32)
    model = PositionModel(table)
    context, continuation = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5], [2, 4]
    # Fits: the continuation is predicted from input positions 9 and 10.
    [(full, _)] = loglikelihoods(model, [(context, continuation)], max_len=32)
    assert full == pytest.approx(float(table[9, 2] + table[10, 4]), abs=1e-6)
    # max_len 5: the input is the last 6 tokens minus one, continuation at positions 3 and 4.
    [(cut, _)] = loglikelihoods(model, [(context, continuation)], max_len=5)
    assert cut == pytest.approx(float(table[3, 2] + table[4, 4]), abs=1e-6)


def test_inputs_never_exceed_max_len_and_too_long_continuations_fail() -> None:
    model = BigramModel(TABLE, max_positions=4)
    [(score, _)] = loglikelihoods(model, [([1, 2, 3, 1, 2, 3, 1], [2, 3])], max_len=4)
    assert score == pytest.approx(lp(1, 2) + lp(2, 3), abs=1e-6)  # a bigram needs one token of context
    assert max(width for _, width in model.shapes) == 4
    with pytest.raises(UserError, match="5 tokens does not fit"):
        loglikelihoods(model, [([1], [1, 2, 3, 1, 2])], max_len=4)


def test_batch_size_and_order_do_not_change_results() -> None:
    rng = random.Random(0)
    requests = [
        (
            [rng.randrange(4) for _ in range(rng.randrange(0, 9))],
            [rng.randrange(4) for _ in range(rng.randrange(1, 6))],
        )
        for _ in range(40)
    ]
    model = BigramModel(TABLE)
    one = loglikelihoods(model, requests, max_len=6, batch_size=1, eos_id=EOS)
    seven = loglikelihoods(model, requests, max_len=6, batch_size=7, eos_id=EOS)
    assert [s for s, _ in one] == pytest.approx([s for s, _ in seven], abs=1e-9)
    assert [g for _, g in one] == [g for _, g in seven]
    for (context, continuation), (score, _) in zip(requests, one, strict=True):
        previous = ([EOS] + context)[-1]
        expected = 0.0
        for token in continuation:
            expected += lp(previous, token)
            previous = token
        assert score == pytest.approx(expected, abs=1e-5)
    # Longest first: batches of 7 never grow in width.
    widths = [width for batch, width in model.shapes[len(requests) :]]
    assert widths == sorted(widths, reverse=True) and max(b for b, _ in model.shapes) == 7


def test_low_precision_logits_are_scored_in_float32() -> None:
    table = random_table(50, seed=3)
    model = BigramModel(table, dtype=torch.bfloat16)
    requests = [([1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11])]
    [(score, _)] = loglikelihoods(model, requests, max_len=16)
    rounded = torch.log_softmax(table.to(torch.bfloat16).float(), dim=-1)
    pairs = list(zip([3, 4, 5, 6, 7, 8, 9, 10], [4, 5, 6, 7, 8, 9, 10, 11], strict=True))
    assert score == pytest.approx(sum(float(rounded[a, b]) for a, b in pairs), abs=1e-5)


def test_model_training_mode_is_restored() -> None:
    model = BigramModel(TABLE).train()
    loglikelihoods(model, [([1], [2])], max_len=4)
    assert model.training


def test_encode_pairs_moves_trailing_space_and_uses_eos_for_empty_context() -> None:
    tokenizer = CharTokenizer("ab ")  # a=1 b=2 space=3
    assert encode_pairs(tokenizer, [("ab ", "b"), ("", " a"), ("a", "b")]) == [
        ([1, 2], [3, 2]),
        ([EOS], [3, 1]),
        ([1], [2]),
    ]


@pytest.mark.parametrize("max_len", [1, 2, 3, 5, 8])
def test_rolling_windows_score_every_token_but_the_first_exactly_once(max_len: int) -> None:
    for stride in range(1, max_len + 1):
        for n in range(0, 30):
            windows = rolling_windows(n, max_len=max_len, stride=stride)
            scored = [t for _, first, end in windows for t in range(first, end)]
            assert scored == list(range(1, n)), (n, max_len, stride)
            for start, first, end in windows:
                assert end - 1 - start <= max_len  # the model input
                assert first > start  # every scored token has context in its window
                # context of the first scored token: all there is, or at least max_len + 1 - stride
                assert first - start >= min(first, max_len + 1 - stride)


def test_rolling_windows_reject_bad_stride() -> None:
    with pytest.raises(UserError, match="stride 5 is larger than max_len 4"):
        rolling_windows(10, max_len=4, stride=5)
    with pytest.raises(UserError, match="stride must be a positive integer"):
        rolling_windows(10, max_len=4, stride=0)


def test_rolling_nll_equals_one_window_when_the_text_fits() -> None:
    model = BigramModel(TABLE)
    tokens = [1, 2, 3, 3, 0, 2, 1, 1, 2, 3]
    sequence = [EOS] + tokens
    expected = -sum(lp(a, b) for a, b in zip(sequence, sequence[1:], strict=False))
    total, n = rolling_nll(model, tokens, max_len=16, eos_id=EOS)
    assert n == len(tokens) and total == pytest.approx(expected, abs=1e-5)
    [(direct, _)] = loglikelihoods(model, [([EOS], tokens)], max_len=16)
    assert total == pytest.approx(-direct, abs=1e-6)
    # Without EOS the first token is context only.
    total, n = rolling_nll(model, tokens, max_len=16)
    assert n == len(tokens) - 1 and total == pytest.approx(expected + lp(EOS, 1), abs=1e-5)
    # A bigram needs one token of context, so any window layout gives the same sum.
    for max_len, stride in [(3, 1), (3, 3), (4, 2), (5, None)]:
        total, n = rolling_nll(model, tokens, max_len=max_len, stride=stride, batch_size=3, eos_id=EOS)
        assert n == len(tokens) and total == pytest.approx(expected, abs=1e-5)


def test_rolling_nll_window_positions_by_hand() -> None:
    # 9 tokens after EOS, max_len 4. Each scored token's logits row is its position in the input.
    table = random_table(6, rows=8, seed=1)
    model = PositionModel(table)
    tokens = [1, 2, 3, 4, 5, 1, 2, 3, 4]

    def expected(positions: list[int]) -> float:
        return -sum(float(table[p, t]) for p, t in zip(positions, tokens, strict=True))

    # stride 2: windows score targets 1-4 (positions 0-3), then 5-6, 7-8 (positions 2-3), then 9 (3).
    total, n = rolling_nll(model, tokens, max_len=4, stride=2, eos_id=EOS)
    assert n == 9 and total == pytest.approx(expected([0, 1, 2, 3, 2, 3, 2, 3, 3]), abs=1e-5)
    # stride == max_len: lm-eval's disjoint windows, context restarts at targets 5 (position 0).
    total, n = rolling_nll(model, tokens, max_len=4, stride=4, eos_id=EOS)
    assert n == 9 and total == pytest.approx(expected([0, 1, 2, 3, 0, 1, 2, 3, 3]), abs=1e-5)


def test_rolling_nll_many_is_batch_invariant_and_matches_single_streams() -> None:
    rng = random.Random(5)
    streams = [[rng.randrange(1, 4) for _ in range(rng.randrange(0, 40))] for _ in range(9)]
    model = BigramModel(TABLE, max_positions=6)
    one = rolling_nll_many(model, streams, max_len=6, batch_size=1, eos_id=EOS)
    seven = rolling_nll_many(model, streams, max_len=6, batch_size=7, eos_id=EOS)
    assert [n for _, n in one] == [len(s) for s in streams] == [n for _, n in seven]
    assert [t for t, _ in one] == pytest.approx([t for t, _ in seven], abs=1e-9)
    for stream, (total, _) in zip(streams, one, strict=True):
        assert total == pytest.approx(rolling_nll(model, stream, max_len=6, eos_id=EOS)[0], abs=1e-9)
