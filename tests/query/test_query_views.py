"""SQL over the output tree: views, the Python API and the `redpajama sql` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "filter"))
from filter_helpers import RELATIVE, passing_signals, write_duplicates, write_tree  # noqa: E402

from redpajama import query  # noqa: E402


@pytest.fixture
def tree(tmp_path):
    write_tree(tmp_path, [{"id": f"d{n}", "signals": passing_signals()} for n in range(3)])
    write_duplicates(tmp_path, "fuzzy-0.8", ["d1"])
    write_duplicates(tmp_path, "exact", ["d2"])
    # A temp file a killed run left behind must never be read.
    (tmp_path / "documents" / RELATIVE).with_name(".en_head.parquet.tmp.parquet").write_bytes(b"junk")
    return tmp_path


def test_views_modes_and_docs_join(tree):
    con = query.connect(tree)
    assert con.sql("SELECT count(*) FROM documents").fetchall() == [(3,)]
    assert sorted(con.sql("SELECT mode, id FROM duplicates").fetchall()) == [
        ("exact", "d2"),
        ("fuzzy-0.8", "d1"),
    ]
    columns = [r[0] for r in con.sql("DESCRIBE docs").fetchall()]
    assert columns.count("id_int") == 1 and columns.count("id") == 1 and "rps_doc_word_count" in columns
    assert query.sql(tree, "SELECT sum(rps_doc_word_count) FROM docs").fetchall() == [(1500,)]


def test_missing_component_fails_with_the_command_to_run(tree):
    con = query.connect(tree)
    with pytest.raises(duckdb.Error, match="redpajama minhash"):
        con.sql("SELECT * FROM minhash").fetchall()
    with pytest.raises(duckdb.Error, match="redpajama minhash"):  # not a count of 1
        con.sql("SELECT count(*) FROM minhash").fetchall()


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "redpajama", *args], capture_output=True, text=True, input=stdin
    )


def test_sql_cli_formats(tree, tmp_path):
    q = "SELECT id, rps_doc_word_count AS wc FROM docs ORDER BY id"
    table = _cli("sql", str(tree), q)
    assert table.returncode == 0 and "d2" in table.stdout and "wc" in table.stdout
    csv = _cli("sql", str(tree), q, "--format", "csv")
    assert csv.stdout.splitlines()[:2] == ['"id","wc"', '"d0",500']
    rows = [json.loads(line) for line in _cli("sql", str(tree), q, "--format", "json").stdout.splitlines()]
    assert rows[0] == {"id": "d0", "wc": 500} and len(rows) == 3
    nested = _cli("sql", str(tree), "SELECT [1, 2] AS spans, {'a': 1} AS s", "--format", "csv")
    assert nested.returncode == 0 and nested.stdout.splitlines()[1] == '"[1, 2]","{""a"": 1}"'
    out = tmp_path / "r.parquet"
    assert _cli("sql", str(tree), q, "--format", "parquet", "-o", str(out)).returncode == 0
    assert pq.read_table(out).num_rows == 3
    bad = _cli("sql", str(tree), "SELECT nope FROM docs")
    assert bad.returncode != 0 and "Error" in bad.stderr


def test_interactive_session_from_stdin(tree):
    session = "SELECT count(*) AS n\n  FROM documents;\n.tables\nSELECT broken;\nSELECT 41 + 1 AS answer;\n.quit\nSELECT 0;\n"
    result = _cli("sql", str(tree), "--format", "csv", stdin=session)
    assert result.returncode == 0
    assert '"n"\n3' in result.stdout and '"answer"\n42' in result.stdout
    assert "documents  signals  minhash  duplicates  clusters  docs" in result.stdout
    assert "Error" in result.stderr  # the bad query is reported and the session goes on
    assert '"0"' not in result.stdout  # nothing runs after .quit
