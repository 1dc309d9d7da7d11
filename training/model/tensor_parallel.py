"""Megatron-style tensor parallelism for our decoder blocks on plain torch.distributed.

Every block's two modules are split across the ranks of a group (Shoeybi et al. 2019, "Megatron-LM"):

    attention  w_qkv   column-parallel, split by heads: rank r keeps query heads
                       [r H/P, (r+1) H/P) and the matching K and V groups [r G/P, (r+1) G/P)
               w_out   row-parallel: the input columns of those query heads
    MLP        w_gate_up column-parallel: rank r keeps rows [r F/P, (r+1) F/P) of the gate AND of
                       the up half, stored [gate shard | up shard] so SwiGLU's chunk(2) still pairs them
               w_down  row-parallel: the matching input columns

so a module's output on each rank is a partial sum; one all-reduce per module (two per block) makes it
whole. In autograd terms a module is g(m(f(N(h)))): f is identity forward and all-reduce backward
(the gradient of the replicated input sums over the column shards), g is all-reduce forward and
identity backward. Embedding, norms and head stay replicated, and their gradients come out whole and
equal on every rank. GQA heads keep their grouping: H/P query heads over G/P groups is H/G per group,
as in the full model. GTA (a shared RoPE key) and MoE blocks are not split here.

`TensorParallelTransformer(config, ladder=...)` runs either data flow. Standard: each all-reduce is
waited on at once. Ladder (ladder.py): the all-reduce is launched with async_op=True and waited on
after the next module has been computed, just before its result joins the residual stream.

Keep NVLink multicast off on NCCL machines (NCCL_NVLS_ENABLE=0; the lent H200 hosts set it): a program
that uses it can take a shared host's GPUs out of service, and these small all-reduces gain nothing
from it.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from redpajama.errors import UserError
from redpajama.training.model.config import ModelConfig
from redpajama.training.model.residual import (
    LOCAL,
    Comm,
    block_modules,
    embed_tokens,
    ladder_residual,
    sequential_residual,
)
from redpajama.training.model.transformer import Transformer


class _Enter(torch.autograd.Function):
    """Megatron's f: identity forward; backward sums the gradient over the group."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class _StartAllReduce(torch.autograd.Function):
    """Megatron's g, launched: the all-reduce runs in place on y; identity backward."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, group, box: list) -> torch.Tensor:
        # In place on the row-parallel matmul's fresh output (nothing saves it for backward; autograd's
        # version counter would raise if something did). Not readable until the work is waited on.
        ctx.mark_dirty(y)
        box.append(dist.all_reduce(y, group=group, async_op=True))
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None, None


class _InFlight:
    def __init__(self, y: torch.Tensor, work) -> None:
        self.y, self.work = y, work

    def wait(self) -> torch.Tensor:
        # On CUDA, makes the current stream wait for NCCL's stream; on gloo, blocks until done.
        self.work.wait()
        return self.y


class TensorParallelComm:
    """f and g over one process group (residual.Comm)."""

    def __init__(self, group=None) -> None:
        self.group = group

    def enter(self, x: torch.Tensor) -> torch.Tensor:
        return _Enter.apply(x, self.group)

    def start(self, y: torch.Tensor) -> _InFlight:
        if not y.is_contiguous():
            y = y.contiguous()
        box: list = []
        y = _StartAllReduce.apply(y, self.group, box)
        return _InFlight(y, box[0])


def group_rank_and_size(group=None) -> tuple[int, int]:
    if not dist.is_available() or not dist.is_initialized():
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


def check_splittable(config: ModelConfig, world: int) -> None:
    if config.attention != "gqa":
        raise UserError(f"tensor parallelism splits GQA attention only, not {config.attention!r}")
    if config.moe_experts:
        raise UserError("tensor parallelism does not split MoE blocks (moe_experts > 0)")
    if any(config.mixer(i) != "A" for i in range(config.n_layers)):
        raise UserError(
            f"tensor parallelism splits attention blocks only, not mixer_pattern {config.mixer_pattern!r}"
        )
    for name, count in (("n_heads", config.n_heads), ("n_kv_heads", config.kv_heads)):
        if count % world:
            raise UserError(f"{name} {count} is not a multiple of the tensor-parallel size {world}")
    if config.mlp_hidden % world:
        raise UserError(
            f"mlp hidden {config.mlp_hidden} is not a multiple of the tensor-parallel size {world}"
        )


def _pieces(config: ModelConfig, name: str) -> tuple[int, list[int]] | None:
    """(dim, piece sizes) of a split parameter: each piece is cut into `world` equal chunks."""
    d = config.head_dim
    if name.endswith("attn.w_qkv.weight"):
        return 0, [config.n_heads * d, config.kv_heads * d, config.kv_heads * d]
    if name.endswith("attn.w_out.weight"):
        return 1, [config.n_heads * d]
    if name.endswith("mlp.w_gate_up.weight"):
        return 0, [config.mlp_hidden, config.mlp_hidden]
    if name.endswith("mlp.w_down.weight"):
        return 1, [config.mlp_hidden]
    return None


def shard_tensor(name: str, full: torch.Tensor, config: ModelConfig, rank: int, world: int) -> torch.Tensor:
    """Rank `rank`'s shard of the full parameter (or gradient) `name`; replicated ones come back as is."""
    split = _pieces(config, name)
    if split is None or world == 1:
        return full
    dim, sizes = split
    shards = [piece.chunk(world, dim=dim)[rank] for piece in full.split(sizes, dim=dim)]
    return torch.cat(shards, dim=dim).contiguous()


def shard_state_dict(state: dict[str, torch.Tensor], config: ModelConfig, rank: int, world: int) -> dict:
    """A full (single-process) state dict, or a dict of gradients, cut down to one rank's shards."""
    return {name: shard_tensor(name, t, config, rank, world) for name, t in state.items()}


def _replace_weight(linear: nn.Linear, weight: torch.Tensor) -> None:
    linear.weight = nn.Parameter(weight.detach().clone(), requires_grad=linear.weight.requires_grad)
    linear.out_features, linear.in_features = weight.shape


class TensorParallelTransformer(Transformer):
    """`Transformer` (or its ladder variant) whose blocks hold one rank's shards of a group.

    Built from the seed like `Transformer` (full initialization, then cut), so under the same
    `torch.manual_seed` every rank holds its slice of exactly the single-process model's weights.
    `load_full_state_dict` loads a single-process checkpoint. Parameter names are `Transformer`'s.
    Without an initialized process group it is one rank and computes what `Transformer` (or
    `LadderTransformer`) computes.
    """

    def __init__(self, config: ModelConfig, *, ladder: bool = False, group=None) -> None:
        rank, world = group_rank_and_size(group)
        check_splittable(config, world)
        super().__init__(config)
        self.ladder = ladder
        self.tp_rank, self.tp_size = rank, world
        self.comm: Comm = TensorParallelComm(group) if world > 1 else LOCAL
        if world > 1:
            self._shard()

    def _shard(self) -> None:
        full = {name: p.detach() for name, p in self.named_parameters()}
        for block_name, block in self.blocks.named_children():
            for linear_name in ("attn.w_qkv", "attn.w_out", "mlp.w_gate_up", "mlp.w_down"):
                name = f"blocks.{block_name}.{linear_name}.weight"
                linear = block.get_submodule(linear_name)
                _replace_weight(
                    linear, shard_tensor(name, full[name], self.config, self.tp_rank, self.tp_size)
                )
            block.attn.n_heads //= self.tp_size
            block.attn.n_kv //= self.tp_size

    def load_full_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(shard_state_dict(state, self.config, self.tp_rank, self.tp_size))

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        x, cos, sin = embed_tokens(self, input_ids)
        loop = ladder_residual if self.ladder else sequential_residual
        return loop(x, block_modules(self.blocks, cos, sin), self.norm, self.comm)
