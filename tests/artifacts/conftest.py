"""A tiny bundle built once per session from the shared real corpora (wikitext vs web pages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from artifact_helpers import PAGES, tiny_config_dict, web_source

from redpajama.pipelines.artifacts.build import BuildReport, build_bundle
from redpajama.pipelines.artifacts.config import SourceConfig, config_from_dict
from redpajama.pipelines.artifacts.corpus import iter_documents


@pytest.fixture(scope="session")
def web_split(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Web-page documents of all pages, even ones to train on, odd ones held out (JSONL)."""
    config = config_from_dict(tiny_config_dict(), shared_data)
    docs = list(iter_documents(SourceConfig(**web_source(PAGES)), config))
    folder = tmp_path_factory.mktemp("web")
    paths = (folder / "train.jsonl", folder / "heldout.jsonl")
    for path, part in zip(paths, (docs[0::2], docs[1::2]), strict=True):
        path.write_text("".join(json.dumps({"text": d}) + "\n" for d in part), encoding="utf-8")
    return paths


@pytest.fixture(scope="session")
def tiny_bundle(shared_data: Path, web_split, tmp_path_factory: pytest.TempPathFactory) -> BuildReport:
    data = tiny_config_dict()
    data["languages"]["en"]["datasets"]["ccnet"] = {"paths": [str(web_split[0])], "format": "jsonl"}
    config = config_from_dict(data, shared_data)
    return build_bundle(config, tmp_path_factory.mktemp("bundle") / "tiny")
