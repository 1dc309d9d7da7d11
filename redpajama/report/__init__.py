"""`redpajama report`: one self-contained HTML page about an output tree.

    from redpajama.report import ReportConfig, build_report

    path = build_report("out/", "report/", ReportConfig(rules=("gopher", "c4"), sample=5))

All aggregation runs in DuckDB over the Parquet globs (bounded memory); charts are inline SVG.
"""

from __future__ import annotations

from redpajama.report.build import ReportConfig, build_report

__all__ = ["ReportConfig", "build_report"]
