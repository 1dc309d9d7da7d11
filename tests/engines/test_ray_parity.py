"""Local runner vs Ray engine on the same inputs: identical rows (sorted by id) for every stage,
and in fact identical bytes, markers included (the same writer code runs in both)."""

import json
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from ray_helpers import assert_same_rows, file_digests, local_ray  # noqa: E402

from redpajama.pipelines import ingest, minhash, signals  # noqa: E402
from redpajama.pipelines.ccnet import stage as ccnet  # noqa: E402
from redpajama.pipelines.dedup import stage as dedup  # noqa: E402
from redpajama.pipelines.dedup import synthetic  # noqa: E402
from redpajama.pipelines.dedup.config import FuzzyConfig  # noqa: E402
from redpajama.runners.local import RunOptions  # noqa: E402

LOCAL = RunOptions(workers=2, progress=False)
RAY = RunOptions(runner="ray", workers=2, progress=False)


@pytest.fixture(scope="module")
def cluster():
    with local_ray():  # one Ray for the module: the engine joins it instead of starting its own
        yield


def _pipeline(inputs: Path, out: Path, options: RunOptions) -> None:
    for summary in (
        ingest.run([str(inputs)], out, options=options),
        signals.run(out, options=options),
        minhash.run(out, options=options),
        dedup.run(out, FuzzyConfig(threshold=0.8), options=options),
    ):
        assert summary.failed == {}, summary.failed
        assert summary.tasks_run == summary.tasks_total


@pytest.fixture(scope="module")
def trees(cluster, sample_inputs: Path, tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("parity")
    _pipeline(sample_inputs, base / "local", LOCAL)
    _pipeline(sample_inputs, base / "ray", RAY)
    return base / "local", base / "ray"


@pytest.mark.parametrize("component", ["documents", "quality_signals", "minhash", "clusters", "duplicates"])
def test_stage_rows_identical(trees, component: str):
    local, ray_out = trees
    # clusters/duplicates: the samples hold no near-duplicates, each file exists, empty, in both.
    assert assert_same_rows(local, ray_out, component) > 0
    assert file_digests(local, component) == file_digests(ray_out, component)


def test_stage_summaries_agree(trees):
    local, ray_out = trees
    for stage in ("ingest", "signals", "minhash"):
        a = (local / "_runs" / stage / "errors.jsonl").read_bytes()
        b = (ray_out / "_runs" / stage / "errors.jsonl").read_bytes()
        assert a == b, stage


def test_rerun_on_ray_is_a_no_op(trees):
    _, ray_out = trees
    summary = signals.run(ray_out, options=RAY)
    assert summary.tasks_run == 0 and summary.tasks_skipped == summary.tasks_total


def test_fuzzy_dedup_distributed_equals_local(cluster, tmp_path: Path):
    spec = synthetic.PlantedSpec(docs_per_file=1_500, files=4, bases=300, dup_fraction=0.3, seed=3)
    trees = {}
    for name, options in (("local", LOCAL), ("ray", RAY)):
        root = tmp_path / name
        synthetic.write_planted_tree(root, spec)
        summary = dedup.run(root, FuzzyConfig(threshold=0.8, partitions=4), options)
        assert summary.failed == {}
        trees[name] = root
    assert assert_same_rows(trees["local"], trees["ray"], "clusters") == spec.files
    assert_same_rows(trees["local"], trees["ray"], "duplicates")
    assert file_digests(trees["local"], "clusters") == file_digests(trees["ray"], "clusters")
    summaries = [json.loads((trees[n] / "_runs/dedup/summary.json").read_text())["fuzzy-0.8"] for n in trees]
    for key in ("candidate_edges", "clusters", "clustered_docs", "duplicates", "cluster_sizes"):
        assert summaries[0][key] == summaries[1][key], key
    assert summaries[0]["clusters"] > 50  # the planted tree really clusters


@pytest.mark.slow
def test_ccnet_rows_identical(cluster, sample_inputs: Path, tmp_path: Path):
    outs = {}
    for name, options in (("local", LOCAL), ("ray", RAY)):
        out = tmp_path / name
        assert ingest.run([str(sample_inputs)], out, options=LOCAL).failed == {}
        summary = ccnet.run(out, options=options)
        assert summary.failed == {}
        outs[name] = out
    assert assert_same_rows(outs["local"], outs["ray"], "documents") > 0
    assert file_digests(outs["local"], "documents") == file_digests(outs["ray"], "documents")


def test_numpy_is_importable_in_workers(cluster):
    # Workers run the venv's interpreter: the same numpy as the driver (a mismatch would make
    # the parity above meaningless).
    @ray.remote
    def version() -> str:
        return np.__version__

    assert ray.get(version.remote()) == np.__version__
