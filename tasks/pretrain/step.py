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
from tasks.pretrain.loader import VIEW2_BOX_KEY, BatchStream
from tasks.pretrain.plan import BatchGeometry, StepSchedule, mask_seed
from tasks.pretrain.world import World
from vmac_core.schedules import ema_momentum_at, lr_at
from vmac_core.videomac import VideoMAC

LOSSES = ("loss", "loss_online", "loss_target", "loss_consistency")
# The adaptive strategy's REINFORCE loss (0 for the others); reported apart from ``loss``, so loss
# curves stay comparable across strategies.
SAMPLER_LOSS = "loss_sampler"


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
    started, cpu_started = time.perf_counter(), time.process_time()
    step, schedule = training.step, training.schedule
    lr = lr_at(step, schedule.total_steps, schedule.warmup_steps, schedule.lr, config.optimiser.min_lr)
    momentum = ema_momentum_at(step, schedule.total_steps, config.model.ema_momentum_base)
    for group in training.optimizer.param_groups:
        group["lr"] = lr
    totals = dict.fromkeys((*LOSSES, SAMPLER_LOSS), 0.0)
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
    # CPU seconds of this process (all its threads): on a shared machine the wall time says as
    # much about the neighbours as about the step.
    return {"step": training.step, "epoch": training.step / schedule.steps_per_epoch, **totals, "lr": lr,
            "momentum": momentum, "pairs_per_s": pairs * world.size / seconds, "data_wait_s": data_wait,
            "step_s": seconds, "step_cpu_s": time.process_time() - cpu_started}


def _forward_backward(training: Training, config: PretrainConfig, world: World, batch: dict,
                      micro: int) -> dict[str, float]:
    """Forward and backward one micro-batch with its own seeded masks; return its losses.

    The model's mask strategy draws the masks from a generator seeded by (seed, step, micro,
    rank); a strategy that learns (adaptive) adds its policy loss to what is back-propagated.
    Gradients are all-reduced across ranks only on the last micro-batch of the step.
    """
    masking = training.model.masking
    inputs = {key: batch[key].to(world.device, non_blocking=True)
              for key in ("frame1_bchw", "frame2_bchw", *masking.side_inputs)}
    box = batch.get(VIEW2_BOX_KEY)  # crop-in-crop pairs only
    box = box.to(world.device, non_blocking=True) if box is not None else None
    generator = torch.Generator().manual_seed(mask_seed(config.run.seed, training.step, micro, world.rank))
    last = micro == training.geometry.accumulation - 1
    no_sync = training.online.no_sync() if world.size > 1 and not last else contextlib.nullcontext()
    amp = training.amp
    with no_sync:
        draw = masking.draw(inputs, generator)
        with torch.autocast(world.device.type, dtype=amp, enabled=amp is not None):
            out = training.forward(inputs["frame1_bchw"], inputs["frame2_bchw"], draw.mask1_bl, draw.mask2_bl, box)
        policy = masking.policy_loss(draw, out.error_online_bl)
        total = out.loss if policy is None else out.loss + policy
        if not torch.isfinite(total):
            raise NonFiniteLossError(
                f"non-finite loss {total.item()} at step {training.step}; last good checkpoint: "
                f"{training.last_checkpoint or 'none'} (left untouched). Lower base_lr, enable clip_grad or check the data."
            )
        training.scaler.scale(total / training.geometry.accumulation).backward()
    losses = {key: float(getattr(out, key).detach()) for key in LOSSES}
    return {**losses, SAMPLER_LOSS: float(policy.detach()) if policy is not None else 0.0}
