"""Language id accuracy of lid.176 through the CLI, on Lingua's test sentences."""

import random
import tarfile
import time

from ccnet_helpers import LID, SHARED, cli, rows, write_jsonl

LINGUA = (
    SHARED / "lid-eval-lingua-testdata-75-languages" / "lingua_language_testdata_sentences_wordpairs.tar.gz"
)
PER_LANGUAGE = 100
ALIASES = {"nb": "no"}  # lid.176 labels Norwegian Bokmål as "no"


def _sample(labels: set[str]) -> tuple[list[str], list[str]]:
    texts, gold = [], []
    with tarfile.open(LINGUA) as tar:
        members = sorted(
            (m for m in tar.getmembers() if "/sentences/" in m.name and m.name.endswith(".txt")),
            key=lambda m: m.name,
        )
        for member in members:
            lang = member.name.rsplit("/", 1)[-1][:-4]
            label = ALIASES.get(lang, lang)
            if label not in labels:
                continue
            lines = [
                line.strip()
                for line in tar.extractfile(member).read().decode("utf-8").splitlines()
                if line.strip()
            ]
            for line in random.Random(lang).sample(lines, min(PER_LANGUAGE, len(lines))):
                texts.append(line)
                gold.append(label)
    return texts, gold


def test_lid_accuracy_through_cli(tmp_path, lid_bundle):
    import fasttext
    import pytest

    if not LINGUA.exists():
        pytest.skip(f"missing {LINGUA}")
    labels = {label.replace("__label__", "") for label in fasttext.load_model(str(LID)).get_labels()}
    texts, gold = _sample(labels)
    assert len(set(gold)) >= 60
    started = time.perf_counter()
    write_jsonl(tmp_path / "in" / "lingua.jsonl", texts)
    out = tmp_path / "out"
    cli("ingest", str(tmp_path / "in"), "-o", str(out), "--workers", "1")
    cli(
        "ccnet",
        str(out),
        "--artifacts",
        str(lid_bundle),
        "--lang-threshold",
        "0",
        "--min-length",
        "0",
        "--workers",
        "1",
    )
    docs = rows(out)
    correct = sum(docs.get(f"lingua/{i}", {}).get("language") == g for i, g in enumerate(gold))
    accuracy = correct / len(gold)
    print(
        f"lid.176.ftz accuracy {accuracy:.4f} on {len(gold)} sentences, {len(set(gold))} languages, {time.perf_counter() - started:.1f}s"
    )
    assert accuracy >= 0.79
