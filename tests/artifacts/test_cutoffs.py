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


def test_cc_nets_own_cutoff_csv_and_every_cc_net_language(tmp_path):
    # cc_net buckets every language of its cutoff.csv (48), not only RPv2's five; and its own file,
    # percentile rows by language columns, reads as it is (its rows 30 and 60).
    from redpajama.pipelines.ccnet.buckets import bucket_of

    defaults = Bundle(tmp_path).cutoffs
    assert len(defaults) == 48 and defaults["pt"] == (170.0, 270.0) and defaults["ja"] == (1110.0, 1450.0)
    assert bucket_of(119.6, "pt", defaults) == "head"
    lines = [",pt,xx"] + [f"{p},{p * 10},{p * 20}" for p in range(101)]
    (tmp_path / "cutoffs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cutoffs = Bundle(tmp_path).cutoffs
    assert cutoffs["pt"] == (300.0, 600.0) and cutoffs["xx"] == (600.0, 1200.0)
    assert cutoffs["en"] == (340.0, 520.0)  # the defaults stay for languages the file lacks
    (tmp_path / "cutoffs.csv").write_text("language,low,high\nen,1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a cutoffs file"):
        Bundle(tmp_path).cutoffs  # noqa: B018
