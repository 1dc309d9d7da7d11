"""FSDP2 on the CPU: two gloo processes under torchrun reproduce the one-process loss curve."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from redpajama.training.trainer.metrics import read_metrics


def train_cli(tokens, out, batch_size: int, nproc: int, extra: tuple[str, ...] = ()) -> list[float]:
    args = ["train", "--data", str(tokens), "-o", str(out), "--steps", "8", "--seq-len", "64", *extra]
    args += [
        "--batch-size",
        str(batch_size),
        "--log-every",
        "1",
        "--device",
        "cpu",
        "--no-compile",
        "--lr",
        "1e-2",
    ]
    launcher = [sys.executable, "-m", "redpajama"]
    if nproc > 1:
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
        ]
        launcher += ["-m", "redpajama"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launcher, *args], capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [r["loss"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r]


@pytest.mark.slow
@pytest.mark.parametrize("reshard", ["--fsdp-reshard", "--fsdp-keep-params"])
def test_two_fsdp_ranks_match_one_process_at_equal_global_batch(shakespeare_tokens, tmp_path, reshard):
    single = train_cli(shakespeare_tokens, tmp_path / "one", batch_size=8, nproc=1)
    sharded = train_cli(shakespeare_tokens, tmp_path / "two", batch_size=4, nproc=2, extra=(reshard,))
    assert len(single) == len(sharded) == 8
    # Same data, same initial weights, gradients averaged across ranks: only summation order differs.
    for a, b in zip(single, sharded, strict=True):
        assert b == pytest.approx(a, rel=1e-5), (single, sharded)
    # The curve moved, so the match is not two copies of an untrained model.
    assert single[-1] < single[0] - 0.5
    assert (tmp_path / "two" / "checkpoints" / "latest.json").exists()


def test_bf16_sharded_blocks_keep_float32_rope_tables(tmp_path):
    """FSDP2's bf16 policy must not cast a block's float32 RoPE tables to bf16: at position ~2000 bf16
    rounds the angle's cosine by ~4e-3, and the GPU RoPE kernel refuses non-float32 tables."""
    import torch
    import torch.distributed as dist

    from redpajama.training.model import Transformer, model_config
    from redpajama.training.trainer.distributed import World, shard_model

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = Transformer(model_config("tiny"))
        shard_model(model, World(0, 1, torch.device("cpu")), bf16=True)
        seen = []
        model.blocks[0].attn.register_forward_pre_hook(lambda _, args: seen.append([a.dtype for a in args]))
        with torch.no_grad():
            model(torch.randint(0, model.config.vocab_size, (1, 16)))
    finally:
        dist.destroy_process_group()
    # (normed residual stream, cos, sin): bf16 parameters make a bf16 stream; the tables stay float32.
    assert seen == [[torch.bfloat16, torch.float32, torch.float32]]
