"""MinHash signatures for a batch of documents, vectorised over the whole batch.

Two schemes (`hash`):

* `sha1` (default, RedPajama-V2 bit-exact): base hash = first 4 bytes of SHA-1 of the UTF-8 shingle
  read little-endian (datasketch `sha1_hash32`); permutations (a, b) drawn from
  `np.random.RandomState(seed)` as RPv2 / datasketch "legacy"; `((h * a + b) mod (2^61-1)) & (2^32-1)`
  in numpy uint64, where `h * a` and `+ b` wrap mod 2^64 *before* the modulo, as RPv2's code does
  (REFERENCE A.1.9.7). Equal to datasketch `MinHash(scheme="legacy", hashfunc=sha1_hash32)`.
* `fast` (NOT RPv2-compatible): base hash = a 64-bit polynomial hash of the shingle bytes (computed
  for every shingle of the batch at once from prefix sums, no per-shingle Python), mixed with the
  MurmurHash3 64-bit finalizer, top 32 bits; permutations = datasketch 2.0's "affine32" scheme
  (fmix32 pre-mix, then `a * h + b` mod 2^32 with odd `a`, a bijection), drawn with the same seed.
  Equal to datasketch `MinHash(scheme="affine32", hashfunc=poly_hash32)`.

Shingles are byte ranges of one buffer per batch: word n-grams of the space-joined normalized
words (RPv2: `" ".join(words[i:i+n])`), or character n-grams of that same string. The set that
RPv2 builds is not needed: a repeated shingle cannot change a minimum.

The per-permutation work is one (shingles x num_perm) block per chunk of rows, reduced per
document with `np.minimum.reduceat`; `mod (2^61-1)` is done with shifts and masks (exact for every
uint64), not numpy's integer division, which costs several times more.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

HashName = Literal["sha1", "fast"]
ShingleKind = Literal["word", "char"]

MERSENNE = np.uint64((1 << 61) - 1)
MAX_HASH32 = np.uint64((1 << 32) - 1)
_U32_MAX = np.uint32(0xFFFFFFFF)
# Shingles per (num_perm x rows) block: 1 MB of uint64 at 128 permutations stays in cache.
CHUNK_ROWS = 1024


# ------------------------------------------------------------------------------------ permutations
@functools.cache
def legacy_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) exactly as RPv2 `MinHash.__init_minhash` and datasketch's legacy scheme draw them."""
    rng = np.random.RandomState(seed)
    pairs = np.array(
        [
            (rng.randint(1, MERSENNE, dtype=np.uint64), rng.randint(0, MERSENNE, dtype=np.uint64))
            for _ in range(num_perm)
        ],
        dtype=np.uint64,
    ).T
    a, b = pairs
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


@functools.cache
def affine32_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) as datasketch 2.0 draws them for its "affine32" scheme (a odd: a bijection mod 2^32)."""
    rng = np.random.RandomState(seed)
    a = rng.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = rng.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    a.setflags(write=False)
    b.setflags(write=False)
    return a, b


def permutation_checksum(num_perm: int, seed: int) -> str:
    """RPv2 logs this as `__MINHASH_PERM_CHECKSUM__`: SHA-256 of the (2, num_perm) uint64 matrix."""
    a, b = legacy_permutations(num_perm, seed)
    return hashlib.sha256(np.array([a, b], dtype=np.uint64).tobytes()).hexdigest()


# ------------------------------------------------------------------------------------ shingles
@dataclass(frozen=True)
class Shingles:
    """Byte ranges `buffer[starts[i]:ends[i]]`; document k owns rows offsets[k]:offsets[k+1]."""

    buffer: bytes
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    offsets: np.ndarray  # int64, len = documents with shingles + 1
    valid: np.ndarray  # bool per input document: has at least one shingle


def _ranges(first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Concatenation of arange(first[k], first[k] + count[k]) for all k."""
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(count)
    step = np.ones(total, dtype=np.int64)
    step[0] = first[0]
    # at each segment start, jump from the previous segment's last value to this segment's first
    step[ends[:-1]] = first[1:] - (first[:-1] + count[:-1] - 1)
    return np.cumsum(step)


def word_shingles(docs: Sequence[Sequence[str]], n: int) -> Shingles:
    """Word n-grams of each document's normalized words (RPv2: null below n words)."""
    if n < 1:
        raise ValueError(f"n-gram size must be >= 1, got {n}")
    counts = np.fromiter((len(w) for w in docs), dtype=np.int64, count=len(docs))
    valid = counts >= n
    kept = [w for w, ok in zip(docs, valid.tolist(), strict=True) if ok]
    # Normalized words never contain whitespace, so in the space-joined batch every 0x20 byte is a
    # word boundary (UTF-8 continuation bytes are >= 0x80).
    buffer = " ".join(" ".join(w) for w in kept).encode("utf-8", "surrogatepass")
    raw = np.frombuffer(buffer, dtype=np.uint8)
    spaces = np.flatnonzero(raw == 32)
    word_starts = np.concatenate(([0], spaces + 1)).astype(np.int64)
    word_ends = np.concatenate((spaces, [raw.size])).astype(np.int64)
    words = counts[valid]
    per_doc = words - (n - 1)
    first_word = np.concatenate(([0], np.cumsum(words)[:-1])).astype(np.int64)
    rows = _ranges(first_word, per_doc)
    return Shingles(
        buffer=buffer,
        starts=word_starts[rows],
        ends=word_ends[rows + (n - 1)],
        offsets=np.concatenate(([0], np.cumsum(per_doc))).astype(np.int64),
        valid=valid,
    )


def char_shingles(docs: Sequence[Sequence[str]], n: int) -> Shingles:
    """Character n-grams of each document's space-joined normalized words (null below n chars)."""
    if n < 1:
        raise ValueError(f"n-gram size must be >= 1, got {n}")
    texts = [" ".join(w) for w in docs]
    counts = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    valid = counts >= n
    buffer = "".join(t for t, ok in zip(texts, valid.tolist(), strict=True) if ok).encode(
        "utf-8", "surrogatepass"
    )
    raw = np.frombuffer(buffer, dtype=np.uint8)
    if buffer.isascii():
        char_starts = np.arange(raw.size + 1, dtype=np.int64)
    else:  # a character starts at every byte that is not a UTF-8 continuation byte
        char_starts = np.concatenate((np.flatnonzero((raw & 0xC0) != 0x80), [raw.size])).astype(np.int64)
    chars = counts[valid]
    per_doc = chars - (n - 1)
    first_char = np.concatenate(([0], np.cumsum(chars)[:-1])).astype(np.int64)
    rows = _ranges(first_char, per_doc)
    return Shingles(
        buffer=buffer,
        starts=char_starts[rows],
        ends=char_starts[rows + n],
        offsets=np.concatenate(([0], np.cumsum(per_doc))).astype(np.int64),
        valid=valid,
    )


# ------------------------------------------------------------------------------------ base hashes
try:
    from redpajama._native.sha1_32 import sha1_32 as _native_sha1_32
except ImportError:  # built without a compiler: hashlib does the same, slower
    _native_sha1_32 = None


def sha1_hash32(shingles: Shingles) -> np.ndarray:
    """datasketch `sha1_hash32` of every shingle: uint64 array (values < 2^32).

    Uses the compiled loop (`redpajama._native.sha1_32`) when it was built, else hashlib.
    """
    if _native_sha1_32 is not None:
        starts = np.ascontiguousarray(shingles.starts, dtype=np.int64)
        ends = np.ascontiguousarray(shingles.ends, dtype=np.int64)
        words = _native_sha1_32(bytes(shingles.buffer), starts, ends)
        return np.frombuffer(words, dtype="<u4").astype(np.uint64)
    return sha1_hash32_python(shingles)


def sha1_hash32_python(shingles: Shingles) -> np.ndarray:
    """The pure-Python `sha1_hash32`: the oracle for the compiled loop and its fallback."""
    buf, sha1 = shingles.buffer, hashlib.sha1
    digests = b"".join(
        [
            sha1(buf[s:e]).digest()
            for s, e in zip(shingles.starts.tolist(), shingles.ends.tolist(), strict=True)
        ]
    )
    return np.frombuffer(digests, dtype="<u4").reshape(-1, 5)[:, 0].astype(np.uint64)


_POLY_BASE = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime: odd, so invertible mod 2^64
_POLY_BASE_INV = np.uint64(pow(0x100000001B3, -1, 1 << 64))
_LEN_MIX = np.uint64(0x9E3779B97F4A7C15)


@functools.cache
def _powers(base: int, size: int) -> np.ndarray:
    out = np.full(size, base, dtype=np.uint64)
    out[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(out, dtype=np.uint64)  # wraps mod 2^64, which is the point


def _power_table(base: np.uint64, size: int) -> np.ndarray:
    # round the size up so that batches of similar size share one cached table
    return _powers(int(base), 1 << max(16, (size - 1).bit_length()))[:size]


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (a bijection that spreads every input bit)."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def poly_hash32(shingles: Shingles) -> np.ndarray:
    """32-bit hash of every shingle's bytes, vectorised: uint32 array.

    poly(x) = sum_j x[j] * B^(len-1-j) mod 2^64 comes from prefix sums P[k] = sum_{j<k} x[j] B^-j:
    poly(x[s:e]) = (P[e] - P[s]) * B^(e-1). The length is mixed in (a polynomial hash ignores
    leading zero bytes), then fmix64; the top 32 bits are kept. Not cryptographic; fine for text.
    """
    raw = np.frombuffer(shingles.buffer, dtype=np.uint8)
    size = raw.size + 1
    prefix = np.zeros(size, dtype=np.uint64)
    np.cumsum(raw.astype(np.uint64) * _power_table(_POLY_BASE_INV, raw.size), out=prefix[1:])
    s, e = shingles.starts, shingles.ends
    h = (prefix[e] - prefix[s]) * _power_table(_POLY_BASE, size)[e - 1]
    h += (e - s).astype(np.uint64) * _LEN_MIX
    return (fmix64(h) >> np.uint64(32)).astype(np.uint32)


def poly_hash32_bytes(data: bytes) -> int:
    """Reference (pure Python) of `poly_hash32` for one byte string."""
    mask = (1 << 64) - 1
    h = 0
    for byte in data:
        h = (h * int(_POLY_BASE) + byte) & mask
    h = (h + len(data) * int(_LEN_MIX)) & mask
    return int(fmix64(np.array([h], dtype=np.uint64))[0] >> np.uint64(32))


# ------------------------------------------------------------------------------------ signatures
def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _reduce_rows(hashes: np.ndarray, offsets: np.ndarray, block: _Block) -> np.ndarray:
    """Per document, the elementwise min over its rows of `block` applied to chunks of hashes.

    Blocks are (num_perm, rows): numpy's loops run fastest along a long contiguous inner axis,
    and the per-document minimum is then a reduceat along that axis."""
    docs = offsets.size - 1
    out = np.full((block.num_perm, docs), _U32_MAX, dtype=np.uint32)
    total = hashes.size
    for r0 in range(0, total, CHUNK_ROWS):
        r1 = min(total, r0 + CHUNK_ROWS)
        d0 = int(np.searchsorted(offsets, r0, side="right")) - 1
        d1 = int(np.searchsorted(offsets, r1, side="left"))
        local = np.maximum(offsets[d0:d1], r0) - r0  # strictly increasing: every doc has rows
        part = np.minimum.reduceat(block(hashes[r0:r1]), local, axis=1)
        np.minimum(out[:, d0:d1], part, out=out[:, d0:d1])
    return np.ascontiguousarray(out.T)


class _Block:
    """(num_perm, n) uint32 permuted hash values of n base hashes; reuses its work buffers."""

    def __init__(self, a: np.ndarray, b: np.ndarray, dtype: type) -> None:
        self.num_perm = a.size
        self.a = a[:, None].astype(dtype)
        self.b = b[:, None].astype(dtype)
        self.x = np.empty((self.num_perm, CHUNK_ROWS), dtype=dtype)
        self.y = np.empty((self.num_perm, CHUNK_ROWS), dtype=np.uint32)

    def __call__(self, h: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _LegacyBlock(_Block):
    """RPv2 / datasketch legacy: low 32 bits of ((h * a + b) mod 2^64) mod (2^61-1)."""

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        super().__init__(a, b, np.uint64)
        self.top = np.empty((self.num_perm, CHUNK_ROWS), dtype=np.uint32)

    def __call__(self, h: np.ndarray) -> np.ndarray:
        n = h.size
        x, y, top = self.x[:, :n], self.y[:, :n], self.top[:, :n]
        np.multiply(self.a, h[None, :], out=x)  # wraps mod 2^64 like RPv2's numpy code
        x += self.b  # wraps too
        # x mod P (P = 2^61-1) = r = (x & P) + (x >> 61) unless r >= P. P's low 32 bits are all
        # ones, so low32(r) = low32(x) + (x >> 61) (mod 2^32). r >= P needs x & P >= P - 7, so
        # low32(x) >= 2^32 - 8: only then (about once in 2^29 values) redo those values exactly.
        np.copyto(y, x, casting="unsafe")  # low 32 bits
        rare = y.max() >= 0xFFFFFFF8
        np.right_shift(x, np.uint64(61), out=top, casting="unsafe")
        y += top
        if rare:
            r = (x & MERSENNE) + (x >> np.uint64(61))
            np.copyto(y, np.minimum(r, r - MERSENNE), casting="unsafe")
        return y


class _Affine32Block(_Block):
    """datasketch affine32: a * h + b mod 2^32."""

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        super().__init__(a, b, np.uint32)

    def __call__(self, h: np.ndarray) -> np.ndarray:
        y = self.y[:, : h.size]
        np.multiply(self.a, h[None, :], out=y)
        y += self.b
        return y


def signatures(shingles: Shingles, *, hash: HashName, num_perm: int, seed: int) -> np.ndarray:
    """uint32 (documents with shingles, num_perm) signatures, in `shingles.valid` order."""
    if hash == "sha1":
        hashes = sha1_hash32(shingles)
        block: _Block = _LegacyBlock(*legacy_permutations(num_perm, seed))
    elif hash == "fast":
        hashes = _fmix32(poly_hash32(shingles))
        block = _Affine32Block(*affine32_permutations(num_perm, seed))
    else:
        raise ValueError(f"unknown hash {hash!r}; known: sha1, fast")
    with np.errstate(over="ignore"):
        return _reduce_rows(hashes, shingles.offsets, block)


def band_bytes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(docs, bands) views of 4*rows bytes each: the band's uint32 values big-endian, as RPv2's
    `bytes(minhashes[start:end].byteswap().data)` gives on little-endian hosts."""
    if bands * rows > sig.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows need {bands * rows} permutations, have {sig.shape[1]}")
    return np.ascontiguousarray(sig[:, : bands * rows].astype(">u4"))
