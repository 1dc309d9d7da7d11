"""The `redpajama` command line: one typer app, one module per verb."""
