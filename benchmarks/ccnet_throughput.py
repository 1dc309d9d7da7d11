"""CCNet stage throughput per core (line dedup + language id + perplexity) against a plain
per-document loop written the way cc_net's own code runs the same steps, in the same run.

    python benchmarks/ccnet_throughput.py [--repeats N]

Corpus: ~3 KB English documents cut at line boundaries from real texts in the shared data folder
next to the checkout (WikiText-2, the English Debian reference, the cc_net documents of Dolma's
test data). Models: lid.176.ftz, and the English LM of the default bundle when it has one, else a
bigram LM on SentencePiece pieces of Botchan (`toy_lm`). Single process, one core:

  ours      pass 1 (line keys per document, unique + counts with numpy, group merge) then pass 2
            (`transform`: batched key lookup, one fastText call per batch, batched SentencePiece,
            KenLM per document), batches of 1,000 documents.
  baseline  cc_net style: regex normalizers, a dict hash set filled line by line, `finalize_doc`
            per document, one fastText `predict` per document, `normalize` + `encode_as_pieces` +
            `kenlm.score` per document.

Median of N repeats after a warm-up. Writes benchmarks/results/ccnet_throughput.json.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_model, versions  # noqa: E402

from redpajama import schema  # noqa: E402
from redpajama.artifacts.bundle import Bundle  # noqa: E402
from redpajama.pipelines.ccnet.language_id import LanguageIdentifier  # noqa: E402
from redpajama.pipelines.ccnet.line_dedup import document_keys, duplicate_keys, unique_counts  # noqa: E402
from redpajama.pipelines.ccnet.normalize import UNICODE_PUNCT, normalize  # noqa: E402
from redpajama.pipelines.ccnet.perplexity import LanguageModel  # noqa: E402
from redpajama.pipelines.ccnet.toy_lm import write_arpa  # noqa: E402
from redpajama.pipelines.ccnet.transform import Models, TransformOptions, transform  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "ccnet_throughput.json"
DOC_CHARS = 3_000
BATCH = 1_000


def _cut(text: str) -> list[str]:
    docs, cur, size = [], [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        cur.append(line)
        size += len(line) + 1
        if size >= DOC_CHARS:
            docs.append("\n".join(cur))
            cur, size = [], 0
    return docs


def corpus() -> list[str]:
    texts = []
    wiki = SHARED / "lm-wikitext-2-valid-test"
    for name in ("valid.txt", "test.txt"):
        texts.append((wiki / name).read_text("utf-8"))
    texts.append(
        gzip.open(SHARED / "debian-reference-multilingual/txt/debian-reference.en.txt.gz", "rt").read()
    )
    for path in sorted((SHARED / "dolma-test-warc-and-ccnet-jsonl").glob("cc_en_head-*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            texts.extend(json.loads(line)["text"] for line in handle)
    return [d for t in texts for d in _cut(t)]


def models(workdir: Path) -> tuple[Path, Path, Path, str]:
    lid = SHARED / "lid-fasttext-lid176-ftz" / "lid.176.ftz"
    default = Bundle.default().language_model("en")
    if default:
        return lid, default[0], default[1], "default bundle"
    sp_model = SHARED / "sentencepiece-test-models-botchan" / "botchan_en_unigram_1000.model"
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor()
    sp.load(str(sp_model))
    botchan = (sp_model.parent / "botchan.txt").read_text("utf-8").splitlines()
    arpa = write_arpa(
        (" ".join(sp.encode_as_pieces(normalize(x))) for x in botchan if x.strip()), workdir / "en.arpa"
    )
    return lid, arpa, sp_model, "toy bigram on Botchan pieces"


# --- ours ---------------------------------------------------------------------------------


def run_ours(docs: list[str], lid: LanguageIdentifier, lm: LanguageModel) -> int:
    batches = [docs[i : i + BATCH] for i in range(0, len(docs), BATCH)]
    parts = [unique_counts(document_keys([d.split("\n") for d in b])) for b in batches]
    dups = duplicate_keys(parts)
    m = Models(
        lid=lid, language_model=lambda lang: lm if lang == "en" else None, cutoffs={"en": (340.0, 520.0)}
    )
    kept = 0
    for b in batches:
        n = len(b)
        cols = {name: [None] * n for name in schema.FIELD_NAMES}
        cols.update(id=[str(i) for i in range(n)], id_int=list(range(n)), raw_content=b)
        cols.update(length=[len(d) for d in b], nlines=[d.count("\n") + 1 for d in b])
        batch = pa.RecordBatch.from_pydict(cols, schema=schema.DOCUMENT_SCHEMA)
        kept += transform(batch, dups, m, TransformOptions()).batch.num_rows
    return kept


# --- baseline: cc_net's way, per document ----------------------------------------------------

_PUNCT_RE = re.compile(f"[{''.join(UNICODE_PUNCT)}]")
_NON_PRINTING_RE = re.compile(f"[{''.join(map(chr, list(range(0, 32)) + list(range(127, 160))))}]")
_DIGIT_RE = re.compile(r"\d")
_PUNCT_OR_NON_PRINTING_RE = re.compile((_PUNCT_RE.pattern + _NON_PRINTING_RE.pattern).replace("][", ""))


def _cc_normalize_for_dedup(line: str) -> str:
    line = line.strip()
    if not line:
        return line
    return _PUNCT_OR_NON_PRINTING_RE.sub("", _DIGIT_RE.sub("0", line.lower()))


def _cc_normalize(line: str) -> str:
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    nfd = unicodedata.normalize("NFD", line)
    line = "".join(c for c in nfd if unicodedata.category(c) != "Mn")
    line = _DIGIT_RE.sub("0", line)
    line = "".join(UNICODE_PUNCT.get(c, c) for c in line)
    return _NON_PRINTING_RE.sub("", line)


def _cc_hashes(content: str) -> np.ndarray:
    lines = content.split("\n")
    raw = np.fromiter(
        (hashlib.sha1(_cc_normalize_for_dedup(x).encode("utf-8")).digest()[:8] for x in lines),
        dtype=np.dtype((bytes, 8)),
        count=len(lines),
    )
    return np.ndarray(dtype=np.uint64, buffer=raw.data, shape=raw.shape)


def run_baseline(docs: list[str], ft, sp, klm) -> int:
    table: dict[int, bool] = {}
    for doc in docs:  # HashesCollector: FlatHashSet.add looks a document's keys up before setting them
        hashes = _cc_hashes(doc)
        contains = [h in table for h in hashes]
        for h, c in zip(hashes, contains, strict=True):
            table[h] = c
    kept = 0
    for doc in docs:
        hashes = _cc_hashes(doc)  # DuplicatesRemover
        keep = np.fromiter((not table.get(h, False) for h in hashes), count=len(hashes), dtype=bool)
        if not keep.any():
            continue
        hashes = hashes * keep
        seen, new_lines = set(), []
        for line, h in zip(doc.split("\n"), hashes, strict=True):  # finalize_doc
            if h not in seen and h != 0:
                new_lines.append(line)
            seen.add(h)
        text = "\n".join(new_lines)
        labels, scores = ft.predict(text.replace("\n", ""), k=1)  # Classifier
        scores = np.round(scores, 2)
        if scores[0] < 0.5:
            continue
        if labels[0].replace("__label__", "") != "en":
            kept += 1
            continue
        tokenized = " ".join(sp.encode_as_pieces(_cc_normalize(text)))  # MultiSentencePiece
        score, length = 0.0, 0
        for line in tokenized.split("\n"):  # DocLM
            score += klm.score(line)
            length += len(line.split()) + 1
        round(10.0 ** (-score / length), 1)
        kept += 1
    return kept


def _time(fn, repeats: int) -> tuple[float, int]:
    fn()  # warm-up
    times, kept = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        kept = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), kept


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    docs = corpus()
    workdir = Path(tempfile.mkdtemp())
    try:
        lid_path, lm_path, sp_path, lm_source = models(workdir)
        lid = LanguageIdentifier(lid_path)
        lm = LanguageModel.load(lm_path, sp_path)
        ours_s, ours_kept = _time(lambda: run_ours(docs, lid, lm), args.repeats)
        base_s, base_kept = _time(lambda: run_baseline(docs, lid.model, lm.sp, lm.lm), args.repeats)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    chars = sum(len(d) for d in docs)
    result = {
        "docs": len(docs),
        "mean_doc_chars": round(chars / len(docs)),
        "lm": lm_source,
        "ours_docs_per_s": round(len(docs) / ours_s, 1),
        "baseline_docs_per_s": round(len(docs) / base_s, 1),
        "speedup": round(base_s / ours_s, 2),
        "ours_kept": ours_kept,
        "baseline_kept": base_kept,
        "repeats": args.repeats,
        "cpu": cpu_model(),
        "versions": versions("fasttext-numpy2-wheel", "kenlm", "sentencepiece", "numpy", "pyarrow"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
