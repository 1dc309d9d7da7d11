"""FSDP2 on several GPUs against one GPU: the same training run, loss curves and tokens/s per GPU.

Three steps; the first two are the trainer (`redpajama.training.trainer.loop.train`, as
`redpajama train` runs it), the last reads their metrics:

    python benchmarks/fsdp_scaling.py run --data abl/tokens/dedup -o abl/fsdp/1gpu --global-batch 16
    NCCL_NVLS_ENABLE=0 torchrun --standalone --nproc_per_node=2 benchmarks/fsdp_scaling.py run \\
        --data abl/tokens/dedup -o abl/fsdp/2gpu --global-batch 16
    python benchmarks/fsdp_scaling.py compare abl/fsdp/1gpu abl/fsdp/2gpu

`run` splits the global batch over the ranks (batch per rank = global / world size) and logs the
loss every step. One process trains with bf16 autocast and one compiled graph for the whole model;
under torchrun FSDP2 shards every block (bf16 parameters, float32 gradient reduction) and each
block is compiled on its own, as torchtitan does. `compare` takes the first run as the reference:
per-step loss differences where the global batches are equal, and scaling efficiency = tokens/s
per GPU over the reference's (median over logged steps after the first, which holds compilation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import versions  # noqa: E402

from redpajama.io.atomic import write_json  # noqa: E402


def run(args) -> None:
    from redpajama.training.trainer.config import TrainConfig
    from redpajama.training.trainer.loop import train

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.global_batch % world:
        raise SystemExit(f"--global-batch {args.global_batch} does not split over {world} ranks")
    config = TrainConfig(
        data=args.data,
        out=args.output,
        model=args.model,
        model_overrides={} if args.kernels else {"kernels": False},
        seq_len=args.seq_len,
        batch_size=args.global_batch // world,
        max_steps=args.steps,
        lr=args.lr,
        seed=args.seed,
        compile=args.compile,
        log_every=1,
        eval_batches=2,
        fsdp_reshard_after_forward=args.reshard,
    )
    result = train(config)
    if int(os.environ.get("RANK", "0")) == 0:
        summary = json.loads((args.output / "train_summary.json").read_text())
        summary["world_size"] = world
        summary["global_batch"] = args.global_batch
        write_json(args.output / "scaling_run.json", summary)
        print(
            f"world {world}: {result.tokens_per_second:,.0f} tokens/s, MFU {result.mfu:.3f}, loss {result.final_loss:.4f}"
        )


def load(folder: Path) -> dict:
    info = json.loads((folder / "scaling_run.json").read_text())
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line]
    info["losses"] = {row["step"]: row["loss"] for row in rows if "loss" in row}
    rates = sorted(row["tokens_per_s"] for row in rows if "tokens_per_s" in row and row["step"] > 1)
    info["median_tokens_per_s"] = rates[len(rates) // 2]
    return info


def compare(args) -> None:
    ref, *others = (load(folder) for folder in args.runs)
    ref_per_gpu = ref["median_tokens_per_s"] / ref["world_size"]
    out = {"reference": str(args.runs[0]), "versions": versions("torch"), "runs": []}
    for folder, other in zip(args.runs[1:], others, strict=True):
        per_gpu = other["median_tokens_per_s"] / other["world_size"]
        row = {
            "run": str(folder),
            "world_size": other["world_size"],
            "global_batch": other["global_batch"],
            "tokens_per_s": other["median_tokens_per_s"],
            "tokens_per_s_per_gpu": per_gpu,
            "reference_tokens_per_s": ref_per_gpu,
            "scaling_efficiency": per_gpu / ref_per_gpu,
            "mfu": other["mfu"],
            "reference_mfu": ref["mfu"],
        }
        if other["global_batch"] == ref["global_batch"]:
            steps = sorted(set(ref["losses"]) & set(other["losses"]))
            diffs = [abs(ref["losses"][s] - other["losses"][s]) for s in steps]
            row["loss"] = {
                "steps": len(steps),
                "max_abs_diff": max(diffs),
                "mean_abs_diff": sum(diffs) / len(diffs),
                "first": (ref["losses"][steps[0]], other["losses"][steps[0]]),
                "last": (ref["losses"][steps[-1]], other["losses"][steps[-1]]),
            }
        out["runs"].append(row)
        print(json.dumps(row, indent=1))
    if args.plot:
        _plot(ref, others, args.runs, args.plot)
    write_json(args.output, out)
    print(f"wrote {args.output}")


def _plot(ref, others, folders, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for info, folder in zip([ref, *others], folders, strict=True):
        steps = sorted(info["losses"])
        label = f"{info['world_size']} GPU, global batch {info['global_batch']} ({Path(folder).name})"
        ax.plot(steps, [info["losses"][s] for s in steps], label=label, linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("-o", "--output", type=Path, required=True)
    r.add_argument("--model", default="468m")
    r.add_argument("--seq-len", type=int, default=2048)
    r.add_argument("--global-batch", type=int, default=16)
    r.add_argument("--steps", type=int, default=60)
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument(
        "--keep-params", dest="reshard", action="store_false", help="FSDP2 without resharding after forward"
    )
    r.add_argument("--no-kernels", dest="kernels", action="store_false", help="PyTorch ops only")
    r.add_argument("--no-compile", dest="compile", action="store_false", help="CPU smoke runs")
    c = sub.add_parser("compare")
    c.add_argument("runs", nargs="+", type=Path, help="reference run first")
    c.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "fsdp_scaling.json")
    c.add_argument("--plot", type=Path, help="write the loss curves to this PNG")
    args = parser.parse_args()
    run(args) if args.command == "run" else compare(args)


if __name__ == "__main__":
    main()
