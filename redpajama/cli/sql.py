"""`redpajama sql`: DuckDB over the output tree's views (documents, signals, minhash, duplicates,
clusters, docs), one query or an interactive session."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from redpajama.cli.app import app


class SqlFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def _flat(table: Any) -> Any:
    """CSV has no lists or structs (per-line signals, MinHash bands): such columns become JSON text."""
    import pyarrow as pa

    columns = []
    for column in table.columns:
        if pa.types.is_nested(column.type):
            text = [
                None if v is None else json.dumps(v, ensure_ascii=False, default=str)
                for v in column.to_pylist()
            ]
            column = pa.array(text, pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _emit(relation: Any, fmt: SqlFormat, dest: Path | None) -> None:
    if fmt is SqlFormat.parquet:
        if dest is None:
            raise typer.BadParameter("--format parquet needs -o FILE", param_hint="--output")
        import pyarrow.parquet as pq

        pq.write_table(relation.to_arrow_table(), dest)
        typer.echo(f"wrote {dest}", err=True)
        return
    if fmt is SqlFormat.table:
        text = str(relation)
    elif fmt is SqlFormat.csv:
        import pyarrow.csv as pcsv

        buffer = io.BytesIO()
        pcsv.write_csv(_flat(relation.to_arrow_table()), buffer)
        text = buffer.getvalue().decode("utf-8")
    else:  # one JSON object per row (JSON Lines): streams and greps well
        rows = relation.to_arrow_table().to_pylist()
        text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
    if dest is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        dest.write_text(text, "utf-8")
        typer.echo(f"wrote {dest}", err=True)


def _interactive(con: Any, fmt: SqlFormat) -> None:
    from redpajama.query import VIEWS

    with contextlib.suppress(ImportError):
        import readline  # noqa: F401 - line editing and history for input()
    tty = sys.stdin.isatty()
    if tty:
        typer.echo(f"views: {', '.join(VIEWS)}; end a query with ';', .tables lists views, .quit leaves")
    pending: list[str] = []
    while True:
        try:
            line = input(("...> " if pending else "sql> ") if tty else "")
        except EOFError:
            break
        stripped = line.strip()
        if not pending and stripped in (".quit", ".exit"):
            break
        if not pending and stripped == ".tables":
            typer.echo("  ".join(VIEWS))
            continue
        pending.append(line)
        if not stripped.endswith(";"):
            continue
        query, pending = "\n".join(pending), []
        try:
            relation = con.sql(query)
            if relation is not None:
                _emit(relation, fmt if fmt is not SqlFormat.parquet else SqlFormat.table, None)
        except Exception as exc:  # noqa: BLE001 - a bad query must not end the session
            typer.secho(f"Error: {exc}", fg="red", err=True)


@app.command(
    epilog=(
        "Examples:\n\n"
        '    redpajama sql out/ "SELECT language, count(*) FROM docs GROUP BY ALL"\n\n'
        '    redpajama sql out/ "SELECT id, rps_doc_word_count FROM docs" --format parquet -o wc.parquet\n\n'
        "    redpajama sql out/            # interactive: end queries with ';', .tables, .quit"
    )
)
def sql(
    output: Path = typer.Argument(..., help="The output folder (documents/, quality_signals/, ...)."),
    query: str | None = typer.Argument(None, help="SQL over the views; none: an interactive session."),
    fmt: SqlFormat = typer.Option(SqlFormat.table, "--format", help="table, csv, json (lines) or parquet."),
    dest: Path | None = typer.Option(None, "--output", "-o", help="Write the result here instead of stdout."),
) -> None:
    """Query an output tree with DuckDB SQL.

    Views: `documents`, `signals`, `minhash`, `duplicates` and `clusters` (with a `mode` column:
    'exact', 'fuzzy-0.8', ...), and `docs` = documents LEFT JOIN signals USING (id). A view whose
    folder is missing fails when queried, naming the command that writes it.
    """
    from redpajama.query import connect

    con = connect(output)
    if query is None:
        _interactive(con, fmt)
        return
    _emit(con.sql(query), fmt, dest)
