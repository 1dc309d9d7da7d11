"""Architectures at an equal token budget: one curated subset, one model per variant, one table.

The data ablation (`training_ablation.py`, `redpajama ablate`) holds the model fixed and varies the
subset; this holds the subset fixed and varies the model, with the same trainer, seed, budget and
evaluation suite. Each variant is `NAME=SIZE[,field=value...]` with ModelConfig overrides:

    python benchmarks/architecture_ablation.py abl/tokens/dedup -o abl/arch --tokens 5000000 \\
        --variant dense=20m --variant hybrid=hybrid-20m --variant loglinear=loglinear-20m

    python benchmarks/architecture_ablation.py abl/tokens/dedup -o abl/moe --tokens 2000000 \\
        --variant naive=moe-small,moe_impl=naive --variant triton=moe-small,moe_impl=triton \\
        --same-loss naive triton

`--same-loss A B` also compares the per-step training losses of A and B, for variants that compute
the same function by different kernels (e.g. the naive and Triton MoE experts): it prints and
records the largest and the mean absolute difference. Writes comparison.{md,json,png} under -o.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ablation import ablation_config, add_budget_arguments  # noqa: E402

from redpajama.io.atomic import write_bytes, write_json  # noqa: E402
from redpajama.training.ablate import run_ablation, subset_name  # noqa: E402
from redpajama.training.evaluation import aggregate  # noqa: E402


def parse_variant(text: str) -> tuple[str, str, dict]:
    """'name=size,key=value,...' -> (name, size, overrides); values parsed as JSON when they are."""
    name, sep, spec = text.partition("=")
    if not sep or not name or not spec:
        raise SystemExit(f"--variant wants NAME=SIZE[,field=value...], got {text!r}")
    size, *fields = spec.split(",")
    overrides = {}
    for field in fields:
        key, sep, value = field.partition("=")
        if not sep:
            raise SystemExit(f"--variant {text!r}: {field!r} is not field=value")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, size, overrides


def losses(run: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    return {row["step"]: row["loss"] for row in rows if "loss" in row}


def loss_difference(a: Path, b: Path) -> dict:
    la, lb = losses(a), losses(b)
    steps = sorted(set(la) & set(lb))
    diffs = [abs(la[s] - lb[s]) for s in steps]
    return dict(
        steps=len(steps),
        max_abs=max(diffs),
        mean_abs=sum(diffs) / len(diffs),
        final=(la[steps[-1]], lb[steps[-1]]),
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "subset", type=Path, help="a token folder (redpajama tokenize) or curated Parquet folder"
    )
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--variant", action="append", required=True, type=parse_variant)
    add_budget_arguments(parser)
    parser.add_argument("--same-loss", nargs=2, metavar=("A", "B"), action="append", default=[])
    args = parser.parse_args()
    names = [name for name, _, _ in args.variant]
    if len(set(names)) != len(names):
        raise SystemExit(f"variant names must differ, got {names}")

    results, seconds = {}, {}
    for name, size, overrides in args.variant:
        start = time.perf_counter()
        config = ablation_config(args, (args.subset,), args.output / name, size, overrides)
        run_ablation(config)
        seconds[name] = time.perf_counter() - start
        run = args.output / name / "runs" / subset_name(args.subset)
        results[name] = json.loads((run / "results.json").read_text())
        train = results[name]["train"]
        print(
            f"{name} ({size} {overrides or ''}): final loss {train['final_loss']:.4f}, "
            f"{train['tokens_per_second']:,.0f} tokens/s, {seconds[name]:.0f} s with eval",
            flush=True,
        )

    rows = aggregate.comparison_table(results)
    same = {}
    for a, b in args.same_loss:
        run_a, run_b = (args.output / n / "runs" / subset_name(args.subset) for n in (a, b))
        same[f"{a} vs {b}"] = loss_difference(run_a, run_b)
        print(f"training loss, {a} vs {b}: {json.dumps(same[f'{a} vs {b}'])}")
    write_json(
        args.output / "comparison.json",
        {
            "rows": rows,
            "variants": {name: {"size": size, "overrides": o} for name, size, o in args.variant},
            "seconds": seconds,
            "train": {name: result["train"] for name, result in results.items()},
            "same_loss": same,
            "tokens": args.tokens,
            "subset": str(args.subset),
        },
    )
    table = aggregate.to_markdown(rows)
    write_bytes(args.output / "comparison.md", table.encode())
    aggregate.plot_comparison(rows, args.output / "comparison.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
