"""Options shared by `redpajama train` and `redpajama ablate`, and the check that torch is there."""

from __future__ import annotations

import typer

from redpajama.errors import UserError

# The sizes of redpajama.training.model.SIZES, written out: importing it here would import torch
# with every CLI start (tests/training/test_cli_training.py keeps the two in step).
MODEL_SIZES = "tiny, 20m, 124m, 468m, 1.6b, moe-small, hybrid-20m, loglinear-20m, loglinear-gdn-20m"
MODEL = typer.Option("tiny", "--model", help=f"Model size: {MODEL_SIZES}.")
ATTENTION = typer.Option(None, "--attention", help="Attention variant: gqa (default) or gta.")
KV_HEADS = typer.Option(None, "--kv-heads", help="Key/value heads (GQA) or tied KV groups (GTA).")
LADDER = typer.Option(False, "--ladder", help="Ladder residual blocks (same parameters, overlappable TP).")
SEQ_LEN = typer.Option(256, "--seq-len", help="Tokens per training sequence.")
BATCH_SIZE = typer.Option(8, "--batch-size", help="Sequences per device per micro-step.")
GRAD_ACCUM = typer.Option(1, "--grad-accum", help="Micro-steps per optimizer step.")
LR = typer.Option(3e-3, "--lr", help="Peak learning rate (warmup over 1% of steps, cosine to 10%).")
SEED = typer.Option(0, "--seed", help="Seed of the initialization and the data order.")
COMPILE = typer.Option(None, "--compile/--no-compile", help="torch.compile the model (default: on CUDA).")
PRECISION = typer.Option("auto", "--precision", help="auto (bf16 autocast on CUDA), bf16 or fp32.")
DEVICE = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available).")


def require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise UserError(
            "training needs PyTorch, which is not installed", hint="pip install 'redpajama[train]'"
        ) from error


def model_overrides(attention: str | None, kv_heads: int | None, ladder: bool = False) -> dict:
    if attention not in (None, "gqa", "gta"):
        raise typer.BadParameter(
            f"unknown attention {attention!r}; known: gqa, gta", param_hint="--attention"
        )
    pairs = (("attention", attention), ("n_kv_heads", kv_heads), ("residual", "ladder" if ladder else None))
    return {k: v for k, v in pairs if v is not None}


def compile_default(compile_flag: bool | None, device: str | None) -> bool:
    if compile_flag is not None:
        return compile_flag
    import torch

    return (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
