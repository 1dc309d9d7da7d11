"""Token folders built once per session from real text (Tiny Shakespeare) for the trainer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_helpers import shakespeare_documents, write_curated


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
