"""The process group of one stage, as torchrun sets it up.

torchrun gives each worker ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``LOCAL_WORLD_SIZE`` and the c10d store address; without them (a plain
``python`` call, tests) this is a single process and no group is created.
Backend ``auto`` means nccl on GPUs and gloo on CPU.  The group timeout is
``distributed.timeout_minutes``, so a rank that waits for a dead peer fails
after that long instead of hanging forever.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..config import KronosConfig


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")
    backend: str = "none"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_node_main(self) -> bool:
        return self.local_rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    # ------------------------------------------------------------ collectives
    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """In place, on this rank's device (nccl needs GPU tensors)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_reduce_max_int(self, value: int) -> int:
        if not self.distributed:
            return int(value)
        t = torch.tensor([int(value)], dtype=torch.int64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def broadcast_int(self, value: int) -> int:
        """Rank 0's value on every rank: decisions are taken once, then shared."""
        if not self.distributed:
            return int(value)
        t = torch.tensor([int(value)], dtype=torch.int64, device=self.device)
        dist.broadcast(t, src=0)
        return int(t.item())


def choose_backend(cfg: KronosConfig, on_gpu: bool) -> str:
    backend = cfg.distributed.backend
    if backend == "auto":
        return "nccl" if on_gpu else "gloo"
    return backend


def init_distributed(cfg: KronosConfig) -> DistEnv:
    """Join the stage's process group (when torchrun started several workers)."""
    rank = int(os.environ.get("RANK", 0))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    on_gpu = cfg.device.use_cuda and torch.cuda.is_available()
    if on_gpu:
        gpu_index = local_rank if world_size > 1 else cfg.device.device_id
        torch.cuda.set_device(gpu_index)
        device = torch.device("cuda", gpu_index)
    else:
        device = torch.device("cpu")
    backend = choose_backend(cfg, on_gpu) if world_size > 1 else "none"
    if world_size > 1 and not dist.is_initialized():
        timeout = datetime.timedelta(minutes=cfg.distributed.timeout_minutes)
        kwargs = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend=backend, timeout=timeout, **kwargs)
    return DistEnv(rank, local_rank, world_size, local_world_size, device, backend)


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
