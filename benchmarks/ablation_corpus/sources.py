"""Clean prose and real web text for the ablation corpus, read from ../shared/data only.

Two pools, both English:

- `clean`: human-edited prose cut into documents on paragraph boundaries: Tiny Shakespeare,
  Botchan (Project Gutenberg header and licence removed), the English Debian Reference (technical
  prose with ASCII tables and shell examples: the rules treat much of it as "not prose", which the
  summary shows), and the English sentences of Lingua's LID test set (Leipzig web/news sentences).
- `web`: real crawled pages, read with our own readers: the Common Crawl and wget WARC samples
  (HTML extracted by `read_file`, main content), the cc_net WET sample, Dolma's cc_net JSONL
  documents, and the English pages of trafilatura's evaluation set (`extract_html`). Pages that
  our fastText language id (lid.176, as the ccnet stage uses it) does not call English are left
  out: the corpus trains an English GPT-2-tokenizer model.

Never read here: WikiText-2, BLiMP and PIQA, the evaluation sets of the ablation.

GPT-2 tokens per pool (measured with tiktoken's GPT-2 BPE on the shared encoder.json/vocab.bpe):
see README.md; Debian's indentation and tables make it ~2.5 bytes/token against ~4 for prose.
"""

from __future__ import annotations

import gzip
import math
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from redpajama.io.readers import read_file
from redpajama.io.readers.base import RawDoc, ReadOptions
from redpajama.io.readers.extract import extract_html
from redpajama.pipelines.ccnet.language_id import identifier

#: lid.176's rounded probability a web page needs to count as English (CCNet's default threshold).
ENGLISH_THRESHOLD = 0.5
#: Clean documents are cut to a log-normal word count: median and spread, clipped to a range that
#: keeps every clean document above Gopher's 50-word minimum.
MEDIAN_WORDS = 400
SIGMA_WORDS = 0.7
MIN_WORDS, MAX_WORDS = 80, 2500

LID_MODEL = "lid-fasttext-lid176-ftz/lid.176.ftz"
WEB_FILES = (
    "cc-warc-cc-main-2020-34-resiliparse/warcfile.warc.gz",
    "dolma-test-warc-and-ccnet-jsonl/sample-0000.warc.gz",
    "dolma-test-warc-and-ccnet-jsonl/sample-0001.warc.gz",
    "cc-whirlwind-cc-main-2024-22/whirlwind.warc.wet.gz",
    "cc-wet-format-sample-cc_net/sample.warc.wet",
    "dolma-test-warc-and-ccnet-jsonl/cc_en_head-0091.jsonl.gz",
    "dolma-test-warc-and-ccnet-jsonl/cc_en_head-0174.jsonl.gz",
    "dolma-test-warc-and-ccnet-jsonl/provided-documents-000.json.gz",
)
TRAFILATURA = "trafilatura-eval-html-multilingual"


@dataclass(frozen=True)
class Doc:
    """One corpus document and where it came from (the origin side table is built from these)."""

    id: str
    text: str
    origin: str  # clean | web | spam | boilerplate | duplicate
    source: str  # the file or generator: shakespeare, debian-reference, spam:link-list, ...
    url: str | None = None
    dup_of: str | None = None  # duplicates: the id of the planted original
    edit: str | None = None  # duplicates: how the copy differs from it


def word_count(text: str) -> int:
    return len(text.split())


def chunk_paragraphs(paragraphs: list[str], rng: random.Random, sep: str) -> list[str]:
    """Consecutive paragraphs joined into documents of a log-normal number of words.

    Cutting only between paragraphs keeps every document readable; the last, short remainder is
    merged into the previous document so no clean document falls under MIN_WORDS.
    """
    docs: list[list[str]] = []
    current: list[str] = []
    words, target = 0, _target(rng)
    for para in paragraphs:
        current.append(para)
        words += word_count(para)
        if words >= target:
            docs.append(current)
            current, words, target = [], 0, _target(rng)
    if current:
        if docs and words < MIN_WORDS:
            docs[-1].extend(current)
        else:
            docs.append(current)
    return [sep.join(d) for d in docs]


def _target(rng: random.Random) -> int:
    value = math.exp(rng.gauss(math.log(MEDIAN_WORDS), SIGMA_WORDS))
    return int(min(MAX_WORDS, max(MIN_WORDS, value)))


def _blank_line_paragraphs(text: str) -> list[str]:
    return [p.strip("\n") for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def shakespeare(shared: Path) -> list[str]:
    """Speeches (speaker line + verse), as the file separates them by blank lines."""
    return _blank_line_paragraphs((shared / "lm-tinyshakespeare" / "input.txt").read_text("utf-8"))


def botchan(shared: Path) -> list[str]:
    """The novel's hard-wrapped lines, between Project Gutenberg's START and END markers."""
    text = (shared / "sentencepiece-test-models-botchan" / "botchan.txt").read_text("utf-8-sig")
    start = text.index("*** START OF")
    end = text.find("*** END OF")
    body = text[text.index("\n", start) + 1 : end if end >= 0 else None]
    # Without an END marker the licence still trails the novel: cut at its first line.
    body = body.split("End of Project Gutenberg", 1)[0]
    return [line for line in body.splitlines() if line.strip()]


def debian_reference(shared: Path) -> list[str]:
    path = shared / "debian-reference-multilingual" / "txt" / "debian-reference.en.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return _blank_line_paragraphs(f.read())


def lingua_sentences(shared: Path) -> list[str]:
    path = (
        shared
        / "lid-eval-lingua-testdata-75-languages"
        / "lingua_language_testdata_sentences_wordpairs.tar.gz"
    )
    with tarfile.open(path) as tar:
        member = tar.extractfile("language-testdata/sentences/en.txt")
        if member is None:
            raise FileNotFoundError(f"{path}: no language-testdata/sentences/en.txt")
        return [s.strip() for s in member.read().decode("utf-8").splitlines() if s.strip()]


#: name -> (paragraph reader, separator between paragraphs of one document)
CLEAN_SOURCES = {
    "shakespeare": (shakespeare, "\n\n"),
    "botchan": (botchan, "\n"),
    "debian-reference": (debian_reference, "\n\n"),
    "lingua-sentences": (lingua_sentences, "\n"),
}


def clean_documents(shared: Path, seed: int) -> list[Doc]:
    """Every clean source cut into documents; the cut points depend only on `seed`."""
    docs = []
    for name, (read, sep) in CLEAN_SOURCES.items():
        rng = random.Random(f"{seed}/clean/{name}")
        for i, text in enumerate(chunk_paragraphs(read(shared), rng, sep)):
            docs.append(Doc(id=f"clean/{name}/{i:05d}", text=text, origin="clean", source=name))
    return docs


def _read_web_file(path: Path) -> Iterator[tuple[str, str | None]]:
    for item in read_file(str(path), ReadOptions()):
        if isinstance(item, RawDoc) and item.fields.get("raw_content"):
            yield item.fields["raw_content"], item.fields.get("url")


def _trafilatura_pages(shared: Path) -> Iterator[tuple[str, str | None]]:
    folder = shared / TRAFILATURA
    for line in (folder / "index.tsv").read_text("utf-8").splitlines()[1:]:
        name, _lang, _size, url = line.split("\t")[:4]
        _title, text = extract_html((folder / "html" / name).read_bytes())
        if text:
            yield text, url


def web_documents(shared: Path) -> list[Doc]:
    """Real web pages that lid.176 calls English, in file order (no randomness)."""
    found: list[tuple[str, str, str | None]] = []
    for rel in WEB_FILES:
        source = Path(rel).name.split(".")[0]
        found += [(source, text, url) for text, url in _read_web_file(shared / rel)]
    found += [("trafilatura-eval", text, url) for text, url in _trafilatura_pages(shared)]
    lid = identifier(shared / LID_MODEL)
    predictions = lid.predict([text for _, text, _ in found])
    docs = []
    for n, ((source, text, url), pred) in enumerate(zip(found, predictions, strict=True)):
        if pred.language == "en" and pred.score >= ENGLISH_THRESHOLD:
            docs.append(Doc(id=f"web/{source}/{n:05d}", text=text, origin="web", source=source, url=url))
    return docs
