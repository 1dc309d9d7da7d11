"""The curation ablation on a GPU: one model per curated subset of the ablation corpus, one table.

The same `run_ablation` that `redpajama ablate` calls, for machines where only the training extra
is installed (the GPU machine has no pipeline dependencies). Build and tokenize the corpus first:

    python benchmarks/ablation_corpus/build.py -o abl/corpus
    for s in raw dedup gopher-dedup c4-gopher-dedup; do
        redpajama tokenize abl/corpus/subsets/$s -o abl/tokens/$s --held-out-fraction 0.05
    done
    python benchmarks/training_ablation.py abl/tokens/{raw,dedup,gopher-dedup,c4-gopher-dedup} \\
        -o abl/results --tokens 5000000 --model 20m --seq-len 1024 --batch-size 32

which equals `redpajama ablate --subsets abl/tokens/... -o abl/results --tokens 5000000 ...`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ablation import ablation_config, add_budget_arguments  # noqa: E402

from redpajama.training.ablate import run_ablation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("subsets", nargs="+", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--model", default="20m")
    add_budget_arguments(parser)
    args = parser.parse_args()
    config = ablation_config(args, tuple(args.subsets), args.output, args.model)
    start = time.perf_counter()
    run_ablation(config)
    print((args.output / "comparison.md").read_text())
    print(f"ablation of {len(args.subsets)} subsets in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
