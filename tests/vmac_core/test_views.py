"""Crop-in-crop views: frame 2's crop lies inside frame 1's, its box in frame 1's view is where
frame 2's pixels are, and the consistency term compares aligned patches (vmac_core.augment,
vmac_core.views, vmac_core.videomac)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vmac_core.augment import (
    CROP_SCALE,
    PairCrop,
    ViewParams,
    crop_resize_pair,
    sample_crop_box,
    sample_pair_crop,
    view2_box,
)
from vmac_core.masking import normalize_patches, random_patch_mask
from vmac_core.model_config import ModelConfig
from vmac_core.videomac import VideoMAC
from vmac_core.views import align_patches, aligned_mask, view_grid

FULL_BOX = (0.0, 0.0, 1.0, 1.0)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("size, inner", list(itertools.product([(64, 96), (240, 427), (50, 50)],
                                                           [(0.1, 0.3), (0.3, 0.7), (0.5, 1.0)])))
def test_the_second_crop_lies_inside_the_first_with_the_asked_area(size, inner):
    height, width = size
    views = ViewParams(scale=(0.3, 1.0), inner_scale=inner)
    generator, fractions = _gen(0), []
    for _ in range(300):
        crop = sample_pair_crop(height, width, generator, views)
        top, left, h, w = crop.inner
        assert crop.top <= top and top + h <= crop.top + crop.height
        assert crop.left <= left and left + w <= crop.left + crop.width
        assert 0 < h and 0 < w
        fractions.append(h * w / (crop.height * crop.width))
    # Rounding to whole pixels moves a small box's area by a few percent; the fallback (no box fits
    # in 10 tries: the whole crop) is rare.
    inside = [inner[0] * 0.9 <= f <= inner[1] * 1.1 for f in fractions]
    assert sum(inside) >= 0.97 * len(fractions)
    assert max(fractions) - min(fractions) > 0.5 * (inner[1] - inner[0])  # the range is used, not one value


def test_shared_crops_draw_exactly_what_they_drew_before():
    # Without crop-in-crop, the generator is asked for the box, then the flip, and nothing else:
    # every preset without the lever draws the same crops (tiny-cpu's behaviour is unchanged).
    for seed in range(30):
        crop = sample_pair_crop(70, 110, _gen(seed))
        reference = _gen(seed)
        box = sample_crop_box(70, 110, reference, CROP_SCALE)
        flip = bool(torch.rand(1, generator=reference).item() < 0.5)
        assert crop == PairCrop(*box, flip) and crop.inner is None
        after = _gen(seed)
        sample_pair_crop(70, 110, after, ViewParams(scale=CROP_SCALE))
        assert torch.equal(after.get_state(), reference.get_state())
        assert view2_box(crop) == FULL_BOX


def test_the_crop_area_range_is_the_one_asked():
    generator = _gen(3)
    for _ in range(200):
        crop = sample_pair_crop(100, 100, generator, ViewParams(scale=(0.6, 0.8)))
        assert 0.55 <= crop.height * crop.width / 1e4 <= 0.85


def _smooth_frame(height: int, width: int) -> torch.Tensor:
    """uint8 (H, W, 3): low-frequency colour ramps, so resampling errors stay small."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [np.sin(x / 23.0) + np.cos(y / 17.0), np.sin((x + y) / 31.0), np.cos(x / 41.0 - y / 29.0)]
    image = np.stack([(c - c.min()) / (c.max() - c.min()) * 255 for c in channels], axis=-1)
    return torch.from_numpy(image.round().astype(np.uint8))


@pytest.mark.parametrize("flip", [False, True])
def test_view2_box_says_where_frame_2s_pixels_are_in_frame_1s_view(flip):
    # A static scene (frame 2 = frame 1): frame 1's view, resampled through the box, is frame 2's
    # view; through a wrong box (shifted, or the flip ignored) it is not.
    frame = _smooth_frame(180, 260)
    size = 64
    generator = _gen(1 + flip)
    for _ in range(5):
        drawn = sample_pair_crop(180, 260, generator, ViewParams(scale=(0.5, 1.0), inner_scale=(0.2, 0.5)))
        crop = PairCrop(drawn.top, drawn.left, drawn.height, drawn.width, flip, drawn.inner)
        views = crop_resize_pair(torch.stack([frame, frame]), crop, size).float()
        box = torch.tensor([view2_box(crop)])

        def error(box_b4):
            sampled = F.grid_sample(views[:1], view_grid(box_b4, size), mode="bilinear", align_corners=False)
            return (sampled - views[1:]).abs().mean().item()

        y0, x0, y1, x1 = box[0].tolist()
        mirrored = torch.tensor([[y0, 1 - x1, y1, 1 - x0]])
        shifted = box + 0.05
        assert error(box) < 2.0  # grey levels, of 0-255
        assert error(box) < 0.25 * min(error(mirrored), error(shifted))


def test_the_full_box_aligns_nothing():
    generator = _gen(5)
    patches_blk = torch.randn(3, 16, 4 * 4 * 3, generator=generator)
    full = torch.tensor([FULL_BOX] * 3)
    assert torch.allclose(align_patches(patches_blk, full, 4, normalise=False), patches_blk, atol=1e-5)
    assert torch.allclose(align_patches(patches_blk, full, 4, normalise=True), normalize_patches(patches_blk), atol=1e-4)
    mask_bl = random_patch_mask(3, 4, 4, 0.5, generator)
    assert torch.equal(aligned_mask(mask_bl, full, 4), mask_bl)


def test_aligned_mask_marks_the_patches_whose_every_pixel_is_masked_in_frame_1():
    # Oracle: pixel by pixel, in plain Python, each pixel centre of frame 2's view mapped into
    # frame 1's view and looked up in frame 1's mask.
    grid, patch = 4, 6
    size = grid * patch
    generator = _gen(7)
    for trial in range(20):
        mask_bl = random_patch_mask(1, grid, grid, 0.6, generator)
        y0, x0 = (torch.rand(2, generator=generator) * 0.5).tolist()
        side_y, side_x = (0.3 + torch.rand(2, generator=generator) * 0.4).tolist()
        box = (y0, x0, min(y0 + side_y, 1.0), min(x0 + side_x, 1.0))
        expected = []
        for row, col in itertools.product(range(grid), range(grid)):
            covered = []
            for i, j in itertools.product(range(row * patch, (row + 1) * patch), range(col * patch, (col + 1) * patch)):
                v = box[0] + (box[2] - box[0]) * (i + 0.5) / size  # fraction of frame 1's view
                u = box[1] + (box[3] - box[1]) * (j + 0.5) / size
                cell = min(int(math.floor(v * grid)), grid - 1) * grid + min(int(math.floor(u * grid)), grid - 1)
                covered.append(bool(mask_bl[0, cell]))
            expected.append(all(covered))
        assert aligned_mask(mask_bl, torch.tensor([box]), patch)[0].tolist() == expected, trial


def test_consistency_with_the_full_box_is_the_shared_crops():
    # Without per-patch normalisation, aligning through the full box changes nothing: the loss of
    # a crop-in-crop pair whose inner box is the whole crop is VideoMAC's.
    cfg = ModelConfig(encoder="convnextv2_atto", input_size=64, decoder_dim=32, norm_pix_loss=False)
    torch.manual_seed(0)
    model = VideoMAC(cfg)
    frame1, frame2 = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    mask_bl = random_patch_mask(2, 2, 2, 0.5, _gen(0))
    shared = model(frame1, frame2, mask_bl)
    boxed = model(frame1, frame2, mask_bl, view2_box_b4=torch.tensor([FULL_BOX] * 2))
    assert torch.allclose(shared.loss_consistency, boxed.loss_consistency, atol=1e-6)
    # A real inner box changes only the consistency term, which still reaches the online network.
    mask_bl = torch.tensor([[True, True, True, False]] * 2)  # frame 2's top-left patch lies in frame 1's first
    shared = model(frame1, frame2, mask_bl)
    inner = model(frame1, frame2, mask_bl, view2_box_b4=torch.tensor([[0.1, 0.2, 0.6, 0.7]] * 2))
    assert torch.equal(inner.loss_online, shared.loss_online) and torch.equal(inner.loss_target, shared.loss_target)
    assert not torch.allclose(inner.loss_consistency, shared.loss_consistency)
    inner.loss_consistency.backward()
    assert model.online.decoder.pred.weight.grad.abs().sum() > 0
