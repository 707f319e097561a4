"""Data parallelism over processes with ``torch.distributed`` (launched by ``torchrun``).

Every process holds the whole model and computes the loss of its shard of
each global batch, divided by the normaliser of the *global* batch; the
gradients are then summed over processes with one all-reduce, which gives the
gradient of the global batch. All processes apply the same update, so the
weights stay identical. The reduction is done here rather than by
``torch.nn.parallel.DistributedDataParallel`` because a training step runs
several backward passes through the same forward graph (forces, then
Hessian-vector products, then the weights), which DDP's once-per-forward
gradient hooks do not support.

With ``torchrun`` (environment variables ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) the process group is set
up automatically: ``gloo`` on CPU, ``nccl`` on CUDA.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Rank of this process, number of processes and rank on this node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owned: bool = False

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints (rank 0)."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def setup(device: torch.device) -> DistInfo:
    """Join the process group described by the environment (no-op for one process).

    Parameters
    ----------
    device : torch.device
        Training device type; CUDA uses ``nccl`` and device ``cuda:LOCAL_RANK``.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, owned=True)


def teardown(info: DistInfo) -> None:
    """Leave the process group if :func:`setup` created it."""
    if info.owned and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_gradients(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """Sum the gradients over processes (missing gradients count as zero)."""
    if not info.active:
        return
    grads = []
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    start = 0
    for g in grads:
        g.copy_(flat[start: start + g.numel()].view_as(g))
        start += g.numel()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``tensor`` over processes (a new tensor)."""
    out = tensor.detach().clone()
    if info.active:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Rank 0's value of ``flag`` on every process."""
    if not info.active:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()
