"""Tokenizers for the ablation runs: the bundled GPT-2 BPE, any HF `tokenizer.json`, or one we train.

`load_tokenizer("gpt2")` builds OpenAI's GPT-2 byte-level BPE with HF `tokenizers` from the files
shipped in `redpajama/artifacts/tokenizers/gpt2` (no download). Its ids equal tiktoken's `gpt2`
encoding token for token (tests/training/test_tokenizer.py checks that on real multilingual text).

Documents are encoded as ordinary text: a literal `<|endoftext|>` inside a document becomes the
seven ordinary tokens tiktoken's `encode_ordinary` gives, never the EOS id, so only the tokenize
stage decides where documents end. For GPT-2 that holds because EOS is not registered as an added
token (its id comes from the vocabulary); for a loaded `tokenizer.json`, special tokens are encoded
as text (`encode_special_tokens`), and templates (BOS/EOS post-processors) are never applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

import redpajama.artifacts
from redpajama.errors import UserError
from redpajama.io.atomic import atomic_path

GPT2_SPEC = "gpt2"
GPT2_DIR = Path(redpajama.artifacts.__file__).resolve().parent / "tokenizers" / "gpt2"
GPT2_EOS = "<|endoftext|>"
#: End-of-document tokens looked up (in this order) in a loaded tokenizer.json.
EOS_CANDIDATES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eos|>")


@dataclass(frozen=True)
class Tokenizer:
    """A loaded tokenizer: ids in, ids out; `fingerprint` is the sha256 of the files it was built from."""

    name: str
    vocab_size: int
    eos_id: int
    fingerprint: str
    backend: HFTokenizer = field(repr=False, compare=False)

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        # The fast path skips offsets; HF runs the batch on all cores.
        return [
            encoding.ids for encoding in self.backend.encode_batch_fast(list(texts), add_special_tokens=False)
        ]

    def decode(self, ids: Sequence[int]) -> str:
        return self.backend.decode(list(ids), skip_special_tokens=False)


def _sha256_of(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _gpt2() -> Tokenizer:
    vocab, merges = GPT2_DIR / "encoder.json", GPT2_DIR / "vocab.bpe"
    backend = HFTokenizer(models.BPE.from_file(str(vocab), str(merges)))
    # use_regex=True is the GPT-2 split pattern; no prefix space, as OpenAI's encoder.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    eos_id = backend.token_to_id(GPT2_EOS)
    return Tokenizer(
        name=GPT2_SPEC,
        vocab_size=backend.get_vocab_size(),
        eos_id=eos_id,
        fingerprint=_sha256_of((vocab, merges)),
        backend=backend,
    )


def _from_file(spec: str) -> Tokenizer:
    path = Path(spec)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise UserError(
            f"tokenizer not found: {path}", f"use {GPT2_SPEC!r} or the path of a Hugging Face tokenizer.json"
        )
    try:
        backend = HFTokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exception on a malformed file
        raise UserError(f"{path}: not a Hugging Face tokenizer.json ({exc})") from exc
    backend.encode_special_tokens = True
    eos_id = next((i for i in map(backend.token_to_id, EOS_CANDIDATES) if i is not None), None)
    if eos_id is None:
        raise UserError(
            f"{path}: no end-of-document token; looked for {', '.join(EOS_CANDIDATES)}",
            "add one of them to the tokenizer's vocabulary",
        )
    return Tokenizer(
        name=path.parent.name if path.stem == "tokenizer" else path.stem,
        # Ids may be sparse in a hand-edited file: the arrays must hold the largest one.
        vocab_size=max(backend.get_vocab(with_added_tokens=True).values()) + 1,
        eos_id=eos_id,
        fingerprint=_sha256_of((path,)),
        backend=backend,
    )


def load_tokenizer(spec: str) -> Tokenizer:
    """`gpt2` (bundled) or the path of a HF tokenizer.json (or of a folder holding one)."""
    return _gpt2() if spec == GPT2_SPEC else _from_file(spec)


def train_tokenizer(texts: Iterable[str], vocab_size: int, path: str | Path) -> Tokenizer:
    """Train a byte-level BPE (GPT-2 split, EOS `<|endoftext|>`) on `texts`; save it as tokenizer.json."""
    if vocab_size < 257:
        raise UserError(f"vocab size {vocab_size} is too small: a byte-level BPE needs 256 bytes + EOS")
    backend = HFTokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[GPT2_EOS],
        # Every byte gets a token, so any text encodes even if the training texts never showed it.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    final = Path(path)
    with atomic_path(final) as temp:
        backend.save(str(temp))
    return _from_file(str(final))
