"""CIE Lab from sRGB against reference values, and the raw-pixel floor's pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vmac_core.augment import IMAGENET_MEAN, IMAGENET_STD
from vmac_core.colour import PixelFeatures, crw_lab_scaling, srgb_to_lab

# sRGB (0-255) -> CIE L*a*b* (D65), the standard reference values (e.g. Bruce Lindbloom's calculator).
REFERENCE = [
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((128, 128, 128), (53.5850, 0.0, 0.0)),
    ((10, 10, 10), (2.7418, 0.0, 0.0)),  # below the sRGB linear threshold and Lab's cube-root knee
]


@pytest.mark.parametrize(("rgb", "lab"), REFERENCE)
def test_srgb_to_lab_matches_reference_values(rgb, lab):
    pixel = torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1) / 255.0
    got = srgb_to_lab(pixel).view(3)
    torch.testing.assert_close(got, torch.tensor(lab, dtype=torch.float64), atol=2e-3, rtol=0)


def test_crw_scaling_is_opencv_8bit_lab_normalised_by_128():
    lab = torch.tensor([100.0, 20.0, -40.0]).view(1, 3, 1, 1)
    opencv = torch.tensor([100.0 * 255 / 100, 20.0 + 128, -40.0 + 128]).view(1, 3, 1, 1)
    torch.testing.assert_close(crw_lab_scaling(lab), (opencv - 128) / 128)


def test_pixel_features_are_the_cell_means_of_lab_of_the_unnormalised_input():
    generator = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 32, 48, generator=generator)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    floor = PixelFeatures(IMAGENET_MEAN, IMAGENET_STD)
    feats = floor((rgb - mean) / std, strides=(8, 16))
    assert set(feats) == {8, 16} and feats[8].shape == (2, 3, 4, 6) and feats[16].shape == (2, 3, 2, 3)
    expected = F.avg_pool2d(crw_lab_scaling(srgb_to_lab(rgb)), 8)
    torch.testing.assert_close(feats[8], expected, atol=1e-4, rtol=1e-4)
    # One cell by hand: the mean of its 64 pixels' scaled Lab.
    cell = crw_lab_scaling(srgb_to_lab(rgb[:1, :, 8:16, 16:24])).mean(dim=(2, 3)).view(3)
    torch.testing.assert_close(feats[8][0, :, 1, 2], cell, atol=1e-4, rtol=1e-4)
    assert floor.out_channels[8] == 3 and not list(floor.parameters())
    with pytest.raises(ValueError, match="no mask"):
        floor(rgb, active_b1hw=torch.ones(2, 1, 1, 1, dtype=torch.bool))
