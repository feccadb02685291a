"""Motion over time: smooth random wanders, and the camera that pans, zooms and rolls over the background.

Time is in seconds (frame t is at t / fps); speeds are per second, so fps changes sampling only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vmac_synthetic.raster import Grid, rotate
from vmac_synthetic.textures import TEXTURE_KINDS, random_colours, sample_wrap, texture

# (amplitudes, angular frequencies in rad/s, phases), each (terms,): a sum of sinusoids.
SmoothPath = tuple[np.ndarray, np.ndarray, np.ndarray]

# The background tile (texels per side) and its density (texels per scene unit).
_BACKGROUND_TILE = 1024
_BACKGROUND_DENSITY = 320.0


def smooth_path(rng: np.random.Generator, amplitude: float, period: tuple[float, float],
                terms: int = 2) -> SmoothPath:
    """A random smooth 1-D wander: term k has amplitude up to ``amplitude / k`` (scene units or
    radians) and a period drawn from ``period`` (seconds)."""
    return (rng.uniform(0.3, 1.0, terms) * amplitude / np.arange(1, terms + 1),
            2 * math.pi / rng.uniform(*period, terms),
            rng.uniform(0, 2 * math.pi, terms))


def eval_path(path: SmoothPath, seconds: float) -> float:
    """The wander's value at ``seconds``: Σ_k a_k sin(ω_k t + φ_k)."""
    amps, omegas, phases = path
    return float(np.sum(amps * np.sin(omegas * seconds + phases)))


@dataclass(frozen=True, eq=False)
class Camera:
    """A camera over the infinite periodic background: pan, zoom (dolly + breathing), roll."""

    tile: np.ndarray
    origin: tuple[float, float]
    velocity: tuple[float, float]
    pan_x: SmoothPath
    pan_y: SmoothPath
    zoom_rate: float
    zoom: SmoothPath
    roll: SmoothPath

    @staticmethod
    def build(rng: np.random.Generator) -> "Camera":
        colours = random_colours(rng, int(rng.integers(3, 5)), saturation=(0.15, 0.6), value=(0.2, 0.85))
        kind = TEXTURE_KINDS[int(rng.integers(len(TEXTURE_KINDS)))]
        tile = texture(rng, _BACKGROUND_TILE, kind, colours, scale=float(rng.uniform(6, 16)), grain=0.05)
        speed, heading = rng.uniform(0.04, 0.22), rng.uniform(0, 2 * math.pi)
        return Camera(
            tile=tile,
            origin=(float(rng.uniform(0, 4)), float(rng.uniform(0, 4))),
            velocity=(speed * math.cos(heading), 0.5 * speed * math.sin(heading)),
            pan_x=smooth_path(rng, 0.08, (3, 8)),
            pan_y=smooth_path(rng, 0.04, (3, 8)),
            zoom_rate=float(rng.uniform(-0.06, 0.06)),
            zoom=smooth_path(rng, 0.10, (4, 10), terms=1),
            roll=smooth_path(rng, 0.04, (5, 12), terms=1),
        )

    def render(self, grid: Grid, seconds: float) -> np.ndarray:
        """Background (H, W, 3) float32: screen point s sees world point centre + R(roll) s / zoom."""
        cx = self.origin[0] + self.velocity[0] * seconds + eval_path(self.pan_x, seconds)
        cy = self.origin[1] + self.velocity[1] * seconds + eval_path(self.pan_y, seconds)
        zoom = math.exp(self.zoom_rate * seconds + eval_path(self.zoom, seconds))
        wx, wy = rotate(grid.xs_w[None, :] / np.float32(zoom), grid.ys_h[:, None] / np.float32(zoom),
                        eval_path(self.roll, seconds))
        density = np.float32(_BACKGROUND_DENSITY)
        return sample_wrap(self.tile, (wy + np.float32(cy)) * density, (wx + np.float32(cx)) * density)

