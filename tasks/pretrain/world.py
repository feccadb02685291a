"""The processes of a pre-training run: rank and device, DDP set-up, autocast, CPU threads and
the CPU time they use.

Under ``torchrun`` every rank runs the training loop; ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``
and ``LOCAL_WORLD_SIZE`` come from its environment. Alone, the world is one process.

Threads on a busy machine (docs/learning.md, "Threads"): torch's CPU kernels run on GNU OpenMP,
whose waiting threads spin unless ``OMP_WAIT_POLICY=PASSIVE``; libgomp reads that variable once,
when torch loads it, so ``vmac`` sets it before importing torch (``cli.main``), and
``omp_wait_policy`` reports what this process started with.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil
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


def set_cpu_threads(world: World, threads: int | None, loader_workers: int) -> int:
    """On CPU, torch threads = ``threads`` or the cores this process's share leaves after its
    loader workers; returns the torch thread count. Loader workers and every DDP rank on this host
    take cores too; OpenMP threads beyond the free cores wait on each other and can make a step
    many times slower (spinning, unless OMP_WAIT_POLICY=PASSIVE)."""
    if world.device.type == "cpu":
        free = (os.cpu_count() or 1) // max(1, world.local_size) - loader_workers
        torch.set_num_threads(threads or max(1, free))
    return torch.get_num_threads()


def omp_wait_policy() -> str:
    """OMP_WAIT_POLICY as this process's environment holds it ("default" when unset). libgomp read
    it when torch loaded, so this is the policy in force when it was set before that, as the vmac
    command, the benchmarks and the tests do."""
    return os.environ.get("OMP_WAIT_POLICY", "default")


class RunClock:
    """Seconds a run has used so far: wall time, and CPU time (user + system) of this process and
    of the child processes it starts after the clock (DataLoader workers), whether still running
    or finished. Children that existed before (a Prefect API server) are not counted. ``offset``
    carries the seconds of the run before a resume."""

    def __init__(self, cpu_offset: float = 0.0, wall_offset: float = 0.0):
        self.process = psutil.Process()
        self.excluded = {child.pid for child in self.process.children(recursive=True)}
        self.cpu_offset, self.wall_offset = cpu_offset, wall_offset
        self.cpu_start = self._cpu()
        self.wall_start = time.perf_counter()

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in self.process.children(recursive=True):
            if child.pid in self.excluded:
                continue
            try:
                child_times = child.cpu_times()
            except psutil.NoSuchProcess:  # finished between the listing and the read: counted by children_*
                continue
            total += child_times.user + child_times.system
        return total

    def seconds(self) -> dict[str, float]:
        """``{"cpu_s", "wall_s"}``: the run's cumulative CPU and wall seconds."""
        return {"cpu_s": self.cpu_offset + self._cpu() - self.cpu_start,
                "wall_s": self.wall_offset + time.perf_counter() - self.wall_start}


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
