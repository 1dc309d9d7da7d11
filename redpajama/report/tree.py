"""Where the parts of an output tree are, and DuckDB views over the ones that exist.

Snapshot, language and bucket come from the file path (`<part>/<snapshot>/<shard>/<lang>_<bucket>.parquet`)
rather than from columns: quality_signals/ has no such columns, and the path is what every stage
partitions by, so documents and signals group the same way without a join.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import duckdb


@dataclass
class Tree:
    root: Path
    has_documents: bool = False
    has_signals: bool = False
    # Dedup modes found on disk: "fuzzy-0.8" -> clusters glob; "exact"/"fuzzy-0.8" -> duplicates glob.
    clusters: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)

    def glob(self, part: str) -> str:
        return str(self.root / part / "**" / "*.parquet")


def _any(pattern: str) -> bool:
    return next(iter(glob.iglob(pattern, recursive=True)), None) is not None


def discover(root: str | Path) -> Tree:
    root = Path(root).resolve()
    tree = Tree(root)
    tree.has_documents = _any(tree.glob("documents"))
    tree.has_signals = _any(tree.glob("quality_signals"))
    for kind, found in (("clusters", tree.clusters), ("duplicates", tree.duplicates)):
        base = root / kind
        if not base.is_dir():
            continue
        for mode in sorted(p.name for p in base.iterdir() if p.is_dir()):
            pattern = tree.glob(f"{kind}/{mode}")
            if _any(pattern):
                found[mode] = pattern
    return tree


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _path_columns(root: Path, part: str) -> str:
    # Paths relative to `<root>/<part>/`, cut by length so no character of the root is a regex.
    rel = f"substr(filename, {len(str(root / part)) + 2})"
    base = r"regexp_extract(filename, '([^/]+)\.parquet$', 1)"
    return (
        f"split_part({rel}, '/', 1) AS snapshot, "
        rf"regexp_extract({base}, '^(.*)_([^_]*)$', 1) AS lang, "
        rf"regexp_extract({base}, '^(.*)_([^_]*)$', 2) AS bucket"
    )


def connect(tree: Tree, memory_gb: float = 2.0, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with views `documents`, `signals`, `clusters_<mode>`, `duplicates_<mode>`."""
    con = duckdb.connect(":memory:")
    # A memory limit makes DuckDB spill instead of growing with the data.
    con.execute(f"SET memory_limit = '{int(memory_gb * 1024)}MB'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    for part, view, present in (
        ("documents", "documents", tree.has_documents),
        ("quality_signals", "signals", tree.has_signals),
    ):
        if present:
            con.execute(
                f"CREATE VIEW {view} AS SELECT * EXCLUDE (filename), {_path_columns(tree.root, part)} "
                f"FROM read_parquet({_sql_str(tree.glob(part))}, filename = true, "
                "hive_partitioning = false, union_by_name = true)"
            )
    for kind, found in (("clusters", tree.clusters), ("duplicates", tree.duplicates)):
        for mode, pattern in found.items():
            con.execute(
                f"CREATE VIEW {quote_ident(view_name(kind, mode))} AS SELECT * FROM "
                f"read_parquet({_sql_str(pattern)}, hive_partitioning = false, union_by_name = true)"
            )
    return con


def view_name(kind: str, mode: str) -> str:
    return f"{kind}_{mode}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
