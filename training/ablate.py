"""The ablation loop: one model per curated subset at an identical budget and seed, then one table.

For each subset: tokenize it (unless it already is a token folder), train, evaluate on the local
suite (WikiText-2, BLiMP, PIQA), on its own held-out split, and on a reference held-out split shared
by every run (the first subset's, normally the uncurated one, so that its perplexities compare).
Finished steps are skipped on a rerun: tokens with an index, trained runs, written results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from redpajama.errors import UserError
from redpajama.io.atomic import write_bytes, write_json
from redpajama.training.checkpoint_model import load_trained
from redpajama.training.curated import LostRows
from redpajama.training.evaluation import aggregate, perplexity, suite
from redpajama.training.loader import held_out_batches
from redpajama.training.token_shards import HELD_OUT, INDEX_NAME, TokenShards, read_index
from redpajama.training.tokenize import TokenizeConfig
from redpajama.training.tokenize import run as tokenize
from redpajama.training.trainer.config import TrainConfig
from redpajama.training.trainer.loop import train


@dataclass(frozen=True)
class AblationConfig:
    subsets: tuple[Path, ...]
    out: Path
    tokens: int  # training tokens per subset
    model: str = "tiny"
    model_overrides: dict = field(default_factory=dict)
    seq_len: int = 256
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 3e-3
    seed: int = 0
    compile: bool = False
    precision: str = "auto"
    tokenizer: str = "gpt2"
    # Documents held out of training by a hash of their id: the same document is held out of every
    # subset that contains it, so no model trains on the reference held-out split.
    held_out_fraction: float = 0.02
    tasks: tuple[str, ...] = suite.TASKS
    limits: suite.Limits = field(default_factory=suite.Limits)
    eval_batch_size: int = 16
    log_every: int = 10  # steps between metrics.jsonl records of each run
    held_out_batches: int = 16

    def __post_init__(self) -> None:
        if not self.subsets:
            raise UserError("give at least one subset")
        names = [subset_name(s) for s in self.subsets]
        if len(set(names)) != len(names):
            raise UserError(f"subset folder names must differ, got {names}")


def subset_name(path: Path) -> str:
    return Path(path).resolve().name


def _tokens_for(subset: Path, config: AblationConfig) -> Path:
    if (subset / INDEX_NAME).exists():
        lost = tuple(LostRows(**entry) for entry in read_index(subset).get("lost", ()))
        dest = subset
    else:
        dest = config.out / "tokens" / subset_name(subset)
        # Same tokenizer and seed for every subset; a rerun over complete shards is a no-op.
        lost = tokenize(
            subset,
            dest,
            TokenizeConfig(
                tokenizer=config.tokenizer, seed=config.seed, held_out_fraction=config.held_out_fraction
            ),
        ).lost
    # Subsets compared at equal budgets should hold what their curation kept: any loss is an error here.
    if lost:
        raise UserError(
            f"{subset}: {len(lost)} part(s) of its documents could not be read, first {lost[0].describe()}",
            "repair or remove them and tokenize again; index.json's `lost` lists every one",
        )
    return dest


def _held_out_windows(tokens: Path, config: AblationConfig):
    shards = TokenShards.open(tokens, split=HELD_OUT)
    for inputs, targets in held_out_batches(
        shards, config.seq_len, config.batch_size, config.held_out_batches
    ):
        yield torch.cat([inputs, targets[:, -1:]], dim=1)


def run_ablation(config: AblationConfig, device: str | None = None) -> list[dict]:
    """Train and evaluate every subset; write comparison.{md,json,png} under `config.out`."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    token_folders = {subset_name(s): _tokens_for(Path(s), config) for s in config.subsets}
    reference = next(iter(token_folders.values()))
    results: dict[str, dict] = {}
    for name, tokens in token_folders.items():
        run = config.out / "runs" / name
        results_path = run / "results.json"
        train_config = TrainConfig(
            data=tokens,
            out=run,
            model=config.model,
            model_overrides=config.model_overrides,
            seq_len=config.seq_len,
            batch_size=config.batch_size,
            grad_accum=config.grad_accum,
            max_tokens=config.tokens,
            lr=config.lr,
            seed=config.seed,
            compile=config.compile,
            precision=config.precision,
            log_every=config.log_every,
        )
        if not results_path.exists():
            train(train_config, device=device)
            model, tokenizer, _ = load_trained(run, device)
            with _autocast(device, config.precision):
                out = suite.run(
                    model,
                    tokenizer,
                    tasks=config.tasks,
                    limits=config.limits,
                    # The longest input the model's position tables cover (PIQA answers run to ~250 tokens).
                    max_len=model.config.max_seq_len,
                    batch_size=config.eval_batch_size,
                    held_out_windows=_held_out_windows(tokens, config),
                    device=device,
                )
                out["tasks"]["held_out_reference"] = perplexity.held_out(
                    model, _held_out_windows(reference, config), device=device
                )
            out["subset"] = {"name": name, "tokens_folder": str(tokens), "reference": subset_name(reference)}
            out["train"] = json.loads((run / "train_summary.json").read_text())
            write_json(results_path, out)
            del model
        results[name] = json.loads(results_path.read_text())
    rows = aggregate.comparison_table(results)
    write_json(config.out / "comparison.json", {"rows": rows, "config": _describe(config)})
    write_bytes(config.out / "comparison.md", aggregate.to_markdown(rows).encode())
    aggregate.plot_comparison(rows, config.out / "comparison.png")
    return rows


def _autocast(device: str, precision: str):
    bf16 = precision == "bf16" or (precision == "auto" and str(device).startswith("cuda"))
    return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def _describe(config: AblationConfig) -> dict:
    out = dataclasses.asdict(config)
    out["subsets"] = [str(s) for s in config.subsets]
    out["out"] = str(config.out)
    return out
