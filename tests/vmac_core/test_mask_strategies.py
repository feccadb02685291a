"""Mask strategies (vmac_core.mask_strategies): counts, the paper's masks bit for bit, motion
following motion, and the adaptive sampler's gradients."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from vmac_core.mask_strategies import (
    MOTION_KEY,
    STRATEGIES,
    AdaptiveMask,
    build_mask_strategy,
    masked_count,
)
from vmac_core.masking import num_visible_patches, random_patch_mask
from vmac_core.model_config import MASK_STRATEGIES, ModelConfig
from vmac_core.videomac import VideoMAC

TINY = ModelConfig(encoder="convnextv2_atto", input_size=96, decoder_dim=16)


def _batch(batch: int = 3, size: int = 96, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    grid = size // 32
    return {"frame1_bchw": torch.randn(batch, 3, size, size, generator=generator),
            "frame2_bchw": torch.randn(batch, 3, size, size, generator=generator),
            MOTION_KEY: torch.rand(batch, grid * grid, generator=generator)}


def test_every_strategy_is_registered_under_its_config_name():
    assert tuple(STRATEGIES) == MASK_STRATEGIES


@pytest.mark.parametrize("ratio", [0.0, 0.5, 0.75, 0.9])
@pytest.mark.parametrize("strategy", MASK_STRATEGIES)
def test_each_strategy_masks_exactly_the_configured_count_in_each_frame(strategy, ratio):
    cfg = dataclasses.replace(TINY, mask_strategy=strategy, mask_ratio=ratio)
    masking = build_mask_strategy(cfg)
    for seed in range(5):
        draw = masking.draw(_batch(seed=seed), torch.Generator().manual_seed(seed))
        expected = 9 - num_visible_patches(9, ratio) if ratio else 0
        assert expected == masked_count(9, ratio)
        for mask_bl in (draw.mask1_bl, draw.mask2_bl):
            assert mask_bl.dtype == torch.bool and mask_bl.shape == (3, 9)
            assert mask_bl.sum(dim=1).tolist() == [expected] * 3


def test_symmetric_is_todays_mask_bit_for_bit_and_shared():
    masking = build_mask_strategy(TINY)
    for seed in (0, 1, 12345):
        draw = masking.draw(_batch(batch=5), torch.Generator().manual_seed(seed))
        today = random_patch_mask(5, 3, 3, 0.75, torch.Generator().manual_seed(seed))
        assert torch.equal(draw.mask1_bl, today) and draw.mask2_bl is draw.mask1_bl


def test_independent_draws_frame_1_as_symmetric_would_then_a_different_frame_2():
    masking = build_mask_strategy(dataclasses.replace(TINY, mask_strategy="independent", input_size=256))
    draw = masking.draw(_batch(batch=8, size=256), torch.Generator().manual_seed(3))
    assert torch.equal(draw.mask1_bl, random_patch_mask(8, 8, 8, 0.75, torch.Generator().manual_seed(3)))
    assert not torch.equal(draw.mask1_bl, draw.mask2_bl)
    again = masking.draw(_batch(batch=8, size=256), torch.Generator().manual_seed(3))
    assert torch.equal(again.mask2_bl, draw.mask2_bl)  # reproducible from the seed


def test_motion_masks_the_moving_cell_far_more_often_over_many_draws():
    masking = build_mask_strategy(dataclasses.replace(TINY, mask_strategy="motion", mask_ratio=0.5))
    motion_bl = torch.zeros(1, 9)
    motion_bl[0, 4] = 5.0  # one moving cell, the centre
    hits = torch.zeros(9)
    generator = torch.Generator().manual_seed(0)
    for _ in range(400):
        draw = masking.draw({**_batch(batch=1), MOTION_KEY: motion_bl}, generator)
        assert draw.mask2_bl is draw.mask1_bl  # same positions in both frames
        hits += draw.mask1_bl[0].float()
    static = torch.cat([hits[:4], hits[5:]]) / 400
    # Weights e^(1/0.25) = 54.6 against 1: the moving cell is drawn almost always.
    assert hits[4] / 400 > 0.95 and static.max() < 0.6


def test_motion_without_any_motion_is_uniform_and_temperature_flattens():
    cold = build_mask_strategy(dataclasses.replace(TINY, mask_strategy="motion", motion_temperature=0.05))
    hot = build_mask_strategy(dataclasses.replace(TINY, mask_strategy="motion", motion_temperature=100.0))
    ramp_bl = torch.arange(9.0)[None]
    assert torch.equal(cold.log_weights(torch.zeros(2, 9)), torch.zeros(2, 9))
    assert cold.log_weights(ramp_bl)[0, -1] > hot.log_weights(ramp_bl)[0, -1] * 100
    with pytest.raises(KeyError, match="--motion"):
        cold.draw({k: v for k, v in _batch().items() if k != MOTION_KEY}, torch.Generator().manual_seed(0))


def test_adaptive_sampler_learns_only_from_its_policy_loss():
    torch.manual_seed(0)
    model = VideoMAC(dataclasses.replace(TINY, mask_strategy="adaptive"))
    sampler = list(model.masking.parameters())
    assert sampler and all(any(p is q for q in model.parameters()) for p in sampler)
    assert {id(p) for g in model.param_groups(0.05) for p in g["params"]} >= {id(p) for p in sampler}
    batch = _batch()
    draw = model.masking.draw(batch, torch.Generator().manual_seed(0))
    assert not draw.mask1_bl.requires_grad and draw.log_prob_bl.requires_grad
    out = model(batch["frame1_bchw"], batch["frame2_bchw"], draw.mask1_bl, draw.mask2_bl)
    assert not out.error_online_bl.requires_grad
    out.loss.backward(retain_graph=True)
    assert all(p.grad is None for p in sampler)  # the model's loss does not reach the sampler
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.online.parameters())
    model.masking.policy_loss(draw, out.error_online_bl).backward()
    last = model.masking.sampler.net[-1]
    assert last.weight.grad.abs().sum() > 0  # the sampler's gradient is non-zero


def test_reinforce_moves_the_sampler_towards_the_cells_that_reconstruct_worst():
    masking = AdaptiveMask(dataclasses.replace(TINY, mask_strategy="adaptive", mask_ratio=0.5))
    optimizer = torch.optim.Adam(masking.parameters(), lr=1e-2)
    batch = _batch(batch=8)
    error_bl = torch.ones(8, 9)
    error_bl[:, 0] = 4.0  # cell 0 is the hardest to reconstruct
    first = masking.draw(batch, torch.Generator().manual_seed(0)).log_prob_bl.exp()[:, 0].mean().item()
    for step in range(40):
        draw = masking.draw(batch, torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        masking.policy_loss(draw, error_bl).backward()
        optimizer.step()
    last = masking.draw(batch, torch.Generator().manual_seed(99)).log_prob_bl.exp()[:, 0].mean().item()
    assert first == pytest.approx(1 / 9) and last > 2 * first
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in masking.parameters())


def test_independent_masks_give_each_branch_its_own_mask_and_consistency_their_overlap():
    torch.manual_seed(0)
    model = VideoMAC(dataclasses.replace(TINY, mask_strategy="independent", input_size=128)).eval()
    batch = _batch(batch=2, size=128)
    draw = model.masking.draw(batch, torch.Generator().manual_seed(1))
    out = model(batch["frame1_bchw"], batch["frame2_bchw"], draw.mask1_bl, draw.mask2_bl)
    both_bl = draw.mask1_bl & draw.mask2_bl
    expected = (out.pred_online - out.pred_target).square().mean(-1)[both_bl].mean()
    assert torch.allclose(out.loss_consistency, expected)
    target2 = model.targets(batch["frame2_bchw"])
    assert torch.allclose(out.loss_target, (out.pred_target - target2).square().mean(-1)[draw.mask2_bl].mean())
    # The target branch saw frame 2 through mask 2: its predictions equal a run with that mask alone.
    assert torch.equal(out.pred_target, model.target(batch["frame2_bchw"], draw.mask2_bl))


def test_config_refuses_unknown_strategies_and_bad_parameters():
    with pytest.raises(ValueError, match="choose from"):
        ModelConfig(mask_strategy="tube")
    with pytest.raises(ValueError, match="motion_temperature"):
        ModelConfig(motion_temperature=0)
    assert ModelConfig.from_dict(ModelConfig(mask_strategy="adaptive").to_dict()).mask_strategy == "adaptive"
