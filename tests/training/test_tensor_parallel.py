"""Tensor parallelism on the CPU: two gloo ranks reproduce the one-process model, forward and backward."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from redpajama.errors import UserError
from redpajama.training.model import Transformer, model_config
from redpajama.training.model.ladder import LadderTransformer
from redpajama.training.model.tensor_parallel import (
    TensorParallelTransformer,
    check_splittable,
    shard_state_dict,
    shard_tensor,
)

WORLD = 2


def tiny():
    # 4 heads over 2 KV groups, SwiGLU hidden 192: both split in two with GQA grouping kept.
    return model_config("tiny", vocab_size=96, n_layers=3, kernels=False, loss="full")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def _compare(rank: int, ladder: bool) -> dict:
    cfg = tiny()
    torch.manual_seed(0)
    reference = (LadderTransformer if ladder else Transformer)(cfg).double()
    # A different seed, then the single-process weights loaded: shards come from the full tensors.
    torch.manual_seed(123)
    tp = TensorParallelTransformer(cfg, ladder=ladder).double()
    tp.load_full_state_dict(reference.state_dict())
    # Built from the same seed, the TP model holds the reference's slices without loading anything.
    torch.manual_seed(0)
    seeded = TensorParallelTransformer(cfg, ladder=ladder).double()
    same_init = all(
        torch.equal(a, b) for a, b in zip(seeded.state_dict().values(), tp.state_dict().values(), strict=True)
    )

    ids = torch.randint(0, cfg.vocab_size, (3, 23), generator=torch.Generator().manual_seed(5))
    targets = torch.roll(ids, -1, dims=1)
    logits_ref, logits_tp = reference(ids), tp(ids)
    loss_ref, loss_tp = reference(ids, targets), tp(ids, targets)
    loss_ref.backward()
    loss_tp.backward()
    want = shard_state_dict({n: p.grad for n, p in reference.named_parameters()}, cfg, rank, WORLD)
    grads = {n: _rel(p.grad, want[n]) for n, p in tp.named_parameters()}
    local_qkv = tp.blocks[0].attn.w_qkv.weight.shape[0]
    # The other rank's logits: every rank must hold the same replicated result.
    other = [torch.empty_like(logits_tp) for _ in range(WORLD)]
    dist.all_gather(other, logits_tp.detach().contiguous())
    return {
        "logits": _rel(logits_tp, logits_ref),
        "loss": abs(loss_tp.item() - loss_ref.item()),
        "grads": grads,
        "local_qkv_rows": local_qkv,
        "same_init": same_init,
        "ranks_agree": all(torch.equal(other[0], o) for o in other),
    }


def _worker(rank: int, rendezvous: str, out: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)
    try:
        results = {"standard": _compare(rank, ladder=False), "ladder": _compare(rank, ladder=True)}
    finally:
        dist.destroy_process_group()
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(results, f)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("tp")
    mp.spawn(_worker, args=(str(folder / "rendezvous"), str(folder)), nprocs=WORLD, join=True)
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(WORLD)]


@pytest.mark.parametrize("flow", ["standard", "ladder"])
def test_two_tensor_parallel_ranks_equal_the_one_process_model(two_ranks, flow):
    cfg = tiny()
    for rank, results in enumerate(two_ranks):
        r = results[flow]
        # Each rank really holds half the heads: (H + 2G) D / 2 rows of the fused QKV.
        assert r["local_qkv_rows"] == (cfg.n_heads + 2 * cfg.kv_heads) * cfg.head_dim // WORLD
        assert r["same_init"] and r["ranks_agree"], (rank, r)
        # float64: only the order of the partial sums differs.
        assert r["logits"] < 1e-12 and r["loss"] < 1e-12, (rank, r)
        assert set(r["grads"]) == {n for n, _ in Transformer(cfg).named_parameters()}
        worst = max(r["grads"].items(), key=lambda kv: kv[1])
        assert worst[1] < 1e-10, (rank, worst)


def test_one_rank_without_a_group_is_the_plain_model():
    cfg = tiny()
    ids = torch.randint(0, cfg.vocab_size, (2, 11), generator=torch.Generator().manual_seed(6))
    for ladder, plain in ((False, Transformer), (True, LadderTransformer)):
        torch.manual_seed(0)
        want = plain(cfg).double()(ids)
        torch.manual_seed(0)
        got = TensorParallelTransformer(cfg, ladder=ladder).double()(ids)
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_shards_tile_the_full_weights():
    cfg = tiny()
    d, h, g, f = cfg.head_dim, cfg.n_heads, cfg.kv_heads, cfg.mlp_hidden
    qkv = torch.arange((h + 2 * g) * d * 3, dtype=torch.float64).view(-1, 3)
    rows = [shard_tensor("blocks.0.attn.w_qkv.weight", qkv, cfg, r, WORLD) for r in range(WORLD)]
    # Rank 0: query heads 0..1, key group 0, value group 0; rank 1: heads 2..3, groups 1.
    q, k, v = qkv.split([h * d, g * d, g * d])
    torch.testing.assert_close(rows[0], torch.cat([q[: 2 * d], k[:d], v[:d]]))
    torch.testing.assert_close(rows[1], torch.cat([q[2 * d :], k[d:], v[d:]]))
    gate_up = torch.arange(2 * f * 2, dtype=torch.float64).view(2 * f, 2)
    shard = shard_tensor("blocks.1.mlp.w_gate_up.weight", gate_up, cfg, 1, WORLD)
    torch.testing.assert_close(shard, torch.cat([gate_up[f // 2 : f], gate_up[f + f // 2 :]]))
    down = torch.arange(4 * f, dtype=torch.float64).view(4, f)
    torch.testing.assert_close(
        shard_tensor("blocks.2.mlp.w_down.weight", down, cfg, 0, WORLD), down[:, : f // 2]
    )
    norm = torch.ones(cfg.d_model)
    assert shard_tensor("blocks.0.attn_norm.weight", norm, cfg, 1, WORLD) is norm


def test_unsplittable_configs_are_refused():
    with pytest.raises(UserError, match="multiple of the tensor-parallel size 3"):
        check_splittable(tiny(), 3)
    with pytest.raises(UserError, match="GQA"):
        check_splittable(tiny().replace(attention="gta"), 2)
    with pytest.raises(UserError, match="MoE"):
        check_splittable(model_config("moe-small"), 2)
    check_splittable(tiny(), 2)
