"""Fake models and tokenizers with known log-probabilities for the evaluation tests, and their checks.

The other `test_eval_*` files import these (pytest puts this folder on sys.path); the tests here
make sure the fakes are what the hand computations assume.
"""

from __future__ import annotations

import math

import torch

EOS = 0


class CharTokenizer:
    """One token per character of a fixed alphabet; id 0 is EOS."""

    def __init__(self, alphabet: str) -> None:
        self.ids = {char: index + 1 for index, char in enumerate(alphabet)}
        self.eos_id = EOS
        self.vocab_size = len(alphabet) + 1

    def encode(self, text: str) -> list[int]:
        return [self.ids[char] for char in text]

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]


class ByteTokenizer:
    """UTF-8 bytes as tokens 0..255 and EOS 256: covers any text, one token per byte."""

    eos_id = 256
    vocab_size = 257

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]


class BigramModel(torch.nn.Module):
    """logits[b, t] = table[input_ids[b, t]]: log p(next | previous token) read from a table.

    With a normalized table (rows are log-probabilities) the logits are the log-probabilities, so
    a loglikelihood is a sum of table entries. It refuses inputs longer than `max_positions`, like
    a model with a fixed context, and records every input shape it saw.
    """

    def __init__(self, table: torch.Tensor, *, max_positions: int = 10_000, dtype: torch.dtype | None = None):
        super().__init__()
        self.register_buffer("table", table)
        self.max_positions = max_positions
        self.dtype_out = dtype
        self.shapes: list[tuple[int, int]] = []

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] > self.max_positions:
            raise AssertionError(f"input of {input_ids.shape[1]} positions > {self.max_positions}")
        self.shapes.append(tuple(input_ids.shape))
        logits = self.table[input_ids]
        return logits if self.dtype_out is None else logits.to(self.dtype_out)


class PositionModel(torch.nn.Module):
    """logits[b, t] = table[t]: the next-token distribution depends only on the position in the input.

    Scores therefore show where each scored token sat in its window, i.e. how much context it had.
    """

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        batch, width = input_ids.shape
        return self.table[:width].unsqueeze(0).expand(batch, width, -1)


def uniform_model(vocab_size: int):
    """Every token has probability 1 / vocab_size: log p = -log V everywhere."""
    return lambda input_ids: torch.zeros(*input_ids.shape, vocab_size)


def random_table(vocab_size: int, rows: int | None = None, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    raw = torch.randn(rows or vocab_size, vocab_size, generator=generator, dtype=torch.float64)
    return torch.log_softmax(raw, dim=-1).float()


def test_bigram_logits_are_the_table_log_probabilities() -> None:
    table = random_table(5)
    model = BigramModel(table)
    logits = model(torch.tensor([[1, 4, 2]]))
    assert torch.allclose(torch.logsumexp(logits, dim=-1), torch.zeros(1, 3), atol=1e-6)
    assert torch.equal(logits[0, 1], table[4])
    assert model.shapes == [(1, 3)]


def test_position_model_ignores_tokens() -> None:
    table = random_table(4, rows=6)
    model = PositionModel(table)
    a, b = model(torch.tensor([[1, 2, 3]])), model(torch.tensor([[3, 3, 0]]))
    assert torch.equal(a, b) and torch.equal(a[0, 2], table[2])


def test_tokenizers_and_uniform_model() -> None:
    assert CharTokenizer("ab ").encode("ba ") == [2, 1, 3]
    assert ByteTokenizer().encode_batch(["é"]) == [[0xC3, 0xA9]]
    logp = torch.log_softmax(uniform_model(7)(torch.zeros(1, 2, dtype=torch.long)), -1)
    assert math.isclose(float(logp[0, 1, 3]), -math.log(7), rel_tol=1e-6)
