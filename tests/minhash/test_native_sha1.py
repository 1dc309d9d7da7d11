"""The compiled SHA-1 loop equals hashlib on every length that exercises SHA-1 padding."""

import hashlib

import numpy as np
import pytest

from redpajama.pipelines import minhash_hashing as mh

native = pytest.importorskip("redpajama._native.sha1_32")


def _reference(buffer: bytes, starts, ends) -> list[int]:
    return [
        int.from_bytes(hashlib.sha1(buffer[s:e]).digest()[:4], "little")
        for s, e in zip(starts, ends, strict=True)
    ]


def test_every_padding_boundary_and_unicode():
    rng = np.random.default_rng(0)
    buffer = bytes(rng.integers(0, 256, 5000, dtype=np.uint8)) + "héllo wörld 中文 😀".encode()
    lengths = [0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4000]
    starts = np.array([int(rng.integers(0, 900)) for _ in lengths] + [5000], dtype=np.int64)
    ends = starts + np.array(lengths + [len(buffer) - 5000], dtype=np.int64)
    words = np.frombuffer(native.sha1_32(buffer, starts, ends), dtype="<u4")
    assert words.tolist() == _reference(buffer, starts.tolist(), ends.tolist())


def test_used_by_signatures_and_equal_to_the_python_path():
    docs = [
        ("the quick brown fox jumps over the lazy dog " * 8).split(),
        ["ein", "kleiner", "Text", "über", "nichts"] * 5,
    ]
    shingles = mh.word_shingles(docs, 13)
    assert mh.sha1_hash32(shingles).tolist() == mh.sha1_hash32_python(shingles).tolist()


def test_out_of_range_is_an_error_not_a_crash():
    with pytest.raises(ValueError, match="outside the buffer"):
        native.sha1_32(b"abc", np.array([0], dtype=np.int64), np.array([10], dtype=np.int64))
