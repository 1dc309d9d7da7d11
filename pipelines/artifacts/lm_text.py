"""The text a CCNet perplexity model is trained on: CCNet-normalized lines (the ccnet stage's own
`normalize`, so training and scoring see the same text), and the SentencePiece model over them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator


def normalized_lines(docs: Iterable[str], normalize: Callable[[str], str]) -> Iterator[str]:
    for doc in docs:
        for line in doc.splitlines():
            text = normalize(line)
            if text:
                yield text


def train_sentencepiece(lines: Iterable[str], vocab_size: int, model_type: str) -> bytes:
    """A SentencePiece model (serialized bytes) trained on already-normalized lines."""
    import sentencepiece as spm

    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=writer,
        vocab_size=vocab_size,
        model_type=model_type,
        # The corpus is normalized already; SentencePiece's own NFKC would change it again.
        normalization_rule_name="identity",
        hard_vocab_limit=False,  # small corpora: fewer pieces than asked is fine
        num_threads=1,  # one thread: the same bytes on every run
        minloglevel=2,
    )
    return writer.getvalue()
