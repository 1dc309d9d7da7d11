"""DuckDB over an output tree: one view per component, ready for SQL.

    documents   OUT/documents/<snapshot>/<shard>/<lang>_<bucket>.parquet
    signals     OUT/quality_signals/...            (id, id_int, one column per signal)
    minhash     OUT/minhash/...
    duplicates  OUT/duplicates/<mode>/...          + `mode` ('exact', 'fuzzy-0.8', ... from the folder)
    clusters    OUT/clusters/<mode>/...            + `mode`
    docs        documents LEFT JOIN signals USING (id)   (id_int kept once)

Views list their files when `connect` runs (a snapshot of the tree): hidden files (temps, markers)
and `_runs/` are never read. A component that does not exist yet still gets its view, one that
fails when queried with a message naming the command that writes it, so `.tables` always shows
the same names and a query says what is missing instead of "table not found". `docs` without
signals is just `documents`.

Released RPv2 trees work too: `duplicates/<snapshot>/...` files without a mode folder are RPv2's
exact (Bloom filter) duplicates; they get mode 'exact' and `id` = their `doc_id`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

#: view -> (folder under OUT, the command that writes it)
COMPONENTS: dict[str, tuple[str, str]] = {
    "documents": ("documents", "redpajama ingest INPUTS -o OUT"),
    "signals": ("quality_signals", "redpajama signals OUT"),
    "minhash": ("minhash", "redpajama minhash OUT"),
    "duplicates": ("duplicates", "redpajama dedup OUT (--exact)"),
    "clusters": ("clusters", "redpajama dedup OUT"),
}
VIEWS: tuple[str, ...] = (*COMPONENTS, "docs")
_MODE = re.compile(r"^(exact|fuzzy-[0-9.]+)$")


def parquet_files(folder: Path) -> list[Path]:
    """Every visible `*.parquet` under `folder`, sorted; hidden files and folders are skipped."""
    if not folder.is_dir():
        return []
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        found += [Path(dirpath) / f for f in filenames if f.endswith(".parquet") and not f.startswith(".")]
    return sorted(found)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _read(files: list[Path]) -> str:
    listed = ", ".join(_quote(str(f)) for f in files)
    return f"read_parquet([{listed}], union_by_name = true)"


def _missing(view: str, root: Path) -> str:
    folder, command = COMPONENTS[view]
    message = f"view '{view}' is empty: no Parquet files under {root / folder}; run `{command}` first"
    # The error sits in WHERE too, so every scan raises (count(*) would not evaluate a column).
    return f"SELECT error({_quote(message)}) AS missing FROM range(1) WHERE error({_quote(message)}) IS NULL"


def _by_mode(view: str, root: Path) -> str | None:
    """`duplicates`/`clusters`: one SELECT per mode folder, unioned by column name."""
    base = root / COMPONENTS[view][0]
    if not base.is_dir():
        return None
    parts = []
    for child in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        files = parquet_files(child)
        if not files:
            continue
        if _MODE.match(child.name):
            parts.append(f"SELECT {_quote(child.name)} AS mode, * FROM {_read(files)}")
            continue
        # A snapshot folder right under duplicates/: RPv2's released exact duplicates.
        names = pq.read_schema(files[0]).names
        key = "" if "id" in names or "doc_id" not in names else "doc_id AS id, "
        parts.append(f"SELECT 'exact' AS mode, {key}* FROM {_read(files)}")
    return " UNION ALL BY NAME ".join(parts) or None


def connect(out: str | os.PathLike[str], *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views of `out` registered (see the module doc)."""
    root = Path(out).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"output folder not found: {root}")
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    present: dict[str, bool] = {}
    for view, (folder, _command) in COMPONENTS.items():
        if view in ("duplicates", "clusters"):
            body = _by_mode(view, root)
        else:
            files = parquet_files(root / folder)
            body = f"SELECT * FROM {_read(files)}" if files else None
        present[view] = body is not None
        con.execute(f"CREATE VIEW {view} AS {body or _missing(view, root)}")
    con.execute(f"CREATE VIEW docs AS {_docs_view(con, present)}")
    return con


def _docs_view(con: duckdb.DuckDBPyConnection, present: dict[str, bool]) -> str:
    if not present["documents"]:
        return "SELECT * FROM documents"
    if not present["signals"]:
        return "SELECT * FROM documents"
    doc_columns = {row[0] for row in con.execute("DESCRIBE documents").fetchall()}
    signal_columns = [row[0] for row in con.execute("DESCRIBE signals").fetchall()]
    # Released trees may repeat a column on both sides; the documents' copy wins.
    shared = [c for c in signal_columns if c in doc_columns]
    exclude = ", ".join(f'"{c}"' for c in shared)
    return f"SELECT d.*, s.* EXCLUDE ({exclude}) FROM documents d LEFT JOIN signals s USING (id)"


def sql(out: str | os.PathLike[str], query: str) -> duckdb.DuckDBPyRelation:
    """Run `query` over the views of `out`; a lazy DuckDB relation (`.arrow()`, `.fetchall()`, ...)."""
    return connect(out).sql(query)
