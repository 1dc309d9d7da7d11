r"""Regenerate rpv2_reference.json: golden values from RedPajama-V2's own signal code.

Not run by the tests and not importing RPv2 code from this repository: it takes the path of a
local checkout of github.com/togethercomputer/RedPajama-Data and runs the reference classes
(`app/src/core/...`) on a fixed document set. Run it with an interpreter that has the reference's
dependencies (nltk, numpy; msgspec/fasttext imports may be stubbed), e.g.
NLTK must be a version whose RegexpTokenizer uses the stdlib `re` engine (<= 3.8.x; RPv2 ran in
2023 with 3.8.1). Newer NLTK compiles the pattern with the third-party `regex` engine, whose \w
also matches combining marks, which changes raw-word counts of NFD text.

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install nltk numpy
    /tmp/refvenv/bin/python tests/quality_signals/golden/make_golden.py /path/to/RedPajama-Data

Documents (truncated to MAX_CHARS; all from ../shared/data next to the repository):
  * 40 WikiText-2 articles (valid + test), 30 Tiny Shakespeare slices, 21 Debian reference slices
    (7 each en/de/fr, language de/fr for those), the 20 CC-net records of the dolma test files
    (with their source_domain), 10 es + 10 it documents of 20 lingua test sentences each;
  * the edge cases of EDGE_CASES below (empty, whitespace, CRLF, accents, CJK, bullets, ...),
    some with language None (the reference is run with English for those).

The RPv2 stop words are the sets of app/src/core/quality_signals/utils/stop_words.py; the
LDNOOBW lists are this repository's quality_signals/resources/ldnoobw/<lang>.txt (RPv2 reads
the same files as <lang>.txt). UT1 uses the tiny map UT1_MAP.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
MAX_CHARS = 5000
UT1_MAP = {"100kinvesting.com": 23, "bad.example": 0, "mixed.example": 21}

EDGE_CASES: list[tuple[str, str | None, str | None]] = [
    # (text, language, source_domain)
    ("", "en", None),
    (" ", "en", None),
    ("   \t  \n  \n\n", "en", None),
    ("\n", "en", None),
    ("\n\n\n", "en", None),
    ("a", "en", None),
    ("Hello world", "en", None),
    ("Hello world\n", "en", None),
    ("Line one.\r\nLine two!\r\nLine three?\r\n", "en", None),
    ("No trailing newline.\nSecond line without end", "en", None),
    ("Café naïve résumé coöperate façade. Über straße ÉCOLE.", "fr", None),
    ("Der Bär läuft über die Brücke. Die Ärzte sind müde.", "de", None),
    ("中文测试。这是一个句子！第二句？\n日本語のテキストです。", "en", None),
    ("한국어 문장입니다. 숫자 一二三 ⅻ ½ ² ٣.", "en", None),
    (
        "• first bullet\n‣ second\n▶ third\n◀ fourth\n◦ fifth\n■ sixth\n□ seventh\n▪ 8\n▫ 9\n– dash\n- hyphen\n  • indented\n",
        "en",
        None,
    ),
    ("Wait for it...\nAnd then…\nNothing....\n..\n…   \nend. ...", "en", None),
    ("# heading\n## sub ### deep #tag", "en", None),
    ("THIS IS ALL CAPS TEXT. I AM A1 LOUD!", "en", None),
    ("The Quick Brown Fox And The Lazy Dog Of The Year", "en", None),
    ("the quick brown fox and the lazy dog of the year", "en", None),
    (
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit. LOREM IPSUM again; lorem-ipsum; lorem  ipsum.",
        "en",
        None,
    ),
    ("function f() { return 1; }\nvar x = {a: {b: 2}};\n", "en", None),
    (
        "Please enable JavaScript.\njavascript javascript JAVASCRIPT java-script\nJavaScript: is required\n",
        "en",
        None,
    ),
    ("a a a a a", "en", None),
    ("a a a a a a a a a a a a a a a a a a a a a a", "en", None),
    ("aa b aa b c dd c dd c dd", "en", None),
    ("x y z x y z x y z x y z q", "en", None),
    (
        "one two three four five six seven eight nine ten eleven one two three four five six seven eight nine ten eleven",
        "en",
        None,
    ),
    ("the cat sat on the mat and the dog sat on the log and the cat sat on the mat again today", "en", None),
    ("3.14 is pi. e.g. this, i.e. that! U.S.A. v1.2.3 www.example.com?", "en", None),
    ("...!!!???", "en", None),
    ("!!!", "en", None),
    ("___ __init__ _x_", "en", None),
    ("tabs\tand\u00a0nbsp\u2000enquad\u3000ideographic\u2028linesep\u0085nel\x1cfs", "en", None),
    ("ΟΔΟΣ Σ σ ς. ΌΣΟΣ ΑΣΣΟΣ", "en", None),
    ("İstanbul KELVIN \u212a ﬁne ǅemal ß ẞ", "en", None),
    ("Ⓐ Ⓑ ⓐ ⅫⅩ ① combining e\u0301 a\u0308 \u0301alone", "en", None),
    ("Fun with 2 girls 1 cup and auto erotic baby batter, then a Alabama Hot Pocket.", "en", None),
    ("scheiße! MILF dödel arschloch", "de", None),
    ("Ernst Ordnung Schluss und der die das", "de", None),
    ("He said, \u201cStop.\u201d\nShe asked \u201cwhy\u201d \nOK\u201d  \n", "en", None),
    ("don't can't won't it's a's", "en", None),
    ("mixed\rcarriage\rreturns\r", "en", None),
    ("emoji 😀😀 test 👍🏽 ok 🇫🇷", "en", None),
    ("surrogate \ud800 lone", "en", None),
    ("\ufeffBOM at start and zero\u200bwidth space", "en", None),
    ("Just some text with no language given. The end.", None, None),
    ("Unknown domain test.", "en", "bad.example"),
    ("Domain with two categories.", "en", "mixed.example"),
    ("Subdomain is not looked up.", "en", "www.bad.example"),
    ("El perro come la comida. ¿Dónde está? ¡Olé!", "es", None),
    ("Il cane mangia. Perché no? È così.", "it", None),
]


def _truncate(text: str) -> str:
    return text[:MAX_CHARS]


def build_documents(data: Path) -> list[dict]:
    rng = random.Random(1234)
    docs: list[dict] = []

    def add(source, text, language="en", source_domain=None):
        docs.append(
            {"source": source, "text": _truncate(text), "language": language, "source_domain": source_domain}
        )

    # WikiText-2: articles start at lines " = Title = "
    for split, k in (("valid", 20), ("test", 20)):
        raw = (data / "lm-wikitext-2-valid-test" / f"{split}.txt").read_text(encoding="utf-8")
        arts = re.split(r"\n(?= = [^=].* = \n)", raw)
        arts = [a for a in arts if len(a) > 200]
        for i, art in enumerate(rng.sample(arts, k)):
            add(f"wikitext-{split}-{i}", art)

    shakespeare = (data / "lm-tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    for i in range(30):
        start = rng.randrange(0, len(shakespeare) - 4000)
        add(f"shakespeare-{i}", shakespeare[start : start + rng.choice((800, 2000, 3000, 4000))])

    for lang in ("en", "de", "fr"):
        with gzip.open(
            data / "debian-reference-multilingual" / "txt" / f"debian-reference.{lang}.txt.gz", "rt"
        ) as f:
            book = f.read()
        for i in range(7):
            start = rng.randrange(0, len(book) - 5000)
            add(f"debian-{lang}-{i}", book[start : start + 4000], language=lang)

    for name in ("cc_en_head-0091.jsonl.gz", "cc_en_head-0174.jsonl.gz"):
        with gzip.open(data / "dolma-test-warc-and-ccnet-jsonl" / name, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f):
                rec = json.loads(line)
                meta = rec.get("metadata", {})
                add(
                    f"{name}-{i}",
                    rec["text"],
                    language=meta.get("language", "en"),
                    source_domain=meta.get("source_domain"),
                )

    tar_path = (
        data / "lid-eval-lingua-testdata-75-languages" / "lingua_language_testdata_sentences_wordpairs.tar.gz"
    )
    with tarfile.open(tar_path) as tar:
        for lang in ("es", "it"):
            member = tar.extractfile(f"language-testdata/sentences/{lang}.txt")
            sentences = member.read().decode("utf-8").splitlines()
            for i in range(10):
                chunk = sentences[i * 20 : (i + 1) * 20]
                add(f"lingua-{lang}-{i}", "\n".join(chunk) + ("\n" if i % 2 else ""), language=lang)

    for i, (text, lang, dom) in enumerate(EDGE_CASES):
        add(f"edge-{i}", text, language=lang, source_domain=dom)
    return docs


def run_reference(rpv2: Path, docs: list[dict]) -> list[dict]:
    sys.path.insert(0, str(rpv2 / "app" / "src"))
    from core.document import Document  # noqa: E402  (RPv2 reference code)
    from core.quality_signals.content import register_content_callables
    from core.quality_signals.lines import register_lines_callables
    from core.quality_signals.natural_language import register_natural_language_callables
    from core.quality_signals.repetitions import register_repetitions_callables

    ut1_dir = Path(tempfile.mkdtemp())
    (ut1_dir / "domain_to_category_id.json").write_text(json.dumps(UT1_MAP))
    ldnoobw_dir = REPO / "quality_signals" / "resources" / "ldnoobw"

    per_lang: dict[str, list] = {}

    def callables(lang):
        if lang not in per_lang:
            per_lang[lang] = [
                *register_content_callables(
                    language=lang, bad_urls_dir=str(ut1_dir), bad_words_dir=str(ldnoobw_dir)
                ),
                *register_repetitions_callables(),
                *register_natural_language_callables(),
                *register_lines_callables(),
            ]
        return per_lang[lang]

    out = []
    for d in docs:
        lang = d["language"] or "en"
        document = Document(d["text"], domain=d["source_domain"], precompute_ngrams=True)
        expected = {}
        for func in callables(lang):
            expected[func.field_name] = [list(span) for span in func(document)]
        out.append({**d, "expected": expected})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rpv2_checkout", type=Path, help="local checkout of togethercomputer/RedPajama-Data")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "rpv2_reference.json")
    args = ap.parse_args()
    docs = build_documents(args.data)
    records = run_reference(args.rpv2_checkout, docs)
    import nltk

    payload = {
        "nltk_version": nltk.__version__,
        "about": "RedPajama-V2 reference outputs (app/src/core/quality_signals) for the heuristic rps_* "
        "signals; produced by make_golden.py. Values are RPv2's span lists [start, end, score].",
        "ut1_map": UT1_MAP,
        "documents": records,
    }
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {len(records)} documents, {len(text) / 1e6:.2f} MB -> {args.out}")


if __name__ == "__main__":
    main()
