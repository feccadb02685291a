"""Raster geometry and compositing: where each pixel samples the scene, and how shapes are painted.

Scene units and pixel centres are as in the package docstring: pixel (i, j) of an H×W raster
samples x = (j + 0.5 - W/2) / H, y = (i + 0.5 - H/2) / H.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class Grid:
    """Scene coordinates of an H×W raster's pixel centres: ``xs_w`` (W,), ``ys_h`` (H,)."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.xs_w = ((np.arange(width) + 0.5 - width / 2) / height).astype(np.float32)
        self.ys_h = ((np.arange(height) + 0.5 - height / 2) / height).astype(np.float32)

    def to_pixels(self, xy_n2: np.ndarray) -> np.ndarray:
        """Scene (N, 2) → pixel (N, 2) coordinates, pixel centres at integers."""
        scale = np.array([self.height, self.height])
        offset = np.array([self.width / 2 - 0.5, self.height / 2 - 0.5])
        return xy_n2 * scale + offset

    def window(self, cx: float, cy: float, radius: float) -> tuple[int, int, int, int] | None:
        """(y0, y1, x0, x1) pixel box covering the disc, clipped; None when off-raster."""
        (px, py), r = self.to_pixels(np.array([[cx, cy]]))[0], radius * self.height
        x0, x1 = max(0, math.floor(px - r)), min(self.width, math.ceil(px + r) + 1)
        y0, y1 = max(0, math.floor(py - r)), min(self.height, math.ceil(py + r) + 1)
        if x0 >= x1 or y0 >= y1:
            return None
        return y0, y1, x0, x1


@dataclass(frozen=True, eq=False)
class Stroke:
    """One opaque shape to composite: ``inside_hw`` within ``window``, colours of its pixels.

    ``rgb_n3`` float32 (N, 3) for the N True pixels of ``inside_hw`` in row-major order;
    ``part`` a VIP class for all of them, or uint8 (N,) per pixel.
    """

    window: tuple[int, int, int, int]
    inside_hw: np.ndarray
    rgb_n3: np.ndarray
    part: int | np.ndarray

    def paint(self, rgb_hw3: np.ndarray, ids_hw: np.ndarray, parts_hw: np.ndarray, obj_id: int) -> None:
        """Draw over whatever is there: painter's order is the occlusion order."""
        y0, y1, x0, x1 = self.window
        rgb_hw3[y0:y1, x0:x1][self.inside_hw] = self.rgb_n3
        ids_hw[y0:y1, x0:x1][self.inside_hw] = obj_id
        # A rigid object (part 0) covering the figure also erases the figure's part labels.
        parts_hw[y0:y1, x0:x1][self.inside_hw] = self.part


def to_uint8(rgb_hw3: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] (values outside are clipped) → uint8, rounding half up."""
    return (np.clip(rgb_hw3, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate points by ``angle`` radians (clockwise on screen, since y points down)."""
    c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    return c * x - s * y, s * x + c * y

