"""The budget and evaluation options the GPU ablation scripts share, and the AblationConfig they make.

`training_ablation.py` (one model, several subsets) and `architecture_ablation.py` (one subset,
several models) run the same `run_ablation` with the same budget: one set of flags, one mapping.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from redpajama.training.ablate import AblationConfig
from redpajama.training.evaluation.suite import Limits


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tokens", type=int, default=5_000_000, help="training tokens per model")
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--blimp-limit", type=int, default=None, help="first N pairs per BLiMP paradigm")
    parser.add_argument("--piqa-limit", type=int, default=None)
    parser.add_argument("--log-every", type=int, default=10, help="steps between logged losses")


def ablation_config(
    args: argparse.Namespace, subsets: tuple[Path, ...], out: Path, model: str, overrides: dict | None = None
) -> AblationConfig:
    """The AblationConfig of `subsets` and one model under the budget flags in `args`."""
    return AblationConfig(
        subsets=subsets,
        out=out,
        tokens=args.tokens,
        model=model,
        model_overrides=overrides or {},
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        compile=args.compile,
        eval_batch_size=args.eval_batch_size,
        log_every=args.log_every,
        limits=Limits(blimp_per_paradigm=args.blimp_limit, piqa=args.piqa_limit),
    )
