"""`redpajama publish --dry-run`: the repo layout, the card and loading it with `datasets`."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from redpajama.errors import UserError
from redpajama.hub import folder as hub_folder

LANGS = {"en": ("head", 60), "de": ("middle", 25)}


def make_tree(root: Path) -> Path:
    """A small output tree laid out like ingest/filter output, with a filter stats.json."""
    for lang, (bucket, rows) in LANGS.items():
        for shard in ("0000", "0001"):
            path = root / "documents" / "2023-14" / shard / f"{lang}_{bucket}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            texts = [f"{lang} document {shard}/{i} " + "word " * (50 + i) for i in range(rows)]
            table = pa.table(
                {
                    "id": [f"2023-14/{shard}/{lang}_{bucket}.json.gz/{i}" for i in range(rows)],
                    "id_int": pa.array(range(rows), pa.uint64()),
                    "url": [f"https://example.{lang}/{i}" for i in range(rows)],
                    "length": [len(t) for t in texts],
                    "raw_content": pa.array(texts, pa.large_string()),
                    "language": [lang] * rows,
                    "bucket": [bucket] * rows,
                    "snapshot_id": ["2023-14"] * rows,
                    "source_file": ["/home/someone/private/path.json.gz"] * rows,
                    "line_ids": pa.array([[0]] * rows, pa.list_(pa.int32())),
                }
            )
            pq.write_table(table, path)
    # A hidden temp file of an unfinished write must not be published.
    (root / "documents" / "2023-14" / "0000" / ".en_head.parquet.tmp-1").write_bytes(b"junk")
    # The shape pipelines/filter.py writes; `source` is a local path that must not reach the card.
    stats = {
        "rules": [{"name": "gopher_word_count", "failed": 9, "dropped_first": 7}],
        "dedup": "fuzzy-0.8",
        "source": "/home/someone/out",
    }
    (root / "_runs" / "filter").mkdir(parents=True)
    (root / "_runs" / "filter" / "stats.json").write_text(json.dumps(stats))
    return root


def total_rows() -> int:
    return 2 * sum(rows for _, rows in LANGS.values())


def front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_layout_card_and_shard_limit(tmp_path):
    tree = make_tree(tmp_path / "tree")
    limit = 12_000
    out = tmp_path / "hub"
    built = hub_folder.build(tree, out, hub_folder.PublishConfig("org/name", max_shard_bytes=limit))

    files = sorted(out.rglob("*.parquet"))
    assert files == sorted(built.files)
    assert len(files) > 2, "the tiny limit must cut each language into several shards"
    assert not any(p.name.startswith(".") for p in out.rglob("*")), "no temp files left"
    for path in files:
        assert path.stat().st_size <= limit, path
        assert path.parent.parent == out / "data"
        assert path.name.startswith("train-") and path.name.endswith(
            f"-of-{len(list(path.parent.glob('*'))):05d}.parquet"
        )
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
    assert rows == total_rows()
    names = pq.read_schema(files[0]).names
    assert names[:2] == ["id", "text"]
    assert "raw_content" not in names and "source_file" not in names and "line_ids" not in names

    meta = front_matter(out / "README.md")
    assert meta["license"] == "odc-by"
    assert sorted(meta["language"]) == ["de", "en"]
    assert meta["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == {"all", "en", "de"} and configs["all"]["default"] is True
    for config in configs.values():
        (data_files,) = config["data_files"]
        assert data_files["split"] == "train"
        assert list(out.glob(data_files["path"])), data_files["path"]
    assert len(list(out.glob(configs["all"]["data_files"][0]["path"]))) == len(files)

    card = (out / "README.md").read_text()
    assert "`gopher_word_count` | 7" in card and "fuzzy-0.8" in card and "`2023-14`" in card
    assert f"{total_rows():,} documents" in card
    assert "/home/someone" not in card


def test_refuses_a_non_empty_destination(tmp_path):
    tree = make_tree(tmp_path / "tree")
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "keep.txt").write_text("mine")
    with pytest.raises(UserError):
        hub_folder.build(tree, tmp_path / "hub", hub_folder.PublishConfig("org/name"))
    assert (tmp_path / "hub" / "keep.txt").read_text() == "mine"


def test_a_damaged_documents_file_stops_the_publish_before_any_write(tmp_path):
    tree = make_tree(tmp_path / "tree")
    damaged = tree / "documents" / "2023-14" / "0001" / "de_middle.parquet"
    damaged.write_bytes(damaged.read_bytes()[:-200])
    with pytest.raises(UserError, match=rf"damaged documents file: {damaged}: not readable as Parquet"):
        hub_folder.build(tree, tmp_path / "hub", hub_folder.PublishConfig("org/name"))
    assert not (tmp_path / "hub").exists() or not any((tmp_path / "hub").iterdir())


def test_datasets_loads_the_published_folder_offline(tmp_path, monkeypatch):
    # Set before `datasets` is imported: it reads the offline switches at import time.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")
    tree = make_tree(tmp_path / "tree")
    out = tmp_path / "hub"
    # Through the CLI, as a user would run it.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "redpajama",
            "publish",
            str(tree),
            "--repo-id",
            "org/name",
            "--dry-run",
            str(out),
            "--max-shard-mb",
            "0.02",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["documents"] == total_rows()

    cache = str(tmp_path / "cache")
    everything = datasets.load_dataset(str(out), split="train", cache_dir=cache)
    german = datasets.load_dataset(str(out), "de", split="train", cache_dir=cache)
    assert everything.num_rows == total_rows()
    assert german.num_rows == 2 * LANGS["de"][1]
    expected = pq.read_schema(next(out.rglob("*.parquet"))).names
    assert everything.column_names == expected
    assert set(german["language"]) == {"de"}


def test_dedup_stage_counts_duplicates_not_documents_kept():
    from redpajama.hub.card import _stage_line

    assert _stage_line("dedup", {"docs_in": 135, "docs_out": 11}) == "`dedup` (135 docs, 11 duplicates found)"
    assert _stage_line("ingest", {"docs_in": 5, "docs_out": 4}) == "`ingest` (5 → 4 docs)"
    assert _stage_line("filter", {}) == "`filter`"
