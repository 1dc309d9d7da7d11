"""Perplexity: on held-out token windows of the training data, and on WikiText-2 as lm-eval scores it.

WikiText-2 follows lm-evaluation-harness's `wikitext` task (`lm_eval/tasks/wikitext/`, version 2):
- documents are Wikipedia articles, split as its `wikitext_document_level` dataset script does: a
  new document starts at every top-level heading line ` = Title = ` (after folding `= =`/`= = =`);
- each article is detokenized with its `wikitext_detokenizer` (undo ` @-@ `, ` , `, spaced
  brackets and quotes, ...) and scored as a rolling log-likelihood conditioned on EOS;
- word and byte counts come from the article *before* detokenization: words =
  `len(re.split(r"\\s+", page))`, bytes = UTF-8 length; the perplexities are corpus-level, i.e.
  `exp(total NLL / total words)` and `exp(total NLL / total bytes)`, and bits per byte is
  `total NLL / total bytes / ln 2`. We also report token perplexity (tokenizer-dependent).
Differences: our local files are the `<unk>`-replaced WikiText-2 (the PyTorch example's copy), not
`wikitext-2-raw-v1`, so numbers are comparable between our models but not to published lm-eval
wikitext figures; and windows overlap by default (`stride = max_len // 2`) where lm-eval's do not
(pass `stride=max_len` for its exact windows).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from redpajama.errors import UserError
from redpajama.training.evaluation import find_data
from redpajama.training.evaluation.scoring import (
    Model,
    TokenizerLike,
    evaluating,
    forward_logits,
    rolling_nll_many,
    target_logprobs,
)

WIKITEXT_FOLDER = "lm-wikitext-2-valid-test"
WIKITEXT_SPLITS = {"test": "test.txt", "validation": "valid.txt", "valid": "valid.txt"}


def wikitext_documents(text: str) -> list[str]:
    """Split a WikiText file into articles exactly as lm-eval's `wikitext_document_level` does."""
    pages: list[str] = []
    lines: list[str] = []
    for line in text.split("\n"):
        folded = line.replace("= = =", "===").replace("= =", "==").strip()
        if folded.startswith("= ") and folded.endswith(" ="):
            page = "\n".join(lines)
            if page.strip():
                pages.append(page)
            lines = []
        lines.append(line)
    pages.append("\n".join(lines))  # the last page is kept even when blank, as there
    return pages


def wikitext_detokenize(page: str) -> str:
    """lm-eval's `wikitext_detokenizer`: undo WikiText's tokenization spaces, rule for rule."""
    string = page
    # contractions
    string = string.replace("s '", "s'")
    string = re.sub(r"/' [0-9]/", r"/'[0-9]/", string)
    # number separators
    string = string.replace(" @-@ ", "-")
    string = string.replace(" @,@ ", ",")
    string = string.replace(" @.@ ", ".")
    # punctuation
    for mark in (":", ";", ".", "!", "?", ","):
        string = string.replace(f" {mark} ", f"{mark} ")
    # double brackets
    string = re.sub(r"\(\s*([^\)]*?)\s*\)", r"(\1)", string)
    string = re.sub(r"\[\s*([^\]]*?)\s*\]", r"[\1]", string)
    string = re.sub(r"{\s*([^}]*?)\s*}", r"{\1}", string)
    string = re.sub(r"\"\s*([^\"]*?)\s*\"", r'"\1"', string)
    string = re.sub(r"'\s*([^']*?)\s*'", r"'\1'", string)
    # miscellaneous
    string = string.replace("= = = =", "====")
    string = string.replace("= = =", "===")
    string = string.replace("= =", "==")
    string = string.replace(" " + chr(176) + " ", chr(176))
    string = string.replace(" \n", "\n")
    string = string.replace("\n ", "\n")
    string = string.replace(" N ", " 1 ")
    string = string.replace(" 's", "'s")
    return string


def word_count(page: str) -> int:
    # lm-eval's count, empty strings at the ends included: it is the denominator they publish.
    return len(re.split(r"\s+", page))


def load_wikitext(split: str = "test", data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The articles (raw, not detokenized) of a local WikiText-2 split: "test" or "validation"."""
    if split not in WIKITEXT_SPLITS:
        raise UserError(f"unknown WikiText-2 split {split!r}", hint=f"use one of {sorted(WIKITEXT_SPLITS)}")
    path = find_data(WIKITEXT_FOLDER, data_dir) / WIKITEXT_SPLITS[split]
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read WikiText-2 file {path}: {error}") from error
    return wikitext_documents(text)


def wikitext2(
    model: Model,
    tokenizer: TokenizerLike,
    split: str = "test",
    *,
    max_len: int = 1024,
    stride: int | None = None,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    max_documents: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """WikiText-2 perplexities (lm-eval's definitions, see the module docstring) of `model`.

    `max_documents` keeps the first N articles (for quick runs; counts say what was scored).
    """
    pages = load_wikitext(split, data_dir)
    if max_documents is not None:
        if max_documents < 1:
            raise UserError(f"max_documents must be at least 1, got {max_documents}")
        pages = pages[:max_documents]
    streams = tokenizer.encode_batch([wikitext_detokenize(page) for page in pages])
    scored = rolling_nll_many(
        model,
        streams,
        max_len=max_len,
        stride=stride,
        batch_size=batch_size,
        device=device,
        eos_id=tokenizer.eos_id,
    )
    nll = sum(total for total, _ in scored)
    n_tokens = sum(count for _, count in scored)
    n_words = sum(word_count(page) for page in pages)
    n_bytes = sum(len(page.encode("utf-8")) for page in pages)
    return {
        "split": split,
        "n_documents": len(pages),
        "n_tokens": n_tokens,
        "n_words": n_words,
        "n_bytes": n_bytes,
        "nll": nll,
        "token_perplexity": math.exp(nll / n_tokens) if n_tokens else None,
        "word_perplexity": math.exp(nll / n_words),
        "byte_perplexity": math.exp(nll / n_bytes),
        "bits_per_byte": nll / n_bytes / math.log(2),
        "max_len": max_len,
        "stride": max_len // 2 if stride is None else stride,
    }


def held_out(
    model: Model,
    token_windows: Iterable[torch.Tensor],
    *,
    device: str | torch.device = "cpu",
    max_windows: int | None = None,
) -> dict[str, Any]:
    """Mean next-token loss and token perplexity over held-out windows `(B, T + 1)` of token ids.

    Each row feeds its first T tokens and scores the last T, the training objective on unseen
    data. `max_windows` stops after that many batches. Sums run in float64 so millions of tokens
    add up without drift; log-softmax runs in float32 a bounded slice at a time.
    """
    total = 0.0
    n_tokens = 0
    n_rows = 0
    with evaluating(model), torch.inference_mode():
        for index, window in enumerate(token_windows):
            if max_windows is not None and index >= max_windows:
                break
            if window.dim() != 2 or window.shape[1] < 2:
                raise ValueError(
                    f"held-out window {index} has shape {tuple(window.shape)}; expected (B, T + 1)"
                )
            window = window.to(device=device, dtype=torch.long)
            logits = forward_logits(model, window[:, :-1])
            logprobs, _ = target_logprobs(logits.reshape(-1, logits.shape[-1]), window[:, 1:].reshape(-1))
            total -= float(logprobs.double().sum())
            n_tokens += window.shape[0] * (window.shape[1] - 1)
            n_rows += window.shape[0]
    if n_tokens == 0:
        raise UserError("no held-out windows to score", hint="check the held-out token split is not empty")
    loss = total / n_tokens
    return {"loss": loss, "token_perplexity": math.exp(loss), "n_tokens": n_tokens, "n_windows": n_rows}
