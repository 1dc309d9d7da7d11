"""Signatures against datasketch (RPv2's reference: legacy scheme, sha1_hash32, seed 42) and RPv2's
own band layout, on real documents and edge cases."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from redpajama.pipelines import minhash_hashing as mh
from redpajama.pipelines.minhash import optimal_param
from redpajama.quality_signals.view import DocView

datasketch = pytest.importorskip("datasketch")
from datasketch import MinHash  # noqa: E402
from datasketch.hashfunc import sha1_hash32  # noqa: E402

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dolma-test-warc-and-ccnet-jsonl"


def _rpv2_signature(words: list[str], n: int = 13, num_perm: int = 128, seed: int = 42) -> np.ndarray:
    """RPv2's `generate_signature`: set of space-joined n-grams -> datasketch legacy MinHash."""
    shingles = {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=sha1_hash32, scheme="legacy")
    m.update_batch([s.encode("utf-8") for s in shingles])
    return m.hashvalues.astype(np.uint32)


def _ours(docs: list[list[str]], hash: str = "sha1", n: int = 13, num_perm: int = 128) -> tuple:
    shingles = mh.word_shingles(docs, n)
    return mh.signatures(shingles, hash=hash, num_perm=num_perm, seed=42), shingles.valid


def _real_docs() -> list[list[str]]:
    if not DATA.exists():
        pytest.skip(f"shared data not found at {DATA}")
    texts = []
    for name in ("cc_en_head-0091.jsonl.gz", "cc_en_head-0174.jsonl.gz"):
        with gzip.open(DATA / name, "rt") as handle:
            texts += [json.loads(line)["text"] for line in handle]
    return [DocView(t).normalized_words for t in texts]


def test_real_documents_bit_exact():
    docs = _real_docs()
    sig, valid = _ours(docs)
    expected = [_rpv2_signature(w) for w in docs if len(w) >= 13]
    assert valid.sum() == len(expected) > 10
    np.testing.assert_array_equal(sig, np.array(expected))


def test_real_documents_across_chunk_boundaries(monkeypatch):
    # small chunks split documents over several blocks: the per-document minimum must still hold
    monkeypatch.setattr(mh, "CHUNK_ROWS", 37)
    docs = _real_docs()
    sig, _ = _ours(docs)
    np.testing.assert_array_equal(sig, np.array([_rpv2_signature(w) for w in docs if len(w) >= 13]))


EDGE = {
    "exactly_13": [f"w{i}" for i in range(13)],
    "twelve": [f"w{i}" for i in range(12)],
    "empty": [],
    "repeated": ["la"] * 40,
    "repeated_phrase": ("the cat sat on the mat and then " * 8).split(),
    "unicode": [
        "ça",
        "été",
        "très",
        "déjà",
        "vu",
        "über",
        "straße",
        "ñandú",
        "日本語",
        "テキスト",
        "ελληνικά",
        "русский",
        "текст",
        "😀",
        "é",
        "fin",
    ],
}


def test_edge_cases_bit_exact_and_nulls():
    docs = list(EDGE.values())
    sig, valid = _ours(docs)
    assert valid.tolist() == [len(w) >= 13 for w in docs]
    expected = np.array([_rpv2_signature(w) for w in docs if len(w) >= 13])
    np.testing.assert_array_equal(sig, expected)


def test_wraparound_is_what_matches():
    # exact big-integer arithmetic gives different values: RPv2's numpy uint64 wraps h * a first
    a, b = mh.legacy_permutations(128, 42)
    h = sha1_hash32(b"some shingle")
    exact = [((h * int(ai) + int(bi)) % ((1 << 61) - 1)) & 0xFFFFFFFF for ai, bi in zip(a, b, strict=True)]
    wrapped = [
        ((h * int(ai) % (1 << 64) + int(bi)) % (1 << 64) % ((1 << 61) - 1)) & 0xFFFFFFFF
        for ai, bi in zip(a, b, strict=True)
    ]
    sig, _ = _ours([["some", "shingle"]], n=2)
    assert sig[0].tolist() == wrapped != exact


def test_mersenne_fold_exact_near_prime():
    # values whose low 32 bits are >= 2^32 - 8 take the exact path; compare with numpy's %
    block = mh._LegacyBlock(np.array([1], np.uint64), np.array([0], np.uint64))
    p = (1 << 61) - 1
    xs = np.array([p - 1, p, p + 1, p + 6, 2 * p, 2 * p + 7, (1 << 64) - 1, 0xFFFFFFF8, 12345], np.uint64)
    got = block(xs)[0]
    np.testing.assert_array_equal(got, ((xs % np.uint64(p)) & np.uint64(0xFFFFFFFF)).astype(np.uint32))


def test_char_shingles_bit_exact():
    docs = _real_docs()[:5] + [EDGE["unicode"], ["ab"]]
    shingles = mh.char_shingles(docs, 5)
    sig = mh.signatures(shingles, hash="sha1", num_perm=128, seed=42)
    expected = []
    for words in docs:
        text = " ".join(words)
        if len(text) < 5:
            continue
        m = MinHash(num_perm=128, seed=42, hashfunc=sha1_hash32, scheme="legacy")
        m.update_batch([text[i : i + 5].encode("utf-8") for i in range(len(text) - 4)])
        expected.append(m.hashvalues.astype(np.uint32))
    assert shingles.valid.tolist() == [True] * 6 + [False]
    np.testing.assert_array_equal(sig, np.array(expected))


def test_fast_mode_equals_datasketch_affine32_over_our_base_hash():
    docs = _real_docs()[:6] + [EDGE["unicode"], EDGE["repeated"]]
    sig, valid = _ours(docs, hash="fast")
    expected = []
    for words in docs:
        if len(words) < 13:
            continue
        m = MinHash(num_perm=128, seed=42, hashfunc=mh.poly_hash32_bytes, scheme="affine32")
        m.update_batch([" ".join(words[i : i + 13]).encode("utf-8") for i in range(len(words) - 12)])
        expected.append(m.hashvalues)
    np.testing.assert_array_equal(sig, np.array(expected))


def test_fast_mode_estimates_jaccard():
    rng = np.random.default_rng(0)
    vocab = [f"t{i}" for i in range(5000)]
    base = list(rng.choice(vocab, 600))
    near = base[:500] + list(rng.choice(vocab, 100))
    sig, _ = _ours([base, near, list(rng.choice(vocab, 600))], hash="fast", n=3, num_perm=256)
    assert 0.55 < np.mean(sig[0] == sig[1]) < 0.85  # true shingle Jaccard ~0.69
    assert np.mean(sig[0] == sig[2]) < 0.05


def test_band_bytes_equal_rpv2_layout():
    sig, _ = _ours(_real_docs()[:3])
    for bands, rows in [(14, 9), (9, 13), (5, 25), (1, 128)]:
        data = mh.band_bytes(sig, bands, rows)
        for d in range(sig.shape[0]):
            ours = [data[d, i * rows : (i + 1) * rows].tobytes() for i in range(bands)]
            # RPv2 `MinHash.compute_banded_signatures`
            rpv2 = [bytes(sig[d][i * rows : (i + 1) * rows].byteswap().data) for i in range(bands)]
            assert ours == rpv2


@pytest.mark.parametrize(
    ("threshold", "expected"), [(0.7, (14, 9)), (0.8, (9, 13)), (0.9, (5, 25)), (1.0, (1, 128))]
)
def test_optimal_param_rpv2_values(threshold, expected):
    assert optimal_param(threshold, 128) == expected


def test_optimal_param_equals_datasketch():
    from datasketch.lsh import _optimal_param

    for threshold in (0.5, 0.75, 0.85, 0.95):
        assert optimal_param(threshold, 64) == _optimal_param(threshold, 64, 0.5, 0.5)


def test_permutation_checksum_is_rpv2s_matrix():
    a, b = mh.legacy_permutations(128, 42)
    proto = MinHash(num_perm=128, seed=42, scheme="legacy")
    np.testing.assert_array_equal(np.array([a, b]), proto.permutations)
    assert len(mh.permutation_checksum(128, 42)) == 64
