"""VideoMAC module: losses count masked patches only, consistency vanishes for equal predictions,
EMA follows its formula, parameter groups, target isolation, previews."""

import dataclasses

import pytest
import torch

from vmac_core.masking import (
    denormalize_patches,
    mask_to_active,
    masked_patch_mse,
    patchify,
    random_patch_mask,
    unpatchify,
)
from vmac_core.model_config import ModelConfig
from vmac_core.videomac import VideoMAC

CFG = ModelConfig(encoder="convnextv2_atto", input_size=64, decoder_dim=32)


def _batch(seed=0, b=2, size=64):
    g = torch.Generator().manual_seed(seed)
    f1 = torch.randn(b, 3, size, size, generator=g)
    f2 = torch.randn(b, 3, size, size, generator=g)
    mask_bl = random_patch_mask(b, size // 32, size // 32, 0.5, g)
    return f1, f2, mask_bl


def test_forward_returns_losses_and_predictions():
    model = VideoMAC(CFG)
    f1, f2, mask_bl = _batch()
    out = model(f1, f2, mask_bl)
    assert out.pred_online.shape == out.pred_target.shape == (2, 4, 32 * 32 * 3)
    assert out.loss.requires_grad and not out.pred_target.requires_grad and not out.loss_target.requires_grad
    expected = out.loss_online + out.loss_target + CFG.consistency_weight * out.loss_consistency
    torch.testing.assert_close(out.loss, expected)
    # At init the target is a copy of the online network: same frames give the same predictions.
    same = model(f1, f1, mask_bl)
    torch.testing.assert_close(same.pred_online, same.pred_target)


def test_reconstruction_losses_count_masked_patches_only():
    model = VideoMAC(CFG).eval()
    f1, f2, mask_bl = _batch(1)
    pixel_visible = mask_to_active(mask_bl, 2, 2, 64, 64)
    # Visible pixels change the encoder input, so only perturb the *loss targets*: with the
    # predictions held fixed, changing visible patches of the target images changes no loss.
    out = model(f1, f2, mask_bl)
    t1, t2 = model.targets(f1), model.targets(f2)
    g1 = model.targets(torch.where(pixel_visible, torch.randn_like(f1), f1))
    g2 = model.targets(torch.where(pixel_visible, torch.randn_like(f2), f2))
    torch.testing.assert_close(masked_patch_mse(out.pred_online, t1, mask_bl), out.loss_online)
    torch.testing.assert_close(masked_patch_mse(out.pred_online, g1, mask_bl), out.loss_online)
    torch.testing.assert_close(masked_patch_mse(out.pred_target, g2, mask_bl), out.loss_target)
    torch.testing.assert_close(masked_patch_mse(out.pred_target, t2, mask_bl), out.loss_target)
    # And the gradient of the online loss reaches no visible-patch prediction.
    pred = out.pred_online.detach().requires_grad_(True)
    masked_patch_mse(pred, t1, mask_bl).backward()
    assert not pred.grad[~mask_bl].any() and pred.grad[mask_bl].abs().sum() > 0


def test_consistency_loss_is_zero_when_predictions_are_equal():
    model = VideoMAC(CFG)
    f1, _, mask_bl = _batch(2)
    out = model(f1, f1, mask_bl)  # target == online at init, same frame
    assert out.loss_consistency.item() == pytest.approx(0.0, abs=1e-10)
    different = model(f1, torch.randn_like(f1), mask_bl)
    assert different.loss_consistency.item() > 0


def test_ema_update_matches_formula_and_target_gets_no_gradient():
    model = VideoMAC(CFG)
    opt = torch.optim.SGD(model.param_groups(0.0), lr=0.1)
    f1, f2, mask_bl = _batch(3)
    model(f1, f2, mask_bl).loss.backward()
    assert all(p.grad is None for p in model.target.parameters())
    assert all(not p.requires_grad for p in model.target.parameters())
    opt.step()
    before = [p.clone() for p in model.target.parameters()]
    online = [p.detach().clone() for p in model.online.parameters()]
    m = 0.9
    model.update_target(m)
    for t0, o, t1 in zip(before, online, model.target.parameters()):
        torch.testing.assert_close(t1, m * t0 + (1 - m) * o)
    model.update_target(0.0)  # momentum 0 copies the online weights
    for o, t in zip(model.online.parameters(), model.target.parameters()):
        assert torch.equal(o, t)


def test_param_groups_skip_norms_biases_grn_and_mask_token():
    model = VideoMAC(CFG)
    decay, no_decay = model.param_groups(0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    named = dict(model.online.named_parameters())
    ids = {id(p): n for n, p in named.items()}
    no_decay_names = {ids[id(p)] for p in no_decay["params"]}
    decay_names = {ids[id(p)] for p in decay["params"]}
    assert decay_names.isdisjoint(no_decay_names) and decay_names | no_decay_names == set(named)
    assert "decoder.mask_token" in no_decay_names
    assert "encoder.stages.0.0.grn.gamma" in no_decay_names and "encoder.norm0.weight" in no_decay_names
    assert "encoder.stages.0.0.pwconv1.bias" in no_decay_names
    assert "encoder.stages.0.0.pwconv1.weight" in decay_names and "decoder.pred.weight" in decay_names
    assert all(p.ndim > 1 for p in decay["params"])


def test_target_stays_in_eval_mode():
    model = VideoMAC(dataclasses.replace(CFG, drop_path_rate=0.1)).train()
    assert model.online.training and not model.target.training


def test_reconstruct_returns_preview_images():
    model = VideoMAC(CFG)
    f1, f2, mask_bl = _batch(4)
    rec = model.reconstruct(f1, f2, mask_bl)
    assert rec.online_bchw.shape == rec.target_bchw.shape == f1.shape
    assert rec.mask_b1hw.shape == (2, 1, 64, 64)
    visible = rec.mask_b1hw == 0
    assert torch.equal(rec.online_pasted_bchw.masked_select(visible), f1.masked_select(visible))
    assert torch.equal(rec.target_pasted_bchw.masked_select(visible), f2.masked_select(visible))
    # De-normalised with each frame's own patch statistics.
    with torch.no_grad():
        pred_blk = model.online(f1, mask_bl)
    expected = unpatchify(denormalize_patches(pred_blk, patchify(f1, 32)), 32, 2, 2)
    torch.testing.assert_close(rec.online_bchw, expected)


def test_ratio_zero_training_step_runs_dense_and_is_finite():
    model = VideoMAC(CFG)
    f1, f2, _ = _batch(5)
    out = model(f1, f2, torch.zeros(2, 4, dtype=torch.bool))
    assert out.loss.item() == 0.0  # no masked patch, nothing to reconstruct
    out.loss.backward()
