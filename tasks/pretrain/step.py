"""One optimiser step of VideoMAC pre-training (as MAE's ``engine_pretrain.train_one_epoch`` keeps
the inner loop apart from ``main``): accumulate micro-batches, step AdamW, update the EMA target.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from storage_schemas.config import PretrainConfig
from tasks.pretrain.loader import BatchStream
from tasks.pretrain.plan import BatchGeometry, StepSchedule, mask_seed
from tasks.pretrain.world import World
from vmac_core.masking import random_patch_mask
from vmac_core.schedules import ema_momentum_at, lr_at
from vmac_core.videomac import VideoMAC

LOSSES = ("loss", "loss_online", "loss_target", "loss_consistency")


class NonFiniteLossError(FloatingPointError):
    """Training stopped on a NaN/inf loss; the last good checkpoint is untouched."""


@dataclass
class Training:
    """What a run holds while it trains; ``step`` counts the optimiser steps done."""

    model: VideoMAC
    online: nn.Module  # the model, wrapped in DistributedDataParallel when there are several ranks
    forward: nn.Module  # what a micro-batch calls: ``online``, compiled when asked
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp: torch.dtype | None  # autocast dtype; None: no autocast
    batches: BatchStream
    geometry: BatchGeometry
    schedule: StepSchedule
    step: int = 0
    resumed_from: int = 0
    last_checkpoint: Path | None = None


def optimiser_step(training: Training, config: PretrainConfig, world: World) -> dict:
    """Take one optimiser step; return its metrics row (losses averaged over the micro-batches).

    Raises NonFiniteLossError on a NaN/inf loss, before the weights change.
    """
    started = time.perf_counter()
    step, schedule = training.step, training.schedule
    lr = lr_at(step, schedule.total_steps, schedule.warmup_steps, schedule.lr, config.optimiser.min_lr)
    momentum = ema_momentum_at(step, schedule.total_steps, config.model.ema_momentum_base)
    for group in training.optimizer.param_groups:
        group["lr"] = lr
    totals = dict.fromkeys(LOSSES, 0.0)
    data_wait = 0.0
    pairs = 0
    for micro in range(training.geometry.accumulation):
        wait_started = time.perf_counter()
        batch = next(training.batches)
        data_wait += time.perf_counter() - wait_started
        losses = _forward_backward(training, config, world, batch, micro)
        for key in totals:
            totals[key] += losses[key] / training.geometry.accumulation
        pairs += batch["frame1_bchw"].shape[0]
    if config.optimiser.clip_grad:
        training.scaler.unscale_(training.optimizer)
        torch.nn.utils.clip_grad_norm_(training.model.online.parameters(), config.optimiser.clip_grad)
    training.scaler.step(training.optimizer)
    training.scaler.update()
    training.optimizer.zero_grad(set_to_none=True)
    training.model.update_target(momentum)
    training.step += 1
    seconds = time.perf_counter() - started
    return {"step": training.step, "epoch": training.step / schedule.steps_per_epoch, **totals, "lr": lr,
            "momentum": momentum, "pairs_per_s": pairs * world.size / seconds, "data_wait_s": data_wait,
            "step_s": seconds}


def _forward_backward(training: Training, config: PretrainConfig, world: World, batch: dict,
                      micro: int) -> dict[str, float]:
    """Forward and backward one micro-batch with its own seeded mask; return its losses.

    Gradients are all-reduced across ranks only on the last micro-batch of the step.
    """
    frame1 = batch["frame1_bchw"].to(world.device, non_blocking=True)
    frame2 = batch["frame2_bchw"].to(world.device, non_blocking=True)
    grid = config.model.grid_size
    generator = torch.Generator().manual_seed(mask_seed(config.run.seed, training.step, micro, world.rank))
    mask = random_patch_mask(frame1.shape[0], grid, grid, config.model.mask_ratio, generator).to(world.device)
    last = micro == training.geometry.accumulation - 1
    no_sync = training.online.no_sync() if world.size > 1 and not last else contextlib.nullcontext()
    amp = training.amp
    with no_sync, torch.autocast(world.device.type, dtype=amp, enabled=amp is not None):
        out = training.forward(frame1, frame2, mask)
        loss = out.loss / training.geometry.accumulation
    if not torch.isfinite(out.loss):
        raise NonFiniteLossError(
            f"non-finite loss {out.loss.item()} at step {training.step}; last good checkpoint: "
            f"{training.last_checkpoint or 'none'} (left untouched). Lower base_lr, enable clip_grad or check the data."
        )
    training.scaler.scale(loss).backward()
    return {key: float(getattr(out, key).detach()) for key in LOSSES}
