"""Rigid objects: textured shapes on smooth trajectories, and where a clip's objects start and go.

Positions and sizes are in scene units (1 = the frame height, origin at the frame centre, y down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vmac_synthetic.motion import SmoothPath, eval_path, smooth_path
from vmac_synthetic.raster import Grid, Stroke, rotate
from vmac_synthetic.textures import TEXTURE_KINDS, random_colours, sample_wrap, texture

# Layout happens on a fixed 16:9 stage (half-width in scene units), never on the raster's own
# aspect, so that rasters of nearly equal aspect (288×512, 480×854) render the same scene.
_STAGE_HALF_WIDTH = 8.0 / 9.0

# An object's tile (texels per side) and its density (texels per object radius).
_OBJECT_TILE = 256
_OBJECT_DENSITY = 96.0


@dataclass(frozen=True, eq=False)
class RigidObject:
    """A textured shape on a smooth trajectory, spinning and breathing in scale.

    Shape, in object-local units u (radius 1, after rotation): with q = (u_x, u_y / aspect),
    the pixel is inside when ‖q‖_p ≤ r(φ), r(φ) = (1 + Σ a_k cos(kφ + φ_k)) / (1 + Σ|a_k|) ≤ 1,
    φ = atan2(q_y, q_x): ellipses, superellipses (rounded boxes), blobs and stars.
    """

    tile: np.ndarray
    radius: float
    aspect: float
    power: float
    harmonics: tuple  # (orders, amplitudes, phases), each (m,)
    start: tuple[float, float]
    velocity: tuple[float, float]
    wander_x: SmoothPath
    wander_y: SmoothPath
    angle0: float
    spin: float
    wobble: SmoothPath
    breathe: SmoothPath
    texture_offset: tuple[float, float]

    @staticmethod
    def build(rng: np.random.Generator, start: tuple[float, float], velocity: tuple[float, float],
              radius: float, wander: float) -> "RigidObject":
        colours = random_colours(rng, int(rng.integers(2, 5)), saturation=(0.5, 1.0), value=(0.35, 1.0))
        kind = TEXTURE_KINDS[int(rng.integers(len(TEXTURE_KINDS)))]
        tile = texture(rng, _OBJECT_TILE, kind, colours, scale=float(rng.uniform(3, 8)))
        shape = rng.choice(["ellipse", "box", "blob", "star"])
        power, orders, amps = 2.0, np.zeros(0, int), np.zeros(0)
        if shape == "box":
            power = float(rng.uniform(3.0, 6.0))
        elif shape == "blob":
            orders = np.arange(2, 6)
            amps = rng.uniform(0.0, 0.18, 4) / np.sqrt(orders - 1)
        elif shape == "star":
            orders = np.array([int(rng.integers(4, 8))])
            amps = np.array([rng.uniform(0.25, 0.4)])
        return RigidObject(
            tile=tile,
            radius=radius,
            aspect=float(rng.uniform(0.55, 1.0)) if shape != "star" else 1.0,
            power=power,
            harmonics=(orders, amps, rng.uniform(0, 2 * math.pi, len(orders))),
            start=start,
            velocity=velocity,
            wander_x=smooth_path(rng, wander, (2.5, 7)),
            wander_y=smooth_path(rng, 0.6 * wander, (2.5, 7)),
            angle0=float(rng.uniform(0, 2 * math.pi)),
            spin=float(rng.uniform(-0.8, 0.8)),
            wobble=smooth_path(rng, 0.3, (2, 5), terms=1),
            breathe=smooth_path(rng, 0.15, (3, 8), terms=1),
            texture_offset=(float(rng.uniform(0, _OBJECT_TILE)), float(rng.uniform(0, _OBJECT_TILE))),
        )

    def pose(self, seconds: float) -> tuple[float, float, float, float]:
        """(centre x, centre y, angle, scale) at ``seconds``; paths start exactly at ``start``."""
        x = self.start[0] + self.velocity[0] * seconds + eval_path(self.wander_x, seconds) - eval_path(self.wander_x, 0.0)
        y = self.start[1] + self.velocity[1] * seconds + eval_path(self.wander_y, seconds) - eval_path(self.wander_y, 0.0)
        angle = self.angle0 + self.spin * seconds + eval_path(self.wobble, seconds)
        scale = math.exp(eval_path(self.breathe, seconds))
        return x, y, angle, scale

    def strokes(self, grid: Grid, seconds: float) -> list[Stroke]:
        """The object at ``seconds`` as one stroke (part class 0), or none when off-raster."""
        cx, cy, angle, scale = self.pose(seconds)
        size = self.radius * scale
        window = grid.window(cx, cy, size * math.sqrt(2.0))
        if window is None:
            return []
        y0, y1, x0, x1 = window
        dx, dy = np.broadcast_arrays((grid.xs_w[None, x0:x1] - np.float32(cx)) / np.float32(size),
                                     (grid.ys_h[y0:y1, None] - np.float32(cy)) / np.float32(size))
        ux, uy = rotate(dx, dy, -angle)
        qx, qy = ux, uy / np.float32(self.aspect)
        norm = (np.abs(qx) ** self.power + np.abs(qy) ** self.power) ** (1.0 / self.power)
        orders, amps, phases = self.harmonics
        bound = np.ones_like(norm)
        if len(orders):
            phi = np.arctan2(qy, qx)
            bound = 1.0 + sum(np.float32(a) * np.cos(k * phi + np.float32(p)) for k, a, p in zip(orders, amps, phases))
            bound = bound / np.float32(1.0 + np.sum(np.abs(amps)))
        inside = norm <= bound
        if not inside.any():
            return []
        density = np.float32(_OBJECT_DENSITY)
        rgb = sample_wrap(self.tile, uy[inside] * density + np.float32(self.texture_offset[1]),
                          ux[inside] * density + np.float32(self.texture_offset[0]))
        # Light from the upper left in screen space and a darkened rim read as a rounded solid.
        light = -0.55 * dx[inside] - 0.65 * dy[inside]
        rim = (norm[inside] / bound[inside]) ** 4
        shade = (1.0 + 0.18 * light - 0.3 * rim)[:, None]
        return [Stroke(window, inside, (rgb * shade).astype(np.float32), 0)]


def build_objects(rng: np.random.Generator, count: int, duration: float) -> list[RigidObject]:
    """``count`` objects, apart and inside the 16:9 stage in the first frame (DAVIS needs every
    object in frame 0; a narrower raster crops the stage); with two or more, one drifts out of
    view around 70% of the clip."""
    radii = rng.uniform(0.12, 0.22, count) * (1.0 if count <= 2 else 0.8)
    starts: list[tuple[float, float]] = []
    for radius in radii:
        best, best_gap = None, -np.inf
        for _ in range(50):  # rejection sampling with a cap; keeps the most separated candidate
            x = rng.uniform(-_STAGE_HALF_WIDTH + 0.25, _STAGE_HALF_WIDTH - 0.25)
            y = rng.uniform(-0.5 + 0.2, 0.5 - 0.2)
            gap = min((math.hypot(x - sx, y - sy) - radius - r for (sx, sy), r in zip(starts, radii)), default=1.0)
            if gap > best_gap:
                best, best_gap = (x, y), gap
            if gap > 0.02:
                break
        starts.append(best)
    leaver = int(rng.integers(count)) if count >= 2 else -1
    objects = []
    for k, (start, radius) in enumerate(zip(starts, radii)):
        if k == leaver:
            edge = math.copysign(_STAGE_HALF_WIDTH + 2 * radius, start[0] if start[0] != 0 else 1.0)
            velocity = ((edge - start[0]) / (0.7 * duration), float(rng.uniform(-0.05, 0.05)))
            wander = 0.03
        else:
            heading = rng.uniform(0, 2 * math.pi)
            speed = rng.uniform(0.02, 0.08)
            velocity = (speed * math.cos(heading), 0.5 * speed * math.sin(heading))
            wander = 0.14
        objects.append(RigidObject.build(rng, start, velocity, float(radius), wander))
    return objects


def build_crossers(rng: np.random.Generator, count: int, meet: tuple[float, float],
                   duration: float) -> list[RigidObject]:
    """Rigid objects of a figure clip: the first crosses the figure mid-clip, the rest roam behind.

    ``meet`` is the figure's pelvis (scene units) at mid-clip, where the first one crosses it.
    """
    objects = []
    for k in range(count):
        radius = float(rng.uniform(0.08, 0.14))
        if k == 0:
            side = 1.0 if rng.uniform() < 0.5 else -1.0
            start = (meet[0] + side * 0.6, meet[1] - 0.2 + float(rng.uniform(-0.05, 0.05)))
            velocity = (-side * 0.6 / (0.5 * duration), 0.0)
            wander = 0.02
        else:
            start = (float(rng.uniform(-0.7, 0.7)), float(rng.uniform(-0.3, 0.3)))
            heading = rng.uniform(0, 2 * math.pi)
            velocity = (0.06 * math.cos(heading), 0.03 * math.sin(heading))
            wander = 0.12
        objects.append(RigidObject.build(rng, start, velocity, radius, wander))
    return objects

