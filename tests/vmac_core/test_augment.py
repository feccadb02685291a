"""The VideoMAC pair augmentation: one crop and one flip shared by both frames, then resize and
ImageNet normalisation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from vmac_core.augment import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PairCrop,
    augment_pair,
    augment_pair_batch,
    crop_resize_pair,
    sample_crop_box,
    sample_pair_crop,
)


def _frame(height=64, width=96, seed=0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_identical_frames_give_identical_outputs():
    frame = _frame()
    for seed in range(20):
        out_2chw = augment_pair(torch.stack([frame, frame]), 32, _gen(seed))
        assert out_2chw.shape == (2, 3, 32, 32) and out_2chw.dtype == torch.float32
        assert torch.equal(out_2chw[0], out_2chw[1])


@pytest.mark.parametrize("flip", [False, True])
def test_a_shifted_frame_stays_shifted_by_the_same_amount(flip):
    # frame2 is frame1 moved left by 5 px. With one crop for both frames (and an identity
    # resize: output size = crop size) the outputs are each other shifted by exactly 5 px,
    # to the other side when the shared flip mirrors both.
    shift = 5
    frame1 = _frame(48, 80)
    frame2 = torch.roll(frame1, -shift, dims=1)
    crop = PairCrop(top=6, left=10, height=30, width=30, flip=flip)
    out_2chw = crop_resize_pair(torch.stack([frame1, frame2]), crop, 30)
    if flip:
        assert torch.equal(out_2chw[1][..., shift:], out_2chw[0][..., :-shift])
    else:
        assert torch.equal(out_2chw[1][..., :-shift], out_2chw[0][..., shift:])
    assert torch.equal(out_2chw[0].permute(1, 2, 0), (frame1[6:36, 10:40].flip(1) if flip else frame1[6:36, 10:40]))


def test_each_frame_gets_what_it_would_get_alone_with_the_same_crop():
    frame1, frame2 = _frame(seed=1), _frame(seed=2)
    for seed in range(10):
        pair = augment_pair(torch.stack([frame1, frame2]), 40, _gen(seed))
        first = augment_pair(torch.stack([frame1, frame1]), 40, _gen(seed))
        second = augment_pair(torch.stack([frame2, frame2]), 40, _gen(seed))
        assert torch.equal(pair[0], first[0]) and torch.equal(pair[1], second[0])


def test_crop_parameters_stay_in_range():
    height, width = 120, 200
    generator = _gen(0)
    crops = [sample_pair_crop(height, width, generator) for _ in range(2000)]
    for crop in crops:
        assert 0 <= crop.top and crop.top + crop.height <= height
        assert 0 <= crop.left and crop.left + crop.width <= width
        area = crop.height * crop.width / (height * width)
        ratio = crop.width / crop.height
        # Rounding box sides to whole pixels moves area and ratio slightly past the ranges.
        assert 0.2 * 0.9 <= area <= 1.0
        assert 0.75 * 0.95 <= ratio <= 4 / 3 * 1.05
    areas = [c.height * c.width / (height * width) for c in crops]
    # The whole scale range is used, up to the largest box of ratio ≤ 4/3 (120x160: 0.8).
    assert min(areas) < 0.25 and max(areas) == 0.8
    flips = sum(c.flip for c in crops) / len(crops)
    assert 0.45 < flips < 0.55


def test_fallback_is_torchvisions_centre_crop():
    # 10x1000: no box of ≥ 20% area with ratio ≤ 4/3 fits in 10 rows, so all 10 tries fail and
    # the whole height is taken with the widest allowed ratio, centred.
    assert sample_crop_box(10, 1000, _gen(0)) == (0, (1000 - 13) // 2, 10, 13)
    assert sample_crop_box(1000, 10, _gen(0)) == ((1000 - 13) // 2, 0, 13, 10)


def test_same_generator_seed_same_output_and_different_seed_differs():
    pair = torch.stack([_frame(seed=3), _frame(seed=4)])
    assert torch.equal(augment_pair(pair, 32, _gen(7)), augment_pair(pair, 32, _gen(7)))
    assert not torch.equal(augment_pair(pair, 32, _gen(7)), augment_pair(pair, 32, _gen(8)))


def test_normalisation_is_imagenet_statistics_last():
    value = torch.tensor([10, 128, 250], dtype=torch.uint8)
    frame = value.view(1, 1, 3).expand(50, 70, 3).contiguous()
    out_2chw = augment_pair(torch.stack([frame, frame]), 24, _gen(0))
    for channel in range(3):
        expected = (value[channel].item() / 255 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
        assert torch.allclose(out_2chw[:, channel], torch.full_like(out_2chw[:, channel], expected), atol=1e-5)


def test_resize_is_bicubic_on_uint8_and_close_to_float():
    frame = _frame(64, 96)
    crop = PairCrop(4, 8, 50, 70, flip=False)
    resized_2chw = crop_resize_pair(torch.stack([frame, frame]), crop, 33)
    assert resized_2chw.dtype == torch.uint8 and resized_2chw.shape == (2, 3, 33, 33)
    reference = torch.nn.functional.interpolate(
        frame[4:54, 8:78].permute(2, 0, 1)[None].float(), size=(33, 33), mode="bicubic", antialias=True)
    assert (resized_2chw[0].float() - reference[0].clamp(0, 255).round()).abs().max() <= 1


def test_batch_equals_pair_by_pair_and_takes_mixed_sizes():
    pairs = [torch.stack([_frame(40, 60, s), _frame(40, 60, s + 1)]) for s in range(3)]
    pairs.append(torch.stack([_frame(30, 90, 9), _frame(30, 90, 10)]))
    frame1_bchw, frame2_bchw = augment_pair_batch(pairs, 28, _gen(5))
    assert frame1_bchw.shape == frame2_bchw.shape == (4, 3, 28, 28)
    assert frame1_bchw.is_contiguous() and frame2_bchw.is_contiguous()
    generator = _gen(5)
    for index, pair in enumerate(pairs):
        expected_2chw = augment_pair(pair, 28, generator)
        assert torch.equal(frame1_bchw[index], expected_2chw[0]) and torch.equal(frame2_bchw[index], expected_2chw[1])


def test_rejects_non_uint8_or_misshaped_pairs():
    with pytest.raises(ValueError):
        augment_pair(torch.zeros(2, 10, 10, 3), 8, _gen(0))
    with pytest.raises(ValueError):
        augment_pair(torch.zeros(3, 10, 10, 3, dtype=torch.uint8), 8, _gen(0))


def test_imports_neither_torchvision_nor_io_libraries():
    code = ("import sys, vmac_core.augment; "
            "bad = [m for m in ('torchvision', 'zarr', 'PIL', 'fsspec', 'prefect') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    subprocess.run([sys.executable, "-c", code], check=True)
