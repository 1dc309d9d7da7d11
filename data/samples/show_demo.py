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
signals = (
    f"SELECT d.source_domain, s.rps_doc_word_count AS words, "
    f"round(s.rps_doc_stop_word_fraction, 3) AS stop_words, round(s.rps_doc_frac_chars_top_2gram, 3) AS top_2gram "
    f"FROM '{out}/documents/**/*.parquet' d JOIN '{out}/quality_signals/**/*.parquet' s USING (id) "
    f"ORDER BY words DESC LIMIT 8"
)
if any((out / "quality_signals").rglob("*.parquet")):
    print(f'Documents joined with their quality signals:\n  duckdb -c "{signals}"\n')
    print(duckdb.sql(signals))
