"""DSIR hashed n-gram features: the one definition shared by the signals and the artifact builder.

Contract (the builder and the signals must agree, or the importance weights are noise):

* Features of a document = counts over `dim` buckets of its raw words (WordPunct tokens, case
  kept: `DocView.raw_words`) and of its consecutive raw-word bigrams. `hashed_counts(raw_words,
  dim, mode)` returns them as an int64 vector; the builder sums it over a dataset's documents into
  `<bundle>/dsir/<lang>/<dataset>.<lang>.<dim>.counts.npy` and writes the mean `len(raw_words)`
  to `<dataset>.<lang>.lambda.npy` (REFERENCE A.5).
* `mode` names the hash and MUST be recorded in the bundle manifest as `"dsir_hash": "<mode>"`.
  At signal time `resolve_hash_mode(manifest, rpv2_compat)` reads it back. The builder records
  the key in every manifest it writes, so DSIR counts in a bundle whose manifest lacks it (or
  that has no manifest at all) were not built here: RPv2's own DSIR files come without one, and
  `artifacts fetch` writes a manifest without the key into whatever folder it downloads to. Such
  counts are read as "rpv2".

Modes. Both compute a signed 64-bit hash per n-gram and take `abs(h) % dim`, like RPv2; a
bigram's hash combines its two word hashes with CPython's tuple-hash arithmetic, which is what
RPv2's `hash((w1, w2))` does.

* "rpv2": exactly RPv2's `abs(hash(ngram)) % dim` under `PYTHONHASHSEED=42` (REFERENCE A.1.6):
  unigrams are `str`, bigrams 2-tuples of `str`. Word hashes come from this interpreter's builtin
  `hash` in a helper process started with PYTHONHASHSEED=42 (or in-process when this process was
  itself started with that seed), so str hashing is CPython's own SipHash-1-3 (Python >= 3.11,
  as RPv2's python:3.11.5 image). The tuple combine is reproduced here in numpy.
* "stable" (default): keyed BLAKE2b-64 of the UTF-8 word in place of the seeded SipHash.
  Independent of interpreter, seed and platform, and needs no helper process.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

__all__ = [
    "DSIR_FEATURE_DIM",
    "HASH_MODES",
    "MANIFEST_KEY",
    "HashMode",
    "hashed_counts",
    "hashed_buckets",
    "ngram_hashes",
    "word_hashes",
    "resolve_hash_mode",
]

DSIR_FEATURE_DIM = 10_000  # configs/rp_v2.0.conf
HashMode = Literal["stable", "rpv2"]
HASH_MODES: tuple[str, ...] = ("stable", "rpv2")
MANIFEST_KEY = "dsir_hash"
RPV2_HASH_SEED = "42"  # RPv2's app/Dockerfile

_STABLE_KEY = b"redpajama-dsir-v1"
# CPython's tuplehash constants (Objects/tupleobject.c, 64-bit build, Python >= 3.8)
_XXPRIME_1 = np.uint64(11400714785074694791)
_XXPRIME_2 = np.uint64(14029467366897019727)
_XXPRIME_5 = np.uint64(2870177450012600261)
_TUPLE2_TAIL = np.uint64(2 ^ (2870177450012600261 ^ 3527539))
_CACHE_LIMIT = 1 << 20  # words per mode; cleared when full (Zipf: the hot words come back fast)


def resolve_hash_mode(manifest: Mapping[str, Any] | None, rpv2_compat: bool = False) -> str:
    """The hash mode a bundle's DSIR counts were built with (see the module contract)."""
    recorded = (manifest or {}).get(MANIFEST_KEY)
    if recorded is None:
        # Not built here, where every manifest records the mode (a fetch into RPv2's DSIR files
        # writes one without it). Hashing RPv2's own counts with "stable" would silently turn the
        # importance weights into noise.
        return "rpv2"
    if recorded not in HASH_MODES:
        raise ValueError(f"bundle manifest {MANIFEST_KEY}={recorded!r}; known: {', '.join(HASH_MODES)}")
    if rpv2_compat and recorded != "rpv2":
        raise ValueError(
            f"RPv2 compatibility asked for, but the bundle's DSIR counts were built with "
            f"{MANIFEST_KEY}={recorded!r}; rebuild them with mode 'rpv2' or drop --rpv2-compat"
        )
    return recorded


# ------------------------------------------------------------------------------------- word hashes
def _stable_hash(word: str) -> int:
    digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8, key=_STABLE_KEY).digest()
    return int.from_bytes(digest, "little", signed=True)


# The helper reads length-prefixed JSON lists of str and answers with their int64 hashes. JSON
# (ASCII-escaped) carries any str, lone surrogates included, and rebuilds the identical str.
_HELPER_SOURCE = r"""
import json, sys
from array import array
src, dst = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = src.read(8)
    if len(head) < 8:
        break
    words = json.loads(src.read(int.from_bytes(head, "little")))
    dst.write(array("q", [hash(w) for w in words]).tobytes())
    dst.flush()
"""


class _SeededHasher:
    """Builtin `hash` of str as a process started with PYTHONHASHSEED=42 computes it."""

    _PROBE = ("redpajama", "DSIR", "é", "日本", "\U0001f600")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._pid: int | None = None
        self._in_process: bool | None = None

    def _start(self) -> subprocess.Popen:
        if sys.hash_info.algorithm != "siphash13" or sys.hash_info.hash_bits != 64:
            raise RuntimeError(
                f"rpv2 hashing needs CPython's 64-bit siphash13 str hash (RPv2 ran Python 3.11); "
                f"this interpreter has {sys.hash_info.algorithm}/{sys.hash_info.hash_bits}"
            )
        env = {**os.environ, "PYTHONHASHSEED": RPV2_HASH_SEED}
        # no -I/-E: they would make the child ignore PYTHONHASHSEED
        proc = subprocess.Popen(
            [sys.executable, "-c", _HELPER_SOURCE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self._proc, self._pid = proc, os.getpid()
        return proc

    def _ask(self, words: Sequence[str]) -> list[int]:
        proc = self._proc if self._pid == os.getpid() and self._proc is not None else self._start()
        payload = json.dumps(list(words), ensure_ascii=True).encode("ascii")
        proc.stdin.write(len(payload).to_bytes(8, "little") + payload)
        proc.stdin.flush()
        need = 8 * len(words)
        raw = proc.stdout.read(need)
        if len(raw) != need:
            self._proc = None
            raise RuntimeError("the PYTHONHASHSEED=42 hash helper process died")
        return np.frombuffer(raw, dtype="<i8").tolist()

    def __call__(self, words: Sequence[str]) -> list[int]:
        with self._lock:
            if self._in_process is None:
                # started with the same seed ourselves? then the builtin is already RPv2's
                seeded = os.environ.get("PYTHONHASHSEED") == RPV2_HASH_SEED
                self._in_process = seeded and self._ask(self._PROBE) == [hash(w) for w in self._PROBE]
                if self._in_process:
                    self.close()
            if self._in_process:
                return [hash(w) for w in words]
            return self._ask(words) if words else []

    def close(self) -> None:
        if self._proc is not None and self._pid == os.getpid():
            self._proc.stdin.close()
            self._proc.wait(timeout=10)
        self._proc = None


_SEEDED = _SeededHasher()
atexit.register(_SEEDED.close)
_CACHES: dict[str, dict[str, int]] = {mode: {} for mode in HASH_MODES}


def word_hashes(words: Sequence[str], mode: str = "stable") -> np.ndarray:
    """Signed 64-bit hash of each word (int64), as the mode defines it."""
    if mode not in HASH_MODES:
        raise ValueError(f"unknown DSIR hash mode {mode!r}; known: {', '.join(HASH_MODES)}")
    cache = _CACHES[mode]
    try:  # the common case once warm: every word already known
        return np.fromiter(map(cache.__getitem__, words), dtype=np.int64, count=len(words))
    except KeyError:
        pass
    missing = [w for w in dict.fromkeys(words) if w not in cache]
    if len(cache) + len(missing) > _CACHE_LIMIT:
        cache.clear()
        missing = list(dict.fromkeys(words))
    values = _SEEDED(missing) if mode == "rpv2" else map(_stable_hash, missing)
    cache.update(zip(missing, values, strict=True))
    return np.fromiter(map(cache.__getitem__, words), dtype=np.int64, count=len(words))


def _pair_hashes(h: np.ndarray) -> np.ndarray:
    """CPython's hash((a, b)) from hash(a), hash(b), for consecutive pairs of `h` (int64)."""
    lanes = h.view(np.uint64)
    with np.errstate(over="ignore"):
        acc = _XXPRIME_5 + lanes[:-1] * _XXPRIME_2
        acc = (acc << np.uint64(31)) | (acc >> np.uint64(33))
        acc *= _XXPRIME_1
        acc += lanes[1:] * _XXPRIME_2
        acc = (acc << np.uint64(31)) | (acc >> np.uint64(33))
        acc *= _XXPRIME_1
        acc += _TUPLE2_TAIL
    out = acc.view(np.int64)
    out[out == -1] = 1546275796  # CPython never returns -1 from a hash
    return out


def ngram_hashes(raw_words: Sequence[str], mode: str = "stable") -> np.ndarray:
    """Signed hashes of the unigrams, then the consecutive bigrams (length 2n-1, or 0)."""
    h = word_hashes(raw_words, mode)
    if h.size < 2:
        return h
    return np.concatenate([h, _pair_hashes(h)])


def hashed_buckets(raw_words: Sequence[str], dim: int = DSIR_FEATURE_DIM, mode: str = "stable") -> np.ndarray:
    """Bucket `abs(h) % dim` of every unigram and bigram (int64)."""
    h = ngram_hashes(raw_words, mode)
    u = h.view(np.uint64)
    # abs in two's complement on uint64, so that abs(-2**63) = 2**63 as in Python
    magnitude = np.where(h < 0, ~u + np.uint64(1), u)
    return (magnitude % np.uint64(dim)).astype(np.int64)


def hashed_counts(raw_words: Sequence[str], dim: int = DSIR_FEATURE_DIM, mode: str = "stable") -> np.ndarray:
    """DSIR feature vector of one document: int64 counts over `dim` buckets (see the contract)."""
    return np.bincount(hashed_buckets(raw_words, dim, mode), minlength=dim).astype(np.int64, copy=False)
