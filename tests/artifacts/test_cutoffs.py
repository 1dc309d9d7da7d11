from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from redpajama.artifacts.bundle import Bundle
from redpajama.cli.app import _register_verbs, app
from redpajama.pipelines.artifacts.cutoffs import percentiles


def test_percentiles():
    assert percentiles(range(1, 101)) == (30.7, 60.4)
    assert percentiles([]) is None


def test_cli_cutoffs_from_a_documents_tree(tmp_path):
    out = tmp_path / "out"
    for shard, (lang, values) in enumerate(
        [("en", range(0, 100)), ("de", range(100, 200)), ("en", range(100, 200))]
    ):
        folder = out / "documents" / f"shard={shard}"
        folder.mkdir(parents=True)
        table = pa.table({"language": [lang] * 100, "perplexity": [float(v) for v in values]})
        pq.write_table(table, folder / "part-0.parquet")
    (out / "documents" / "shard=0" / ".part-1.parquet.tmp-1").write_bytes(b"torn")  # ignored
    _register_verbs()
    bundle = tmp_path / "bundle"
    result = CliRunner().invoke(app, ["artifacts", "cutoffs", str(out), "--artifacts", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "en\tp30=59.7\tp60=119.4" in result.output
    rows = list(csv.DictReader(open(bundle / "cutoffs.csv", encoding="utf-8")))
    assert rows == [
        {"lang": "de", "p30": "129.7", "p60": "159.4"},
        {"lang": "en", "p30": "59.7", "p60": "119.4"},
    ]
    assert Bundle(bundle).cutoffs["en"] == (59.7, 119.4)
    assert Bundle(bundle).cutoffs["fr"] == (180.0, 330.0)  # CCNet's default where we have no data


def test_a_bundle_folder_that_does_not_exist_is_an_error(tmp_path):
    from redpajama.errors import UserError

    with pytest.raises(UserError, match="not a folder"):
        Bundle.at(tmp_path / "nope")
    assert Bundle.at(None).root.is_dir()  # the shipped default
