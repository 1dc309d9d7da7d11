"""Packed token shards: the on-disk format `redpajama tokenize` writes and the trainer reads.

    TOKENS/index.json                written last: tokenizer, dtype, settings, per split and shard
    TOKENS/train-00000.bin, ...      one token stream per split, cut into shards of `shard_tokens`
    TOKENS/held_out-00000.bin, ...

A shard is a raw little-endian array (uint16 when the vocabulary fits, else uint32) with no header,
so `np.memmap` reads it in place. Documents follow each other with EOS after each; a document may
continue into the next shard, and windows over the stream may cross shard boundaries.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from redpajama.errors import UserError

INDEX_NAME = "index.json"
FORMAT_VERSION = 1
TRAIN, HELD_OUT = "train", "held_out"
SPLITS = (TRAIN, HELD_OUT)
SHARD_PATTERN = r"(train|held_out)-\d{5}\.bin"


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:05d}.bin"


def dtype_for(vocab_size: int) -> np.dtype:
    """The narrowest little-endian unsigned type that holds every id below `vocab_size`."""
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_index(folder: Path) -> dict[str, Any]:
    """The parsed index.json of a token folder; UserError naming the file when missing or unreadable."""
    path = Path(folder) / INDEX_NAME
    hint = f"run `redpajama tokenize CURATED -o {folder}` (again) to write it"
    if (Path(folder) / "documents").is_dir():  # a document tree (curated or not), not tokens
        hint = f"{folder} holds documents: tokenize it first, `redpajama tokenize {folder} -o TOKENS`"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing, so {folder} holds no complete tokenized data", hint) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})", hint) from None
    problem = _index_problem(index)
    if problem:
        raise UserError(f"{path}: not a token index ({problem})", hint)
    return index


def _index_problem(index: Any) -> str | None:
    """What makes `index` unreadable as a token index, or None."""
    if not isinstance(index, dict):
        return "not a JSON object"
    if index.get("version") != FORMAT_VERSION:
        return f"format version {index.get('version')!r}, this code reads {FORMAT_VERSION}"
    missing = [key for key in ("vocab_size", "eos_id", "dtype", "splits") if key not in index]
    if missing:
        return f"no {', '.join(missing)}"
    if index["dtype"] not in ("uint16", "uint32"):
        return f"dtype {index['dtype']!r}"
    if not isinstance(index["splits"], dict):
        return "splits is not an object"
    for name, split in index["splits"].items():
        shards = split.get("shards") if isinstance(split, dict) else None
        if not isinstance(shards, list) or not all(
            isinstance(s, dict) and {"file", "n_tokens", "sha256"} <= s.keys() for s in shards
        ):
            return f"split {name!r} has no valid shard list"
    return None


@dataclass(frozen=True)
class TokenShards:
    """One split of a token folder as a single read-only stream over its memory-mapped shards."""

    folder: Path
    split: str
    index: dict[str, Any]
    arrays: tuple[np.ndarray, ...]
    starts: np.ndarray  # starts[k] = stream offset of shard k; starts[-1] = n_tokens

    @classmethod
    def open(cls, folder: str | Path, split: str = TRAIN, verify: bool = False) -> TokenShards:
        """Map the shards of `split`; checks sizes against index.json, and sha256 too with `verify`."""
        folder = Path(folder)
        index = read_index(folder)
        if split not in index["splits"]:
            raise UserError(f"{folder / INDEX_NAME}: no split {split!r}; it has {', '.join(index['splits'])}")
        dtype = np.dtype(index["dtype"]).newbyteorder("<")
        arrays, sizes = [], []
        for shard in index["splits"][split]["shards"]:
            path = folder / shard["file"]
            if not path.is_file():
                raise UserError(f"{path}: missing shard listed in {folder / INDEX_NAME}", "tokenize again")
            expected = shard["n_tokens"] * dtype.itemsize
            if path.stat().st_size != expected:
                raise UserError(
                    f"{path}: {path.stat().st_size:,} bytes, but {folder / INDEX_NAME} says "
                    f"{shard['n_tokens']:,} tokens ({expected:,} bytes)",
                    "the folder is damaged or half-written: tokenize again with --overwrite",
                )
            if verify and file_sha256(path) != shard["sha256"]:
                raise UserError(f"{path}: sha256 differs from {folder / INDEX_NAME}", "tokenize again")
            arrays.append(np.memmap(path, dtype=dtype, mode="r", shape=(shard["n_tokens"],)))
            sizes.append(shard["n_tokens"])
        starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        return cls(folder=folder, split=split, index=index, arrays=tuple(arrays), starts=starts)

    @property
    def n_tokens(self) -> int:
        return int(self.starts[-1])

    @property
    def eos_id(self) -> int:
        return int(self.index["eos_id"])

    @property
    def vocab_size(self) -> int:
        return int(self.index["vocab_size"])

    def sequences(self, seq_len: int) -> int:
        """How many full windows of `seq_len` inputs (+1 target) the stream holds."""
        if seq_len < 1:
            raise ValueError(f"seq_len must be at least 1, got {seq_len}")
        return max(self.n_tokens - 1, 0) // seq_len

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Stream tokens [start, stop) as int64, read across shard boundaries."""
        if not 0 <= start <= stop <= self.n_tokens:
            raise IndexError(f"tokens [{start}, {stop}) outside the stream of {self.n_tokens} tokens")
        out = np.empty(stop - start, dtype=np.int64)
        shard = int(np.searchsorted(self.starts, start, side="right")) - 1
        filled = 0
        while filled < len(out):
            offset = start + filled - int(self.starts[shard])
            piece = self.arrays[shard][offset : offset + len(out) - filled]
            out[filled : filled + len(piece)] = piece
            filled += len(piece)
            shard += 1
        return out

    def window(self, i: int, seq_len: int) -> np.ndarray:
        """Tokens [i*seq_len, i*seq_len + seq_len + 1): inputs are [:-1], targets [1:]."""
        if not 0 <= i < self.sequences(seq_len):
            raise IndexError(f"window {i} of length {seq_len}: the stream has {self.sequences(seq_len)}")
        return self.tokens(i * seq_len, i * seq_len + seq_len + 1)
