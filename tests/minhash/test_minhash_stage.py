"""The minhash stage end to end on an ingested tree, and the `redpajama minhash` command."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from redpajama.cli.app import _register_verbs, app
from redpajama.pipelines import ingest, minhash
from redpajama.pipelines.minhash_hashing import signatures, word_shingles
from redpajama.quality_signals.view import DocView
from redpajama.runners.local import RunOptions

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data" / "samples" / "inputs"
OPTIONS = RunOptions(workers=1, progress=False)
COLUMNS = ["signature_sim1.0", "signature_sim0.9", "signature_sim0.8", "signature_sim0.7"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tree")
    ingest.run([str(SAMPLES)], out, ingest.IngestConfig(), OPTIONS)
    summary = minhash.run(out, minhash.MinHashConfig(), OPTIONS)
    assert summary.failed == {}
    return out


def _pairs(tree: Path) -> list[Path]:
    documents = sorted(p.relative_to(tree / "documents") for p in (tree / "documents").rglob("*.parquet"))
    outputs = sorted(p.relative_to(tree / "minhash") for p in (tree / "minhash").rglob("*.parquet"))
    assert documents == outputs
    return documents


def test_one_minhash_file_per_documents_file_ids_aligned(tree: Path):
    for relative in _pairs(tree):
        docs = pq.read_table(tree / "documents" / relative, columns=["id", "id_int"])
        table = pq.read_table(tree / "minhash" / relative)
        assert table.column_names == ["shard_id", "id", "id_int", *COLUMNS]
        assert table.column("id").to_pylist() == docs.column("id").to_pylist()
        assert table.column("id_int").to_pylist() == docs.column("id_int").to_pylist()
        assert set(table.column("shard_id").to_pylist()) <= {relative.with_suffix(".json.gz").as_posix()}


def test_stored_bands_equal_direct_signatures(tree: Path):
    seen_null = seen_value = False
    for relative in _pairs(tree):
        docs = pq.read_table(tree / "documents" / relative, columns=["raw_content"]).column(0).to_pylist()
        table = pq.read_table(tree / "minhash" / relative).to_pylist()
        words = [DocView(t or "").normalized_words for t in docs]
        shingles = word_shingles(words, 13)
        sig = iter(signatures(shingles, hash="sha1", num_perm=128, seed=42))
        for row, ok in zip(table, shingles.valid.tolist(), strict=True):
            if not ok:
                assert all(row[c] is None for c in COLUMNS)
                seen_null = True
                continue
            s = next(sig)
            seen_value = True
            for column, (b, r) in [("signature_sim0.7", (14, 9)), ("signature_sim1.0", (1, 128))]:
                assert len(row[column]) == b
                assert row[column] == [bytes(s[i * r : (i + 1) * r].byteswap().data) for i in range(b)]
    assert seen_value and seen_null


def test_metadata_present(tree: Path):
    relative = _pairs(tree)[0]
    meta = minhash.read_metadata(tree / "minhash" / relative)
    assert meta["num_perm"] == 128 and meta["seed"] == 42 and meta["ngram"] == 13
    assert meta["shingle"] == "word" and meta["hash"] == "sha1" and meta["rpv2_compatible"]
    assert meta["columns"]["signature_sim0.8"] == {"bands": 9, "rows": 13}


def test_rerun_skips(tree: Path):
    summary = minhash.run(tree, minhash.MinHashConfig(), OPTIONS)
    assert summary.tasks_run == 0 and summary.tasks_skipped == len(_pairs(tree))


def test_rerun_with_other_settings_is_refused_not_skipped(tree: Path):
    from redpajama.errors import UserError

    with pytest.raises(UserError, match="other settings: columns"):
        minhash.run(tree, minhash.MinHashConfig(thresholds=(0.85,)), OPTIONS)


def test_cli_explicit_bands_fast_char(tmp_path: Path):
    ingest.run([str(SAMPLES)], tmp_path, ingest.IngestConfig(), OPTIONS)
    _register_verbs()
    args = ["minhash", str(tmp_path), "--threshold", "0.8", "--bands", "4", "--rows", "8"]
    args += ["--hash", "fast", "--shingle", "char", "--ngram", "5", "--workers", "1", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "minhash").rglob("*.parquet"))
    assert files
    table = pq.read_table(files[0])
    assert table.column_names == ["shard_id", "id", "id_int", "signature_sim0.8", "signature_b4_r8"]
    meta = minhash.read_metadata(files[0])
    assert meta["hash"] == "fast" and meta["shingle"] == "char" and not meta["rpv2_compatible"]
    assert meta["columns"]["signature_b4_r8"] == {"bands": 4, "rows": 8}
    values = [v for v in table.column("signature_b4_r8").to_pylist() if v is not None]
    assert values and all(len(v) == 4 and all(len(x) == 32 for x in v) for v in values)
    assert np.unique([v[0] for v in values]).size > 1


def test_cli_rejects_bands_without_rows(tmp_path: Path):
    _register_verbs()
    result = CliRunner().invoke(app, ["minhash", str(tmp_path), "--bands", "4"])
    assert result.exit_code != 0
