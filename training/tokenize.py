"""The tokenize stage: a curated Parquet folder -> packed token shards (token_shards.py) for training.

Order of work, and why:
1. List the Parquet files (sorted relative paths; row order within a file), so the document order
   is a function of the folder alone. A folder with `documents/` (our tree, `redpajama filter`
   output) reads only that, never `dropped/` or `_runs/`.
2. Tokenize in that order, batch by batch (HF encodes a batch on all cores), appending each
   document's tokens + EOS to one scratch stream on disk: memory holds one batch plus 9 bytes per
   document (length, split), never the corpus. Disk: the scratch stream (as large as the output)
   lives beside the shards until they are written. Damage costs only itself (`curated.py`): what
   cannot be read is left out and named by file and rows in index.json's `lost`, and the run goes
   on; the caller judges the loss (`TokenizeSummary.verdict`).
3. Shuffle documents with `numpy.random.default_rng(seed)`, then split: a document is held out when a
   stable hash of its `id` falls below `held_out_fraction`, so its split depends neither on the seed
   nor on which other documents are present.
4. Gather each split's documents in shuffled order from the scratch stream into shards of
   `shard_tokens` tokens (each written atomically, sha256 on the way), then write index.json last.

A rerun with the same settings over unchanged input is a no-op; a run killed at any point left no
index.json, so the rerun rewrites everything, byte for byte the same.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from redpajama.errors import UserError
from redpajama.io import atomic
from redpajama.training.curated import LostRows, documents_root, file_batches, source_files
from redpajama.training.token_shards import (
    FORMAT_VERSION,
    HELD_OUT,
    INDEX_NAME,
    SHARD_PATTERN,
    TRAIN,
    dtype_for,
    read_index,
    shard_name,
)
from redpajama.training.tokenizer import Tokenizer, load_tokenizer

#: Tokens gathered per write while packing (bounds the gather's index array to 32 MB).
GATHER_TOKENS = 1 << 22
_LOCK = ".tokenize.lock"

ProgressFn = Callable[[int, int], None]  # (documents so far, tokens so far)


@dataclass(frozen=True, kw_only=True)
class TokenizeConfig:
    tokenizer: str = "gpt2"  # `gpt2` or the path of a HF tokenizer.json
    seed: int = 0
    held_out_fraction: float = 0.005
    shard_tokens: int = 2**28
    text_field: str | None = None  # None: raw_content, else text
    batch_docs: int = 1024  # documents per encode_batch call

    def __post_init__(self) -> None:
        if not 0.0 <= self.held_out_fraction < 1.0:
            raise UserError(f"held-out fraction must be in [0, 1), got {self.held_out_fraction}")
        if self.shard_tokens < 1:
            raise UserError(f"shard tokens must be positive, got {self.shard_tokens}")
        if self.batch_docs < 1:
            raise UserError(f"batch docs must be positive, got {self.batch_docs}")


@dataclass(frozen=True)
class SplitSummary:
    documents: int
    tokens: int
    shards: int


@dataclass(frozen=True)
class TokenizeSummary:
    output: str
    skipped: bool  # the output was already complete for these settings: nothing was done
    splits: dict[str, SplitSummary] = field(default_factory=dict)
    seconds: float = 0.0
    lost: tuple[LostRows, ...] = ()  # what the run that wrote the output could not read

    @property
    def unreadable_files(self) -> int:
        return sum(1 for entry in self.lost if entry.rows is None)

    @property
    def error_rate(self) -> float:
        """Rows lost (of the files that opened) over rows read or lost, as ingest counts bad records."""
        lost = sum(entry.rows or 0 for entry in self.lost)
        return lost / (self.documents + lost) if lost else 0.0

    def verdict(self, max_error_rate: float) -> str | None:
        """Why the run counts as failed (a file that would not open, or too many lost rows), or None."""
        if self.unreadable_files:
            return f"{self.unreadable_files} file(s) could not be read; their documents are not in the tokens"
        if self.error_rate > max_error_rate:
            return f"lost rows {self.error_rate:.2%} of the documents, above the maximum {max_error_rate:.2%}"
        return None

    @property
    def documents(self) -> int:
        return sum(s.documents for s in self.splits.values())

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.splits.values())

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 and not self.skipped else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "documents": self.documents,
            "tokens": self.tokens,
            "tokens_per_second": self.tokens_per_second,
            "error_rate": self.error_rate,
        }


def _fingerprint(files: list[Path], root: Path) -> str:
    # Name, size and mtime: a re-filtered folder gets a new fingerprint, so a rerun redoes the work.
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def is_held_out(doc_id: str, fraction: float) -> bool:
    """Stable per-document split: the first 8 bytes of blake2b(id) as a fraction of 2**64."""
    if fraction <= 0.0:
        return False
    value = int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "little")
    return value < fraction * 2**64


def _tokenize_to_scratch(
    files: list[Path],
    config: TokenizeConfig,
    tokenizer: Tokenizer,
    scratch: BinaryIO,
    progress: ProgressFn | None,
    lost: list[LostRows],
) -> tuple[np.ndarray, np.ndarray]:
    """Append every readable document's tokens + EOS to `scratch` (what cannot be read goes to `lost`);
    return (token count, held out) per document."""
    dtype = dtype_for(tokenizer.vocab_size)
    lengths: list[np.ndarray] = []
    held: list[np.ndarray] = []
    documents = tokens = 0
    for path in files:
        for ids, texts in file_batches(path, config.text_field, config.batch_docs, lost):
            # A null text is an empty document: it still ends with EOS, so documents stay countable.
            encoded = tokenizer.encode_batch([text or "" for text in texts])
            stream: list[int] = []
            for doc in encoded:
                stream.extend(doc)
                stream.append(tokenizer.eos_id)
            scratch.write(np.asarray(stream, dtype=dtype).tobytes())
            lengths.append(np.fromiter((len(doc) + 1 for doc in encoded), np.int64, len(encoded)))
            held.append(np.fromiter((is_held_out(i, config.held_out_fraction) for i in ids), bool, len(ids)))
            documents += len(ids)
            tokens += len(stream)
            if progress is not None:
                progress(documents, tokens)
    if not documents:
        unread = f" ({len(lost)} part(s) unreadable, first {lost[0].describe()})" if lost else ""
        raise UserError(f"{files[0].parent}: the Parquet files hold no readable documents{unread}")
    return np.concatenate(lengths), np.concatenate(held)


class _ShardWriter:
    """Cuts one split's token stream into shards of `shard_tokens`, each committed atomically."""

    def __init__(self, dest: Path, split: str, shard_tokens: int) -> None:
        self.dest, self.split, self.shard_tokens = dest, split, shard_tokens
        self.records: list[dict[str, Any]] = []
        self._handle: BinaryIO | None = None
        self._temp = self._final = Path()
        self._digest = hashlib.sha256()
        self._filled = 0

    def __enter__(self) -> _ShardWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            if self._handle is not None:
                self._commit()
        elif self._handle is not None:
            self._handle.close()
            self._temp.unlink(missing_ok=True)

    def write(self, tokens: np.ndarray) -> None:
        while len(tokens):
            if self._handle is None:
                self._final = self.dest / shard_name(self.split, len(self.records))
                self._temp = atomic.temp_path_for(self._final)
                self._handle = open(self._temp, "wb")
                self._digest = hashlib.sha256()
                self._filled = 0
            piece = tokens[: self.shard_tokens - self._filled]
            data = piece.tobytes()
            self._handle.write(data)
            self._digest.update(data)
            self._filled += len(piece)
            tokens = tokens[len(piece) :]
            if self._filled == self.shard_tokens:
                self._commit()

    def _commit(self) -> None:
        assert self._handle is not None
        self._handle.close()
        self._handle = None
        atomic.commit(self._temp, self._final)
        self.records.append(
            {"file": self._final.name, "n_tokens": self._filled, "sha256": self._digest.hexdigest()}
        )


def _pack(
    order: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, stream: np.ndarray, out: _ShardWriter
) -> None:
    """Write the documents `order` names, in that order, gathered from the scratch `stream`."""
    ends = np.cumsum(lengths[order])
    first = 0
    while first < len(order):
        done = int(ends[first - 1]) if first else 0
        last = max(int(np.searchsorted(ends, done + GATHER_TOKENS, side="right")), first + 1)
        docs = order[first:last]
        if len(docs) == 1:  # possibly one huge document: a slice, no index array
            out.write(np.asarray(stream[offsets[docs[0]] : offsets[docs[0]] + lengths[docs[0]]]))
        else:
            sizes = lengths[docs]
            within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            out.write(stream[np.repeat(offsets[docs], sizes) + within])
        first = last


@contextlib.contextmanager
def _exclusive(dest: Path) -> Iterator[None]:
    # Append mode: taking the lock leaves the lock file (and its mtime) untouched.
    with open(dest / _LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{dest}: another tokenize run is writing here", "wait for it or use another folder"
            ) from None
        yield


def _settings(config: TokenizeConfig, tokenizer: Tokenizer, source_fingerprint: str) -> dict[str, Any]:
    """Everything the output bytes depend on: equal settings over a complete output mean nothing to do."""
    return {
        "version": FORMAT_VERSION,
        "tokenizer": tokenizer.fingerprint,
        "seed": config.seed,
        "held_out_fraction": config.held_out_fraction,
        "shard_tokens": config.shard_tokens,
        "text_field": config.text_field,
        "source": source_fingerprint,
    }


def _settings_of(index: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": index.get("version"),
        "tokenizer": index.get("tokenizer", {}).get("fingerprint"),
        "seed": index.get("seed"),
        "held_out_fraction": index.get("held_out_fraction"),
        "shard_tokens": index.get("shard_tokens"),
        "text_field": index.get("text_field"),
        "source": index.get("source", {}).get("fingerprint"),
    }


def _complete(dest: Path, index: dict[str, Any]) -> bool:
    itemsize = np.dtype(index["dtype"]).itemsize
    return all(
        (dest / shard["file"]).is_file()
        and (dest / shard["file"]).stat().st_size == shard["n_tokens"] * itemsize
        for split in index["splits"].values()
        for shard in split["shards"]
    )


def _clear(dest: Path) -> None:
    # The index goes first: from here on the folder is incomplete, whatever else survives a kill.
    (dest / INDEX_NAME).unlink(missing_ok=True)
    atomic.remove_stale_temps(dest)
    for path in dest.iterdir():
        if re.fullmatch(SHARD_PATTERN, path.name):
            path.unlink()


def _summary(dest: Path, index: dict[str, Any], skipped: bool, seconds: float) -> TokenizeSummary:
    splits = {
        name: SplitSummary(documents=split["documents"], tokens=split["tokens"], shards=len(split["shards"]))
        for name, split in index["splits"].items()
    }
    lost = tuple(LostRows(**entry) for entry in index.get("lost", ()))
    return TokenizeSummary(output=str(dest), skipped=skipped, splits=splits, seconds=seconds, lost=lost)


def _previous_index(dest: Path) -> dict[str, Any] | None:
    """The index of an earlier run, or None where there is none or it is unreadable (unfinished: redo)."""
    try:
        return read_index(dest)
    except UserError:
        return None


def _write_splits(
    files: list[Path], dest: Path, config: TokenizeConfig, tokenizer: Tokenizer, progress: ProgressFn | None
) -> dict[str, Any]:
    """Tokenize, shuffle, split and pack; returns the index without its source and tokenizer entries."""
    dtype = dtype_for(tokenizer.vocab_size)
    scratch_path = atomic.temp_path_for(dest / "scratch.bin")
    try:
        lost: list[LostRows] = []
        with open(scratch_path, "wb") as scratch:
            lengths, held = _tokenize_to_scratch(files, config, tokenizer, scratch, progress, lost)
        stream = np.memmap(scratch_path, dtype=dtype, mode="r")
        offsets = np.cumsum(lengths) - lengths
        # One permutation of all documents whatever the split, so the split never moves the order.
        permutation = np.random.default_rng(config.seed).permutation(len(lengths))
        splits: dict[str, Any] = {}
        for split, chosen in ((TRAIN, ~held), (HELD_OUT, held)):
            order = permutation[chosen[permutation]]
            with _ShardWriter(dest, split, config.shard_tokens) as writer:
                _pack(order, offsets, lengths, stream, writer)
            splits[split] = {
                "documents": len(order),
                "tokens": int(lengths[order].sum()),
                "shards": writer.records,
            }
        del stream
    finally:
        scratch_path.unlink(missing_ok=True)
    return {
        "version": FORMAT_VERSION,
        "vocab_size": tokenizer.vocab_size,
        "eos_id": tokenizer.eos_id,
        "dtype": dtype.name,
        "seed": config.seed,
        "held_out_fraction": config.held_out_fraction,
        "shard_tokens": config.shard_tokens,
        "text_field": config.text_field,
        "splits": splits,
        "lost": [asdict(entry) for entry in lost],
    }


def run(
    source: str | Path,
    dest: str | Path,
    config: TokenizeConfig,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> TokenizeSummary:
    """Tokenize the curated folder `source` into token shards under `dest`; see the module docstring."""
    started = time.perf_counter()
    source, dest = Path(source), Path(dest)
    files = source_files(source)
    root = documents_root(source)
    tokenizer = load_tokenizer(config.tokenizer)
    settings = _settings(config, tokenizer, _fingerprint(files, root))
    dest.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
        previous = None if overwrite else _previous_index(dest)
        if previous is not None:
            if _settings_of(previous) == settings and _complete(dest, previous):
                return _summary(dest, previous, skipped=True, seconds=time.perf_counter() - started)
            changed = [key for key in settings if settings[key] != _settings_of(previous)[key]]
            if changed:
                raise UserError(
                    f"{dest}: already holds tokens made with another {', '.join(changed)}",
                    "pass --overwrite to replace them, or choose another output folder",
                )
        _clear(dest)
        index = _write_splits(files, dest, config, tokenizer, progress)
        index["source"] = {"path": str(source), "files": len(files), "fingerprint": settings["source"]}
        index["tokenizer"] = {
            "spec": config.tokenizer,
            "name": tokenizer.name,
            "fingerprint": tokenizer.fingerprint,
        }
        atomic.write_json(dest / INDEX_NAME, index)
    return _summary(dest, index, skipped=False, seconds=time.perf_counter() - started)
