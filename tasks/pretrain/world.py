"""The processes of a pre-training run: rank and device, DDP set-up, autocast and CPU threads.

Under ``torchrun`` every rank runs the training loop; ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``
and ``LOCAL_WORLD_SIZE`` come from its environment. Alone, the world is one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from vmac_core.device import resolve_device


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    local_size: int  # processes on this host
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0, the only process that writes to the run directory."""
        return self.rank == 0


def setup_world(device: str) -> World:
    """This process's place in the run; joins the process group when launched by torchrun
    (nccl on CUDA, gloo on CPU). ``device`` is auto, cpu or cuda (``resolve_device``)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", size))
    resolved = resolve_device(device, local_rank)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo")
    return World(rank, size, local_rank, local_size, resolved)


def close_world(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def set_cpu_threads(world: World, threads: int | None, loader_workers: int) -> None:
    """On CPU, torch threads = ``threads`` or the cores this process's share leaves after its
    loader workers. Loader workers and every DDP rank on this host take cores too; OpenMP threads
    beyond the free cores spin against them and can make a step many times slower."""
    if world.device.type != "cpu":
        return
    free = (os.cpu_count() or 1) // max(1, world.local_size) - loader_workers
    torch.set_num_threads(threads or max(1, free))


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``amp`` (auto, bf16, fp16, off): auto is bf16 where CUDA supports it,
    fp16 otherwise; None (no autocast) on CPU."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def check_replicas(model: nn.Module, world: World) -> float:
    """The weight checksum all ranks share after a step; raises RuntimeError if any rank differs."""
    with torch.no_grad():
        checksum = torch.stack([p.double().sum() for p in model.parameters()]).sum().reshape(1).to(world.device)
    gathered = [torch.zeros_like(checksum) for _ in range(world.size)]
    dist.all_gather(gathered, checksum)
    values = [float(g) for g in gathered]
    if any(v != values[0] for v in values):
        raise RuntimeError(f"DDP replicas diverged: weight checksums by rank {values}")
    return values[0]
