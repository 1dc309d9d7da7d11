"""Tokenizers: the bundled GPT-2 BPE equals tiktoken's gpt2 encoding id for id on real text.

The oracle is tiktoken built offline from the bundled files (checked against the sha256 values
tiktoken hard-codes for OpenAI's originals) with tiktoken's own GPT-2 split pattern.
"""

import gzip
import json
import sys
from pathlib import Path

import pytest
import regex
import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import models, pre_tokenizers

from redpajama.errors import UserError
from redpajama.training.tokenizer import GPT2_DIR, load_tokenizer, train_tokenizer

# The split pattern of OpenAI's original gpt-2 encoder.py, written out independently of both libraries.
GPT2_SPLIT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

ODD_TEXTS = [
    "Hello world",
    "",
    " ",
    "   leading and trailing   ",
    "tabs\tand\t\ttabs\n\n\nnewlines\r\n\r\nCRLF \n \n",
    "nbsp\u00a0thin\u2009ideographic\u3000nel\x85zwsp\u200bline\u2028para\u2029end",
    "vt\x0bff\x0cfs\x1cgs\x1drs\x1eus\x1f",
    "emoji 😀👍🏽👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 and 🧪",
    "numbers 0 12 345 6789 1234567890 3.14159 -2e10 1,000,000 ٣٤٥ ¼ Ⅻ",
    "contractions it's we'll they've I'M she'd 'S 'LL don't",
    "mixed 日本語のテキスト와 한국어 и русский текст, ελληνικά; עברית",
    "code: def f(x):\n    return x**2  # comment\n\tif a != b: pass",
    "a literal <|endoftext|> inside a document",
    "trailing spaces before newline   \nnext",
]


@pytest.fixture(scope="module")
def tiktoken_gpt2() -> tiktoken.Encoding:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", "")  # read the files, write no cache
        ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
            str(GPT2_DIR / "vocab.bpe"),
            str(GPT2_DIR / "encoder.json"),
            vocab_bpe_hash="1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
            encoder_json_hash="196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
        )
    return tiktoken.Encoding(
        name="gpt2",
        pat_str=openai_public.r50k_pat_str,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )


@pytest.fixture(scope="module")
def gpt2():
    return load_tokenizer("gpt2")


@pytest.fixture(scope="module")
def real_texts(shared_data: Path) -> list[str]:
    """WikiText-2 articles and Debian reference chapters in de, en, fr, ja, zh-cn."""
    wiki = (shared_data / "lm-wikitext-2-valid-test" / "valid.txt").read_text(encoding="utf-8")
    texts = [t for t in wiki.split("\n = ") if t.strip()][:200]
    for path in sorted((shared_data / "debian-reference-multilingual" / "txt").glob("*.txt.gz")):
        book = gzip.decompress(path.read_bytes()).decode("utf-8")
        texts += [book[i : i + 4000] for i in range(0, min(len(book), 160_000), 4000)]
    return texts


def test_gpt2_ids_equal_tiktoken_on_real_multilingual_text(gpt2, tiktoken_gpt2, real_texts):
    assert sum(map(len, real_texts)) > 1_000_000
    ours = gpt2.encode_batch(real_texts)
    theirs = tiktoken_gpt2.encode_ordinary_batch(real_texts)
    mismatched = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    assert not mismatched, real_texts[mismatched[0]][:200]


@pytest.mark.parametrize("text", ODD_TEXTS)
def test_gpt2_ids_equal_tiktoken_on_odd_text(gpt2, tiktoken_gpt2, text):
    assert gpt2.encode(text) == tiktoken_gpt2.encode_ordinary(text)


def test_every_unicode_whitespace_splits_like_tiktoken(gpt2, tiktoken_gpt2):
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()] + ["\u200b", "\u180e", "\ufeff"]
    shapes = ["a{0}b", "a {0} b", "{0}{0}x", "x {0}{0}", "x  {0}", "1{0}2", "{0} 'll", "!{0}\n{0}?"]
    texts = [shape.format(ch) for ch in spaces for shape in shapes]
    assert gpt2.encode_batch(texts) == tiktoken_gpt2.encode_ordinary_batch(texts)


def test_pre_tokenizer_split_is_the_gpt2_regex(gpt2, real_texts):
    # The ByteLevel pre-tokenizer reports pieces in its byte alphabet; map them back to text.
    byte_of = {ch: b for b, ch in enumerate(_bytes_to_unicode())}
    texts = ODD_TEXTS + real_texts[:40] + real_texts[-40:]
    for text in texts:
        pieces = gpt2.backend.pre_tokenizer.pre_tokenize_str(text)
        ours = [bytes(byte_of[ch] for ch in piece).decode("utf-8") for piece, _ in pieces]
        assert ours == GPT2_SPLIT.findall(text), text[:100]


def _bytes_to_unicode() -> list[str]:
    """GPT-2's byte -> printable character table (encoder.py), indexed by byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def test_encode_batch_equals_encode_and_decode_round_trips(gpt2, real_texts):
    texts = ODD_TEXTS + real_texts[::25]
    batch = gpt2.encode_batch(texts)
    assert batch == [gpt2.encode(t) for t in texts]
    assert [gpt2.decode(ids) for ids in batch] == texts


def test_gpt2_identity_and_eos_is_never_produced_by_text(gpt2, tiktoken_gpt2):
    assert (gpt2.name, gpt2.vocab_size, gpt2.eos_id) == ("gpt2", 50257, 50256)
    assert gpt2.encode("Hello world") == [15496, 995]
    literal = gpt2.encode("<|endoftext|>")
    assert gpt2.eos_id not in literal and literal == tiktoken_gpt2.encode_ordinary("<|endoftext|>")
    assert gpt2.decode([gpt2.eos_id]) == "<|endoftext|>"
    assert load_tokenizer("gpt2").fingerprint == gpt2.fingerprint


def test_hf_tokenizer_json_loads_by_file_and_by_folder(shared_data: Path, tmp_path: Path):
    path = shared_data / "tokenizer-gpt2-bpe-and-cl100k" / "gpt-neox-olmo-tokenizer.json"
    neox = load_tokenizer(str(path))
    assert neox.encode("Hello world") == [12092, 1533]  # the value its SOURCE.txt records
    assert neox.vocab_size == 50280 and neox.eos_id == neox.backend.token_to_id("<|endoftext|>")
    # A document that spells the EOS token is text, not an end of document.
    assert neox.eos_id not in neox.encode("before <|endoftext|> after")
    folder = tmp_path / "neox"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(path.read_bytes())
    by_folder = load_tokenizer(str(folder))
    assert by_folder.name == "neox" and by_folder.fingerprint == neox.fingerprint
    assert by_folder.encode_batch(ODD_TEXTS) == neox.encode_batch(ODD_TEXTS)


def test_bad_tokenizer_specs_are_user_errors_naming_the_file(tmp_path: Path):
    with pytest.raises(UserError, match="nope.json"):
        load_tokenizer(str(tmp_path / "nope.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UserError, match="broken.json"):
        load_tokenizer(str(broken))
    no_eos = tmp_path / "no_eos.json"
    backend = HFTokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.save(str(no_eos))
    with pytest.raises(UserError, match="no_eos.json.*end-of-document"):
        load_tokenizer(str(no_eos))


def test_trained_tokenizer_saves_reloads_and_is_deterministic(real_texts, tmp_path: Path):
    english = real_texts[:60]
    trained = train_tokenizer(english, 400, tmp_path / "a" / "tokenizer.json")
    again = train_tokenizer(english, 400, tmp_path / "b" / "tokenizer.json")
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (
        tmp_path / "b" / "tokenizer.json"
    ).read_bytes()
    assert trained.vocab_size == 400 and trained.name == "a"
    assert trained.decode([trained.eos_id]) == "<|endoftext|>"
    reloaded = load_tokenizer(str(tmp_path / "a" / "tokenizer.json"))
    assert reloaded.fingerprint == trained.fingerprint == again.fingerprint
    # It learned merges (fewer tokens than bytes) and still encodes text it never saw, byte by byte.
    sample = english[0]
    assert len(trained.encode(sample)) < 0.6 * len(sample.encode("utf-8"))
    for text in [*ODD_TEXTS, real_texts[-1]]:
        ids = reloaded.encode(text)
        assert all(0 <= i < 400 for i in ids) and trained.eos_id not in ids
        assert reloaded.decode(ids) == text
    assert json.loads((tmp_path / "a" / "tokenizer.json").read_text())["model"]["type"] == "BPE"


def test_trained_vocab_must_hold_the_bytes(tmp_path: Path):
    with pytest.raises(UserError, match="too small"):
        train_tokenizer(["abc"], 100, tmp_path / "t.json")
