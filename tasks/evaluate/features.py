"""Dense features of stored frames, computed lazily for propagation (docs/evaluate.md,
"Frames", "Padding" and "Features").

Frames stream from the store ``batch_size`` at a time, ImageNet-normalised at the stored
resolution (or resized, bilinear and antialiased), zero-padded bottom/right to a multiple of the
encoder stride (32); the encoder runs dense (no mask), the stage at ``stage_stride`` is read and,
when deeper than the propagation stride, upsampled bilinearly; the grid is cropped to the cells
that cover the frame (``vmac_core.label_grid.Geometry``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vmac_core.augment import IMAGENET_MEAN, IMAGENET_STD
from vmac_core.label_grid import Geometry


@dataclass
class Clock:
    """Seconds spent in feature extraction, accumulated across a lazily consumed generator."""

    features: float = 0.0


def frames_to_input(frames_bhwc: np.ndarray, geom: Geometry, device: torch.device) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float32 (B, 3, Hp, Wp) on ``device``, resized to
    ``geom.input`` when that differs from the stored size, then zero (= mean colour) padded."""
    x = torch.from_numpy(np.ascontiguousarray(frames_bhwc)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if geom.resized:
        x = F.interpolate(x, size=geom.input, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    x = (x - mean) / std
    (h, w), (hp, wp) = geom.input, geom.padded
    return F.pad(x, (0, wp - w, 0, hp - h))


def iter_features(encoder: torch.nn.Module, frames, geom: Geometry, stage_stride: int, batch_size: int,
                  device: torch.device, clock: Clock | None = None) -> Iterator[torch.Tensor]:
    """(C, h, w) features per frame of ``frames`` ((T, H, W, 3) uint8, a Zarr or numpy array),
    (h, w) = ``geom.feature``, on ``device``.

    Reads and encodes ``batch_size`` frames at a time, only when the consumer asks for them;
    adds the seconds spent to ``clock``.
    """
    hf, wf = geom.feature
    grid = (geom.padded[0] // geom.stride, geom.padded[1] // geom.stride)
    for start in range(0, frames.shape[0], batch_size):
        began = time.perf_counter()
        block = np.asarray(frames[start:start + batch_size])
        with torch.inference_mode():
            feats = encoder(frames_to_input(block, geom, device), strides=(stage_stride,))[stage_stride]
            if stage_stride != geom.stride:
                feats = F.interpolate(feats, size=grid, mode="bilinear", align_corners=False)
            feats = feats[:, :, :hf, :wf].contiguous()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if clock is not None:
            clock.features += time.perf_counter() - began
        yield from feats
