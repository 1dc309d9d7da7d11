"""Counts, breakdowns, signal histograms and cluster sizes, each one SQL aggregation over the views.

Histograms are binned in SQL (one pass for the bounds with approx_quantile, a t-digest; one for the
counts), so memory is bounded by the number of bins and groups, never by the number of documents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb

from redpajama.report.tree import Tree, quote_ident, view_name


@dataclass
class Counts:
    docs: int
    chars: int
    utf8_bytes: int


def totals(con: duckdb.DuckDBPyConnection) -> Counts:
    # strlen is the UTF-8 byte length; `length` is RPv2's character count.
    docs, chars, nbytes = con.execute(
        "SELECT count(*), coalesce(sum(length), 0), coalesce(sum(strlen(raw_content)), 0) FROM documents"
    ).fetchone()
    return Counts(int(docs), int(chars), int(nbytes))


def breakdown(con: duckdb.DuckDBPyConnection, by: str) -> list[tuple[str, Counts]]:
    """Counts grouped by `snapshot`, `lang` or `bucket` (path columns), largest first."""
    assert by in ("snapshot", "lang", "bucket")
    rows = con.execute(
        f"SELECT {by}, count(*), coalesce(sum(length), 0), coalesce(sum(strlen(raw_content)), 0) "
        f"FROM documents GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    return [(key, Counts(int(d), int(c), int(b))) for key, d, c, b in rows]


def lang_bucket(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int]:
    rows = con.execute("SELECT lang, bucket, count(*) FROM documents GROUP BY 1, 2").fetchall()
    return {(lang, bucket): int(n) for lang, bucket, n in rows}


@dataclass
class Histogram:
    signal: str
    level: str  # "document" or "line" (histogram of the per-document mean score)
    lo: float
    hi: float
    bins: int
    total: list[int]
    by_group: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    below: int = 0  # values under lo / over hi, counted in the edge bins
    above: int = 0
    n: int = 0
    nulls: int = 0


def signal_columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(column, level) of the signals view: numeric columns are document-level, span lists line-level."""
    out = []
    for name, dtype, *_ in con.execute("DESCRIBE signals").fetchall():
        if name in ("id", "id_int", "snapshot", "lang", "bucket"):
            continue
        if dtype.startswith("STRUCT") and dtype.endswith("[]") and "score" in dtype:
            out.append((name, "line"))
        elif dtype.upper() in _NUMERIC:
            out.append((name, "document"))
    return out


_NUMERIC = {
    "DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER",
    "USMALLINT", "UTINYINT", "HUGEINT", "BOOLEAN", "DECIMAL",
}  # fmt: skip


def _value_expr(column: str, level: str) -> str:
    q = quote_ident(column)
    if level == "line":
        return f"list_avg([s.score FOR s IN {q}])"
    return f"CAST({q} AS DOUBLE)"


def histograms(
    con: duckdb.DuckDBPyConnection, columns: list[tuple[str, str]], bins: int = 30, clip: float = 0.005
) -> list[Histogram]:
    """Histograms of every column, by (lang, bucket), over [q(clip), q(1 - clip)] of its values."""
    if not columns:
        return []
    values = ", ".join(f"{_value_expr(c, lvl)} AS {quote_ident(c)}" for c, lvl in columns)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _long AS SELECT signal, lang, bucket, x FROM "
        f"(UNPIVOT (SELECT lang, bucket, {values} FROM signals) "
        f"ON COLUMNS(* EXCLUDE (lang, bucket)) INTO NAME signal VALUE x) WHERE isfinite(x)"
    )
    nrows = con.execute("SELECT count(*) FROM signals").fetchone()[0]
    bounds = {
        sig: (lo, hi, mn, mx, n)
        for sig, lo, hi, mn, mx, n in con.execute(
            f"SELECT signal, approx_quantile(x, {clip}), approx_quantile(x, {1 - clip}), min(x), max(x), count(*) "
            "FROM _long GROUP BY signal"
        ).fetchall()
    }
    con.execute("CREATE OR REPLACE TEMP TABLE _bounds (signal VARCHAR, lo DOUBLE, hi DOUBLE)")
    for sig, (lo, hi, mn, mx, _) in bounds.items():
        if hi <= lo:  # a near-constant signal: use the full range (or one bin of width 1)
            lo, hi = mn, mx if mx > mn else mn + 1
        bounds[sig] = (lo, hi, *bounds[sig][2:])
    con.executemany("INSERT INTO _bounds VALUES (?, ?, ?)", [(s, b[0], b[1]) for s, b in bounds.items()])
    rows = con.execute(
        f"SELECT l.signal, lang, bucket, "
        f"least(greatest(floor((x - lo) / (hi - lo) * {bins}), 0), {bins - 1})::INT AS bin, count(*), "
        "count_if(x < lo), count_if(x > hi) "
        "FROM _long l JOIN _bounds b USING (signal) GROUP BY ALL"
    ).fetchall()
    out = {}
    for column, level in columns:
        if column not in bounds:
            out[column] = Histogram(column, level, math.nan, math.nan, bins, [0] * bins, nulls=nrows)
            continue
        lo, hi, _, _, n = bounds[column]
        out[column] = Histogram(column, level, lo, hi, bins, [0] * bins, n=n, nulls=nrows - n)
    for sig, lang, bucket, b, count, below, above in rows:
        h = out[sig]
        h.total[b] += count
        h.by_group.setdefault((lang, bucket), [0] * bins)[b] += count
        h.below += below
        h.above += above
    con.execute("DROP VIEW _long")
    return [out[c] for c, _ in columns]


@dataclass
class Clusters:
    mode: str
    sizes: list[tuple[int, int]]  # (cluster size, number of clusters), by size
    duplicates: int | None  # rows in duplicates/<mode>, when present

    @property
    def clusters(self) -> int:
        return sum(n for _, n in self.sizes)

    @property
    def documents(self) -> int:
        return sum(s * n for s, n in self.sizes)


def cluster_sizes(con: duckdb.DuckDBPyConnection, tree: Tree) -> list[Clusters]:
    out = []
    for mode in sorted(set(tree.clusters) | set(tree.duplicates)):
        sizes: list[tuple[int, int]] = []
        if mode in tree.clusters:
            sizes = [
                (int(s), int(n))
                for s, n in con.execute(
                    f"SELECT size, count(*) FROM (SELECT cluster_id, count(*) AS size "
                    f"FROM {quote_ident(view_name('clusters', mode))} GROUP BY cluster_id) GROUP BY size ORDER BY size"
                ).fetchall()
            ]
        dups = None
        if mode in tree.duplicates:
            dups = int(
                con.execute(f"SELECT count(*) FROM {quote_ident(view_name('duplicates', mode))}").fetchone()[
                    0
                ]
            )
        out.append(Clusters(mode, sizes, dups))
    return out
