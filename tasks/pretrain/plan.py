"""Derived quantities of a pre-training run: pure functions of its config, no I/O, no state.

- ``batch_geometry``: how the effective batch splits over processes and accumulated micro-batches.
  Needs only the optimiser section and the world size, so the loader can be built with it.
- ``step_schedule``: steps per epoch, total and warm-up steps, and the scaled learning rate.
  Needs the number of training pairs, known once the loader has indexed the stores.
- ``milestone_steps``: the steps whose checkpoints a learning curve keeps.
- ``mask_seed``: the seed of one micro-batch's masks.
- ``motion_grid``: the patch grid of the motion map the loader must provide, if the mask
  strategy reads one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from storage_schemas.config import OptimiserParams
from vmac_core.mask_strategies import MOTION_KEY, STRATEGIES
from vmac_core.model_config import ModelConfig
from vmac_core.schedules import scaled_lr


@dataclass(frozen=True)
class BatchGeometry:
    """``batch_size`` = micro_batch × accumulation × world_size (up to rounding)."""

    micro_batch: int  # pairs per forward pass in each process
    accumulation: int  # forward/backward passes per optimiser step in each process
    world_size: int


def batch_geometry(optimiser: OptimiserParams, world_size: int) -> BatchGeometry:
    """Each process takes ``batch_size // world_size`` pairs a step, in micro-batches of at most
    ``micro_batch_size`` (default: all of them at once), accumulating their gradients."""
    per_process = max(1, optimiser.batch_size // world_size)
    micro = min(optimiser.micro_batch_size or per_process, per_process)
    return BatchGeometry(micro, max(1, math.ceil(per_process / micro)), world_size)


@dataclass(frozen=True)
class StepSchedule:
    pairs: int  # training pairs per epoch
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    lr: float  # peak learning rate, after warm-up


def step_schedule(optimiser: OptimiserParams, pairs: int) -> StepSchedule:
    """The schedule for ``pairs`` training pairs per epoch.

    ``max_steps`` wins over ``epochs``; warm-up ends before the last step. The learning rate
    follows the linear scaling rule on the effective batch (MAE, ``main_pretrain.py``).
    """
    steps_per_epoch = max(1, pairs // optimiser.batch_size)
    total = optimiser.max_steps or max(1, int(round(optimiser.epochs * steps_per_epoch)))
    warmup = min(int(round(optimiser.warmup_epochs * steps_per_epoch)), max(total - 1, 0))
    return StepSchedule(pairs, steps_per_epoch, total, warmup, scaled_lr(optimiser.base_lr, optimiser.batch_size))


def milestone_steps(milestones: tuple[float, ...], total_steps: int) -> frozenset[int]:
    """The optimiser steps at the given fractions of ``total_steps`` (rounded): 0 is the weights
    before the first step."""
    return frozenset(int(round(fraction * total_steps)) for fraction in milestones)


def mask_seed(seed: int, step: int, micro: int, rank: int) -> int:
    """The seed of one micro-batch's masks: a pure function of (seed, step, micro, rank), so a
    resumed run draws exactly the masks the uninterrupted run would have drawn."""
    return (seed * 1_000_003 + step * 1_009 + micro) * 101 + rank


def motion_grid(model: ModelConfig) -> int | None:
    """Patches per side of the motion map the batches must carry (``MOTION_KEY``): the model's
    grid when its mask strategy reads one (motion), else None."""
    return model.grid_size if MOTION_KEY in STRATEGIES[model.mask_strategy].side_inputs else None
