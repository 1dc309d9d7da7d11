"""A few DuckDB aggregates over the published shards for the dataset card."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb


@dataclass
class GroupCount:
    key: str
    docs: int
    chars: int


@dataclass
class DataStats:
    docs: int = 0
    chars: int = 0
    by_language: list[GroupCount] = field(default_factory=list)
    by_bucket: list[GroupCount] = field(default_factory=list)
    by_snapshot: list[GroupCount] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)


def _groups(con: duckdb.DuckDBPyConnection, column: str | None) -> list[GroupCount]:
    if column is None:
        return []
    rows = con.execute(
        f"SELECT coalesce(CAST(\"{column}\" AS VARCHAR), 'unknown') AS k, count(*), "
        "coalesce(sum(length(text)), 0) FROM data GROUP BY k ORDER BY 2 DESC, 1"
    ).fetchall()
    return [GroupCount(str(k), int(d), int(c)) for k, d, c in rows]


def compute(folder: Path) -> DataStats:
    con = duckdb.connect()
    try:
        # DuckDB takes no parameters in a view definition, hence the quoted literal.
        pattern = str(folder / "data" / "*" / "*.parquet").replace("'", "''")
        con.execute(
            "CREATE VIEW data AS SELECT *, regexp_extract(filename, '/data/([^/]+)/', 1) AS _folder "
            f"FROM read_parquet('{pattern}', filename = true, union_by_name = true)"
        )
        columns = {row[0] for row in con.execute("DESCRIBE data").fetchall()}
        docs, chars = con.execute("SELECT count(*), coalesce(sum(length(text)), 0) FROM data").fetchone()
        snapshot_col = "snapshot_id" if "snapshot_id" in columns else None
        stats = DataStats(
            docs=int(docs),
            chars=int(chars),
            by_language=_groups(con, "_folder"),
            by_bucket=_groups(con, "bucket" if "bucket" in columns else None),
            by_snapshot=_groups(con, snapshot_col),
        )
        stats.snapshots = sorted(g.key for g in stats.by_snapshot)
        return stats
    finally:
        con.close()
