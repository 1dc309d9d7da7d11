"""The text a CCNet perplexity model sees: CCNet-normalized lines, SentencePiece pieces joined by spaces.

Training and scoring must share this exactly, so both the builder and the perplexity validation go
through `tokenize_lines`.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Any

# CCNet `text_normalizer.UNICODE_PUNCT`: fallback only, used until pipelines/ccnet/normalize.py exists.
_UNICODE_PUNCT = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"',
    "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!",
    "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...",
    "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%", "►": "-",
}  # fmt: skip
_DIGIT_RE = re.compile(r"\d")
_NON_PRINTING_RE = re.compile("[" + "".join(map(chr, [*range(0, 32), *range(127, 160)])) + "]")


def _fallback_normalize(line: str) -> str:
    """CCNet `normalize(line, accent=True, case=True, numbers=True, punct=1)`."""
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    line = "".join(c for c in unicodedata.normalize("NFD", line) if unicodedata.category(c) != "Mn")
    line = _DIGIT_RE.sub("0", line)
    line = "".join(_UNICODE_PUNCT.get(c, c) for c in line)
    return _NON_PRINTING_RE.sub("", line)


def ccnet_normalizer() -> tuple[Callable[[str], str], str]:
    """(normalize, where it came from): the ccnet stage's own function when it is installed."""
    try:
        from redpajama.pipelines.ccnet.normalize import normalize
    except ImportError:
        return _fallback_normalize, "redpajama.pipelines.artifacts.lm_text._fallback_normalize"
    return normalize, "redpajama.pipelines.ccnet.normalize.normalize"


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


def tokenize_lines(sp: Any, doc: str, normalize: Callable[[str], str]) -> list[str]:
    """CCNet's `sp` step for one document: one space-joined piece string per non-empty line."""
    out = []
    for line in doc.splitlines():
        text = normalize(line)
        if text:
            out.append(" ".join(sp.encode_as_pieces(text)))
    return out
