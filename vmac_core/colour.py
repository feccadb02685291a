"""CIE L*a*b* colour from sRGB, in torch, and the raw-pixel "encoder" label propagation uses as
its pixel floor (docs/evaluate.md, "The raw-pixel floor").

``srgb_to_lab`` is the textbook conversion (IEC 61966-2-1 sRGB, D65 white, CIE 1976 L*a*b*):

1. sRGB companding undone: c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
2. linear RGB to XYZ with the sRGB (D65) matrix, then divided by the D65 white (0.95047, 1, 1.08883);
3. f(t) = t ** (1/3) above (6/29)**3, else t / (3 (6/29)**2) + 4/29;
4. L* = 116 f(Y) - 16, a* = 500 (f(X) - f(Y)), b* = 200 (f(Y) - f(Z)).

White is (100, 0, 0), black (0, 0, 0); sRGB red (53.24, 80.09, 67.20) (tests hold these).

``PixelFeatures`` answers the encoder contract (``encoder(x_bchw, strides=...) -> {stride:
(B, 3, H/s, W/s)}``) so the evaluation runs it through the very same code as a network: it takes
the ImageNet-normalised input the evaluation feeds every encoder, undoes that normalisation, converts
each pixel to Lab, scales the channels as CRW's data loader does for its Lab models (OpenCV's 8-bit
Lab, L* x 255/100 and a*, b* + 128, then (x - 128) / 128: L* / 50.2 - 1, a* / 128, b* / 128) and
averages each channel over every s x s cell (``avg_pool2d``, kernel = stride = s): raw pixels
downsampled to the feature stride, as CRW's pixel baseline. No parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vmac_core.architectures import FEATURE_STRIDES

# IEC 61966-2-1: linear sRGB (D65) -> CIE XYZ, rows X, Y, Z.
SRGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
D65_WHITE = (0.95047, 1.0, 1.08883)
_DELTA = 6.0 / 29.0


def srgb_to_linear(rgb: Tensor) -> Tensor:
    """Undo sRGB companding of values in [0, 1] (any shape)."""
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055).clamp_min(0).pow(2.4))


def _lab_f(t: Tensor) -> Tensor:
    return torch.where(t > _DELTA**3, t.clamp_min(_DELTA**3).pow(1.0 / 3.0), t / (3 * _DELTA**2) + 4.0 / 29.0)


def srgb_to_lab(rgb_b3hw: Tensor) -> Tensor:
    """sRGB in [0, 1], float (B, 3, H, W) -> CIE L*a*b* (B, 3, H, W): L* in [0, 100], a* and b*
    roughly in [-128, 127]. Values outside [0, 1] are clamped first."""
    linear = srgb_to_linear(rgb_b3hw.clamp(0.0, 1.0))
    matrix = torch.tensor(SRGB_TO_XYZ, dtype=linear.dtype, device=linear.device)
    white = torch.tensor(D65_WHITE, dtype=linear.dtype, device=linear.device).view(1, 3, 1, 1)
    xyz = torch.einsum("kc,bchw->bkhw", matrix, linear) / white
    fx, fy, fz = _lab_f(xyz).unbind(1)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)


def crw_lab_scaling(lab_b3hw: Tensor) -> Tensor:
    """CIE Lab -> CRW's Lab input scaling: OpenCV's 8-bit Lab (L* x 255/100, a* + 128, b* + 128)
    normalised with mean 128 and std 128, i.e. (2.55 L* - 128) / 128, a* / 128, b* / 128."""
    scale = lab_b3hw.new_tensor((2.55 / 128.0, 1.0 / 128.0, 1.0 / 128.0)).view(1, 3, 1, 1)
    shift = lab_b3hw.new_tensor((-1.0, 0.0, 0.0)).view(1, 3, 1, 1)
    return lab_b3hw * scale + shift


class PixelFeatures(nn.Module):
    """The raw-pixel floor as an encoder: Lab colour averaged over each stride x stride cell.

    forward(x_bchw, active_b1hw=None, strides=(4, 8, 16, 32)) -> {stride: (B, 3, H/s, W/s)}
      x_bchw: ImageNet-normalised RGB (``(rgb - mean) / std``, the evaluation's input to every
        encoder), H and W multiples of every requested stride. ``active_b1hw`` must be None: the
        floor has no masked path.
    """

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.out_channels = dict.fromkeys(FEATURE_STRIDES, 3)

    def forward(self, x_bchw: Tensor, active_b1hw: Tensor | None = None, strides=FEATURE_STRIDES) -> dict[int, Tensor]:
        if active_b1hw is not None:
            raise ValueError("the raw-pixel floor takes no mask")
        lab = crw_lab_scaling(srgb_to_lab(x_bchw * self.std + self.mean))
        return {s: F.avg_pool2d(lab, kernel_size=s, stride=s) for s in strides}
