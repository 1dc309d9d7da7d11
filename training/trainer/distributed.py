"""One process per device under `torchrun`; FSDP2 shards every block and then the root.

Without torchrun's environment the run is a single process and nothing here initializes a group.
On the CPU the group uses gloo, which is how the FSDP2 path is tested on a machine without GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from redpajama.errors import UserError


@dataclass(frozen=True)
class World:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_world(device: str | None = None) -> World:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise UserError(f"--device {device}: this torch build sees no CUDA GPU", "use --device cpu")
    if world_size == 1:
        return World(0, 1, torch.device(device or ("cuda" if use_cuda else "cpu")))
    local_rank = int(os.environ["LOCAL_RANK"])
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    target = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    return World(dist.get_rank(), dist.get_world_size(), target)


def shard_model(model: nn.Module, world: World, bf16: bool, reshard_after_forward: bool = True) -> nn.Module:
    """FSDP2 (`fully_shard`) per block, then the root; gradients reduced in float32.

    With `reshard_after_forward` each block frees its gathered parameters after its forward and
    gathers them again for its backward, except the last block, whose backward comes right after
    its forward (torchtitan's choice). Without it every block keeps them: one all-gather per block
    per step."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(world.device.type, (world.world_size,))
    # cast_forward_inputs off: a block's inputs include the float32 RoPE tables, which bf16 would
    # round (positions near 2048 lose their angle) and which our RoPE kernel requires in float32.
    # The residual stream is already bf16, coming out of the bf16 embedding.
    policy = MixedPrecisionPolicy(
        param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32, cast_forward_inputs=False
    )
    last = len(model.blocks) - 1
    for i, block in enumerate(model.blocks):
        fully_shard(
            block, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward and i < last
        )
    fully_shard(model, mesh=mesh, mp_policy=policy, reshard_after_forward=reshard_after_forward)
    return model


def mean_across_ranks(value: torch.Tensor, world: World) -> torch.Tensor:
    if world.distributed:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= world.world_size
    return value


def close_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
