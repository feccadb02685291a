import pytest
import torch

from vmac_core.masking import (
    denormalize_patches,
    mask_to_active,
    masked_patch_mse,
    normalize_patches,
    num_visible_patches,
    patchify,
    random_patch_mask,
    unpatchify,
)


def test_random_patch_mask_counts_dtype_and_convention():
    mask_bl = random_patch_mask(4, 7, 7, 0.75, torch.Generator().manual_seed(1))
    assert mask_bl.dtype == torch.bool and mask_bl.shape == (4, 49)
    # True = masked: 0.75 of 49 patches removed, 12 visible, in every sample.
    assert (mask_bl.sum(1) == 49 - num_visible_patches(49, 0.75)).all()
    assert num_visible_patches(49, 0.75) == 12
    # Different samples get different masks.
    assert not torch.equal(mask_bl[0], mask_bl[1])


def test_random_patch_mask_is_reproducible_with_generator():
    a = random_patch_mask(3, 4, 5, 0.5, torch.Generator().manual_seed(7))
    b = random_patch_mask(3, 4, 5, 0.5, torch.Generator().manual_seed(7))
    c = random_patch_mask(3, 4, 5, 0.5, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_ratio_zero_masks_nothing_and_ratio_one_is_rejected():
    assert not random_patch_mask(2, 3, 3, 0.0, torch.Generator().manual_seed(0)).any()
    with pytest.raises(ValueError):
        random_patch_mask(2, 3, 3, 1.0, None)


def test_mask_to_active_upsamples_complement():
    mask_bl = torch.tensor([[True, False, False, True]])
    active = mask_to_active(mask_bl, 2, 2, 4, 6)
    assert active.shape == (1, 1, 4, 6) and active.dtype == torch.bool
    expected = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(active[0, 0], expected)
    with pytest.raises(ValueError):
        mask_to_active(mask_bl, 2, 2, 5, 6)


def test_patchify_roundtrip_and_order():
    images = torch.randn(2, 3, 64, 96)
    patches = patchify(images, 32)
    assert patches.shape == (2, 6, 32 * 32 * 3)
    assert torch.equal(unpatchify(patches, 32, 2, 3), images)
    # Patch 4 is row 1, column 1; values are ordered (p, q, c).
    assert torch.equal(patches[1, 4].view(32, 32, 3), images[1, :, 32:64, 32:64].permute(1, 2, 0))


def test_normalized_targets_have_zero_mean_unit_variance_and_invert():
    patches = torch.randn(2, 5, 48) * 3 + 1
    normed = normalize_patches(patches)
    assert torch.allclose(normed.mean(-1), torch.zeros(2, 5), atol=1e-5)
    assert torch.allclose(normed.var(-1), torch.ones(2, 5), atol=1e-4)
    assert torch.allclose(denormalize_patches(normed, patches), patches, atol=1e-5)


def test_masked_loss_counts_masked_patches_only():
    pred = torch.randn(2, 4, 12)
    target = torch.randn(2, 4, 12)
    mask_bl = torch.tensor([[True, False, True, False], [False, False, True, False]])
    loss = masked_patch_mse(pred, target, mask_bl)
    # Changing predictions at visible patches changes nothing.
    pred_changed = torch.where(mask_bl.unsqueeze(-1), pred, torch.randn_like(pred))
    assert torch.equal(masked_patch_mse(pred_changed, target, mask_bl), loss)
    expected = (pred - target).square().mean(-1)[mask_bl].mean()
    assert torch.allclose(loss, expected)
    # No masked patch: zero, not NaN.
    assert masked_patch_mse(pred, target, torch.zeros_like(mask_bl)).item() == 0.0
