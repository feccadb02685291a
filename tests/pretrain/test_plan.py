"""Batch geometry and step schedule: pure functions of the config (tasks.pretrain.plan)."""

from __future__ import annotations

import pytest

from storage_schemas.config import OptimiserParams
from tasks.pretrain.plan import batch_geometry, mask_seed, step_schedule


@pytest.mark.parametrize("batch, micro, world, want", [
    (32, None, 1, (32, 1)),  # one forward pass per step
    (512, 64, 1, (64, 8)),  # the paper presets on one GPU
    (512, 64, 8, (64, 1)),  # ... on eight
    (8, None, 2, (4, 1)),  # DDP halves the per-process batch
    (10, 4, 1, (4, 3)),  # 10 = 4 + 4 + 2: accumulation rounds up
    (2, None, 4, (1, 1)),  # more processes than pairs: at least one each
])
def test_batch_geometry(batch, micro, world, want):
    geometry = batch_geometry(OptimiserParams(batch_size=batch, micro_batch_size=micro), world)
    assert (geometry.micro_batch, geometry.accumulation) == want and geometry.world_size == world


def test_step_schedule_from_epochs_and_the_linear_scaling_rule():
    schedule = step_schedule(OptimiserParams(batch_size=32, epochs=3, warmup_epochs=1, base_lr=4e-3), pairs=100)
    assert (schedule.pairs, schedule.steps_per_epoch, schedule.total_steps, schedule.warmup_steps) == (100, 3, 9, 3)
    assert schedule.lr == pytest.approx(4e-3 * 32 / 256)


def test_max_steps_wins_and_warmup_ends_before_the_last_step():
    schedule = step_schedule(OptimiserParams(batch_size=4, epochs=100, warmup_epochs=10, max_steps=5), pairs=40)
    assert (schedule.steps_per_epoch, schedule.total_steps, schedule.warmup_steps) == (10, 5, 4)


def test_fewer_pairs_than_a_batch_still_make_a_step():
    schedule = step_schedule(OptimiserParams(batch_size=512, epochs=1, warmup_epochs=0), pairs=10)
    assert (schedule.steps_per_epoch, schedule.total_steps, schedule.warmup_steps) == (1, 1, 0)


def test_mask_seeds_differ_by_step_micro_batch_and_rank():
    seeds = {mask_seed(0, step, micro, rank) for step in range(20) for micro in range(4) for rank in range(4)}
    assert len(seeds) == 20 * 4 * 4
    assert mask_seed(1, 0, 0, 0) != mask_seed(0, 0, 0, 0)
