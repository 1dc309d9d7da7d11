"""Crash safety of the in-place replacement, and reruns that do nothing."""

import os
from pathlib import Path

import pytest
from ccnet_helpers import cli, rows, write_jsonl

from redpajama.errors import UserError
from redpajama.pipelines.ccnet import stage, swap
from redpajama.runners.local import RunOptions

TEXTS = [
    "The river rose quickly after three days of rain in the northern valleys.\nFarmers moved their animals.",
    "A new bridge will connect the two villages before the next winter season.\nWork starts in May.",
]
OTHER = [
    "The orchestra played a long programme of music by young composers from the region.",
    "Tickets for the autumn festival sold out within an hour of going on sale online.",
]


def _tree(root: Path) -> dict[str, list[str]]:
    """Shard folder -> its visible data files."""
    docs = root / "documents"
    return {
        d.relative_to(docs).as_posix(): sorted(p.name for p in d.glob("*.parquet"))
        for d in sorted(docs.glob("*/*"))
        if not d.name.startswith(".")
    }


def _ingested(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "in" / "s1.jsonl", TEXTS)
    write_jsonl(tmp_path / "in" / "s2.jsonl", OTHER)
    out = tmp_path / "out"
    cli("ingest", str(tmp_path / "in"), "-o", str(out), "--workers", "1")
    return out


def _run(out: Path, bundle: Path):
    config = stage.CCNetConfig(artifacts=str(bundle), lang_threshold=0.0, min_length=0)
    return stage.run(out, config, RunOptions(workers=1, progress=False))


OLD = {"unknown/s1": ["und_all.parquet"], "unknown/s2": ["und_all.parquet"]}
NEW = ["en_all.parquet"]


@pytest.mark.parametrize("exchange", [True, False])
def test_crash_during_swap_leaves_old_or_new_and_rerun_completes(tmp_path, lid_bundle, monkeypatch, exchange):
    out = _ingested(tmp_path)
    assert _tree(out) == OLD
    if not exchange:
        monkeypatch.setattr(swap, "_exchange", lambda a, b: False)
    calls = {"n": 0}
    real_rename, real_rmtree = os.rename, swap.shutil.rmtree

    def crash_after_first_rename(src, dst):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("simulated crash between the renames")
        real_rename(src, dst)

    def crash_on_cleanup(path, *args, **kwargs):
        raise OSError("simulated crash after the exchange")

    if exchange:
        monkeypatch.setattr(swap.shutil, "rmtree", crash_on_cleanup)
    else:
        monkeypatch.setattr(swap.os, "rename", crash_after_first_rename)
    summary = _run(out, lid_bundle)
    assert summary.failed  # the crash surfaced as failed tasks
    tree = _tree(out)
    for shard, files in tree.items():
        assert files in (OLD[shard], NEW), tree  # never a mix
    if not exchange:
        # the fallback's one window: the shard folder moved to the trash name, staging complete
        missing = set(OLD) - set(tree)
        assert missing and all(
            (out / "documents" / m).with_name(f".{Path(m).name}.ccnet-old").is_dir() for m in missing
        )

    monkeypatch.setattr(swap.os, "rename", real_rename)
    monkeypatch.setattr(swap.shutil, "rmtree", real_rmtree)
    summary = _run(out, lid_bundle)
    assert not summary.failed
    assert _tree(out) == {s: NEW for s in OLD}
    assert not list((out / "documents").glob("*/.*ccnet-old"))
    assert not any(p.is_file() for p in stage.staging_root(out).rglob("*"))
    assert sorted(rows(out)) == ["s1/0", "s1/1", "s2/0", "s2/1"]


def test_rerun_is_a_noop_and_never_recomputes(tmp_path, lid_bundle, monkeypatch):
    out = _ingested(tmp_path)
    first = _run(out, lid_bundle)
    assert first.tasks_run == 2 and not first.failed
    before = {p: p.stat().st_mtime_ns for p in (out / "documents").rglob("*")}
    second = _run(out, lid_bundle)
    assert second.tasks_run == 0 and second.tasks_skipped == 2
    # even without task markers (or with --overwrite) a CCNet shard is not processed again
    for marker in (out / "_runs" / "ccnet" / "tasks").glob("*.json"):
        marker.unlink()
    monkeypatch.setattr(stage, "transform", lambda *a, **k: pytest.fail("ran CCNet twice"))
    same = stage.CCNetConfig(artifacts=str(lid_bundle), lang_threshold=0.0, min_length=0)
    third = stage.run(out, same, RunOptions(workers=1, progress=False, overwrite=True))
    assert not third.failed
    assert {p: p.stat().st_mtime_ns for p in (out / "documents").rglob("*")} == before
    # other settings cannot be applied to rewritten shards: refused, not reported done
    other = stage.CCNetConfig(
        artifacts=str(lid_bundle), lang_threshold=0.0, min_length=0, keep_languages=("en",)
    )
    with pytest.raises(UserError, match="keep_languages None there"):
        stage.run(out, other, RunOptions(workers=1, progress=False))


def test_ingest_rerun_after_ccnet_leaves_the_ccnet_tree_alone(tmp_path):
    """Ingest again into a tree that ccnet rewrote: nothing is redone, nothing is mixed in."""
    import subprocess
    import sys
    from pathlib import Path

    samples = Path(__file__).resolve().parents[2] / "data" / "samples" / "inputs" / "wet"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "redpajama", *args], capture_output=True, text=True)

    out = tmp_path / "out"
    assert cli("ingest", str(samples), "-o", str(out)).returncode == 0
    done = cli("ccnet", str(out), "--lang-threshold", "0", "--min-length", "0")
    assert done.returncode == 0, done.stderr
    before = sorted(p.relative_to(out).as_posix() for p in (out / "documents").rglob("*.parquet"))
    again = cli("ingest", str(samples), "-o", str(out), "--format", "json")
    assert again.returncode == 0, again.stderr
    assert '"tasks_skipped": 2' in again.stdout and '"tasks_run": 0' in again.stdout
    after = sorted(p.relative_to(out).as_posix() for p in (out / "documents").rglob("*.parquet"))
    assert after == before
    refused = cli("ingest", str(samples), "-o", str(out), "--overwrite")
    assert refused.returncode != 0 and "rewritten by `redpajama ccnet`" in refused.stderr


def test_documents_that_already_went_through_ccnet_are_left_alone(tmp_path):
    """Ingested RPv2 documents (CCNet output already) are not deduped and bucketed a second time."""
    import subprocess
    import sys
    from pathlib import Path

    rpv2 = Path(__file__).resolve().parents[2] / "data" / "samples" / "inputs" / "rpv2"
    out = tmp_path / "out"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "redpajama", *args], capture_output=True, text=True)

    assert cli("ingest", str(rpv2), "-o", str(out)).returncode == 0
    target = out / "documents" / "2020-16" / "0174" / "en_head.parquet"
    before = target.read_bytes()
    done = cli("ccnet", str(out))
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.glob("*.parquet")) == ["en_head.parquet"]


def test_a_damaged_documents_file_fails_its_dedup_group_only(tmp_path, lid_bundle):
    out = _ingested(tmp_path)
    damaged = out / "documents" / "unknown" / "s1" / "und_all.parquet"
    good = damaged.read_bytes()
    damaged.write_bytes(b"PAR1 damaged")
    alone = stage.CCNetConfig(artifacts=str(lid_bundle), lang_threshold=0.0, min_length=0, hash_group=1)
    summary = stage.run(out, alone, RunOptions(workers=1, progress=False))
    assert list(summary.failed) == ["documents/unknown/s1"] and summary.tasks_total == 2
    assert (
        "line hashing failed for documents/unknown/s1/und_all.parquet:"
        in summary.failed["documents/unknown/s1"]
    )
    assert _tree(out) == {"unknown/s1": ["und_all.parquet"], "unknown/s2": NEW}

    damaged.write_bytes(good)
    repaired = stage.run(out, alone, RunOptions(workers=1, progress=False))
    assert not repaired.failed and _tree(out) == {s: NEW for s in OLD}


def test_a_damaged_file_holds_back_the_shards_that_share_its_duplicate_lines(tmp_path, lid_bundle):
    out = _ingested(tmp_path)
    (out / "documents" / "unknown" / "s2" / "und_all.parquet").write_bytes(b"PAR1 damaged")
    summary = _run(out, lid_bundle)  # s1 and s2 in one line-dedup group
    assert (
        sorted(summary.failed) == ["documents/unknown/s1", "documents/unknown/s2"] and summary.tasks_run == 0
    )
    assert "of its line-dedup group" in summary.failed["documents/unknown/s1"]
    assert "of its line-dedup group" not in summary.failed["documents/unknown/s2"]
    assert _tree(out) == OLD


def test_shards_already_done_stay_done_beside_a_damaged_new_shard(tmp_path, lid_bundle):
    out = _ingested(tmp_path)
    assert not _run(out, lid_bundle).failed
    write_jsonl(tmp_path / "in" / "s3.jsonl", ["A third shard arrives later with text of its own."])
    cli("ingest", str(tmp_path / "in"), "-o", str(out), "--workers", "1")
    (out / "documents" / "unknown" / "s3" / "und_all.parquet").write_bytes(b"PAR1 damaged")
    summary = _run(out, lid_bundle)  # s1, s2 (done) and s3 in one line-dedup group
    assert list(summary.failed) == ["documents/unknown/s3"] and summary.tasks_skipped == 2
    assert _tree(out) == {"unknown/s1": NEW, "unknown/s2": NEW, "unknown/s3": ["und_all.parquet"]}
