"""Recipes: typed loading (unknown keys are errors) and `redpajama run` end to end, local and Beam."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from redpajama.cli.app import _register_verbs, app
from redpajama.errors import UserError
from redpajama.pipelines import recipe

REPO = Path(__file__).resolve().parents[2]
QUICK = REPO / "pipelines" / "recipes" / "quick.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_shipped_recipes_load() -> None:
    for name in ("quick", "rpv2"):
        loaded = recipe.load(name)
        assert loaded.stages and loaded.inputs
    rpv2 = [name for name, _ in recipe.load("rpv2").stages]
    assert rpv2 == ["ingest", "ccnet", "signals", "minhash", "dedup", "filter"]


def test_relative_paths_resolve_from_the_recipe(tmp_path) -> None:
    loaded = recipe.load(write(tmp_path, "inputs: [crawl]\nstages: [ingest: {}]\n"))
    assert loaded.path(loaded.inputs[0]) == str(tmp_path / "crawl")


@pytest.mark.parametrize(
    "text, message",
    [
        ("stages: [dedup: {treshold: 0.8}]", "stage dedup: unknown key(s) treshold"),
        ("inputs: []\nstage: []", "unknown key(s) stage"),
        ("stages: [dedupe: {}]", "unknown stage 'dedupe'"),
        ("stages: [dedup: {threshold: high}]", "dedup.threshold: expected float"),
        ("stages: [filter: {rules: [gopher]}]", "stage filter: missing key(s) output"),
        ("stages: []", "non-empty list"),
    ],
)
def test_bad_recipes_are_clear_errors(tmp_path, text, message) -> None:
    with pytest.raises(UserError) as caught:
        recipe.load(write(tmp_path, text))
    assert message in str(caught.value)


def test_cli_reports_unknown_key(tmp_path) -> None:
    path = write(tmp_path, "stages: [signals: {names: [x]}]")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from redpajama.cli.app import main; main()",
            "run",
            str(path),
            "-o",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "unknown key(s) names" in done.stderr


def invoke(*args: str) -> str:
    _register_verbs()
    result = CliRunner().invoke(app, ["run", str(QUICK), "--no-progress", *args])
    assert result.exit_code == 0, result.output
    return result.output


def tree(root: Path) -> dict[str, object]:
    return {
        p.relative_to(root).as_posix(): pq.read_table(p).sort_by("id")
        for p in sorted(root.rglob("*.parquet"))
        if not p.name.startswith(".") and "_runs" not in p.parts
    }


@pytest.mark.skipif(importlib.util.find_spec("apache_beam") is None, reason="apache_beam not installed")
def test_quick_recipe_local_and_beam_write_the_same_rows(tmp_path) -> None:
    output = invoke("-o", str(tmp_path / "local"))
    assert [line.split(":")[0] for line in output.splitlines()] == ["ingest", "signals", "minhash", "dedup"]
    # Two workers: the DirectRunner's multi_processing mode, tasks in separate SDK worker processes.
    invoke("-o", str(tmp_path / "beam"), "--runner", "beam", "-w", "2")
    local, beam = tree(tmp_path / "local"), tree(tmp_path / "beam")
    assert local and sorted(local) == sorted(beam)
    assert any(name.startswith("clusters/") for name in local)
    for name, table in local.items():
        assert table.equals(beam[name]), name
