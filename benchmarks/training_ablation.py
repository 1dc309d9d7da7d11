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
import time
from pathlib import Path

from redpajama.training.ablate import AblationConfig, run_ablation
from redpajama.training.evaluation.suite import Limits


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("subsets", nargs="+", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=5_000_000)
    parser.add_argument("--model", default="20m")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--blimp-limit", type=int, default=None, help="first N pairs per BLiMP paradigm")
    parser.add_argument("--piqa-limit", type=int, default=None)
    args = parser.parse_args()
    config = AblationConfig(
        subsets=tuple(args.subsets),
        out=args.output,
        tokens=args.tokens,
        model=args.model,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        compile=args.compile,
        eval_batch_size=args.eval_batch_size,
        limits=Limits(blimp_per_paradigm=args.blimp_limit, piqa=args.piqa_limit),
    )
    start = time.perf_counter()
    run_ablation(config)
    print((args.output / "comparison.md").read_text())
    print(f"ablation of {len(args.subsets)} subsets in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
