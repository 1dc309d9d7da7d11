"""Print what `make demo` produced and a query to try (run by the Makefile after ingest)."""

import sys
from pathlib import Path

import duckdb

out = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out")
files = sorted((out / "documents").rglob("*.parquet"))
print(f"\n{len(files)} Parquet files under {out / 'documents'}:")
for path in files:
    print(f"  {path.relative_to(out)}")
query = (
    f"SELECT snapshot_id, language, bucket, count(*) AS docs, sum(length) AS chars "
    f"FROM '{out}/documents/**/*.parquet' GROUP BY ALL ORDER BY ALL"
)
print(f'\nTry it yourself:\n  duckdb -c "{query}"\n')
print(duckdb.sql(query))
