"""Token folders built once per session from real text (Tiny Shakespeare) for the trainer tests."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write_curated(folder: Path, texts: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({"id": [f"doc-{i:05d}" for i in range(len(texts))], "text": texts})
    pq.write_table(table, folder / "part-0.parquet")
    return folder


def shakespeare_documents() -> list[str]:
    text = (SHARED_DATA / "lm-tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    # One document per speech: blank lines separate them.
    return [part.strip() for part in text.split("\n\n") if part.strip()]


@pytest.fixture(scope="session")
def shakespeare_tokens(tmp_path_factory) -> Path:
    """Tiny Shakespeare under a 2048-token BPE trained on it: a small head keeps CPU steps fast."""
    from redpajama.training.tokenize import TokenizeConfig, run
    from redpajama.training.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("shakespeare")
    documents = shakespeare_documents()
    train_tokenizer(documents, 2048, root / "tokenizer.json")
    curated = write_curated(root / "curated", documents)
    run(
        curated,
        root / "tokens",
        TokenizeConfig(tokenizer=str(root / "tokenizer.json"), seed=0, held_out_fraction=0.02),
    )
    return root / "tokens"
