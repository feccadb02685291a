"""The articulated figure of "figure" clips: a 2-D puppet with JHMDB joints and VIP part classes.

Limbs are textured capsules and the head an ellipse; every stroke carries its part class
(``PART_CLASSES``), so part masks are exact. Positions are in scene units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vmac_synthetic.motion import SmoothPath, eval_path, smooth_path
from vmac_synthetic.raster import Grid, Stroke, rotate
from vmac_synthetic.spec import JOINT_NAMES, PART_CLASSES
from vmac_synthetic.textures import TEXTURE_KINDS, random_colours, sample_wrap, texture

# The figure's tiles (texels per side) and their density (texels per scene unit).
_FIGURE_TILE = 256
_FIGURE_DENSITY = 360.0


def _capsule(grid: Grid, a: np.ndarray, b: np.ndarray, radius: float, tile: np.ndarray,
             part: int, texture_offset: tuple[float, float]) -> Stroke | None:
    """A segment a→b thickened by ``radius`` (scene units), textured along/across the segment."""
    centre = 0.5 * (a + b)
    half = 0.5 * float(np.hypot(*(b - a)))
    window = grid.window(float(centre[0]), float(centre[1]), half + radius)
    if window is None:
        return None
    y0, y1, x0, x1 = window
    px, py = np.broadcast_arrays(grid.xs_w[None, x0:x1] - np.float32(a[0]), grid.ys_h[y0:y1, None] - np.float32(a[1]))
    ex, ey = np.float32(b[0] - a[0]), np.float32(b[1] - a[1])
    length2 = max(float(ex * ex + ey * ey), 1e-12)
    along = np.clip((px * ex + py * ey) / np.float32(length2), 0.0, 1.0)
    across = (px * ey - py * ex) / np.float32(math.sqrt(length2))
    dist2 = (px - along * ex) ** 2 + (py - along * ey) ** 2
    inside = dist2 <= np.float32(radius * radius)
    if not inside.any():
        return None
    density = np.float32(_FIGURE_DENSITY)
    # Texture coordinates ride on the limb: (distance along the axis, signed distance across).
    rgb = sample_wrap(tile, across[inside] * density + np.float32(texture_offset[1]),
                      along[inside] * np.float32(math.sqrt(length2)) * density + np.float32(texture_offset[0]))
    rim = dist2[inside] / np.float32(radius * radius)
    shade = (1.0 - 0.25 * rim * rim)[:, None]
    return Stroke(window, inside, (rgb * shade).astype(np.float32), part)


@dataclass(frozen=True, eq=False)
class Figure:
    """An articulated 2-D puppet: JHMDB skeleton, limbs as textured capsules, VIP part classes.

    Skeleton in figure units (1 ≈ ankle-to-head-top), y down, pelvis at the origin; the
    figure's right side is on the image's left (it faces the camera). Limb angles are
    in-plane, 0 = hanging straight down, positive swings the distal end toward +x.
    """

    action: str
    size: float
    start: tuple[float, float]
    velocity: float
    sway: SmoothPath
    lean: SmoothPath
    rate: float
    phase: float
    tiles: dict

    @staticmethod
    def build(rng: np.random.Generator, action: str) -> "Figure":
        """Draw the figure's clothes, size and motion for ``action`` (one of ``FIGURE_ACTIONS``)."""
        skin_hue = (0.03, 0.1)
        tiles = {
            "shirt": texture(rng, _FIGURE_TILE, TEXTURE_KINDS[int(rng.integers(1, 4))],
                             random_colours(rng, 3, (0.5, 1.0), (0.4, 1.0)), scale=float(rng.uniform(4, 9))),
            "pants": texture(rng, _FIGURE_TILE, "noise",
                             random_colours(rng, 3, (0.3, 0.8), (0.15, 0.5)), scale=float(rng.uniform(6, 12))),
            "skin": texture(rng, _FIGURE_TILE, "noise",
                            random_colours(rng, 2, (0.3, 0.55), (0.55, 0.95), hue=skin_hue), scale=4.0),
            "hair": texture(rng, _FIGURE_TILE, "stripes",
                            random_colours(rng, 2, (0.2, 0.7), (0.05, 0.35)), scale=24.0),
            "shoes": texture(rng, _FIGURE_TILE, "checker",
                              random_colours(rng, 2, (0.0, 0.5), (0.05, 0.6)), scale=8.0),
        }
        walking = action == "walk"
        return Figure(
            action=action,
            size=float(rng.uniform(0.7, 0.8)),
            start=(float(rng.uniform(-0.3, -0.15) if walking else rng.uniform(-0.15, 0.15)),
                   float(rng.uniform(0.06, 0.1))),
            velocity=float(rng.uniform(0.06, 0.12)) if walking else 0.0,
            sway=smooth_path(rng, 0.04, (2, 5)),
            lean=smooth_path(rng, 0.06, (2, 5), terms=1),
            rate=float(rng.uniform(0.8, 1.3)),
            phase=float(rng.uniform(0, 2 * math.pi)),
            tiles=tiles,
        )

    def _angles(self, seconds: float) -> dict:
        """Limb angles (radians) for the action; keys are limb names, R is the image-left side."""
        phi = 2 * math.pi * self.rate * seconds + self.phase
        if self.action == "walk":
            swing = 0.42 * math.sin(phi)
            return {"upper_R": -0.15 - 0.35 * swing, "fore_R": 0.25, "upper_L": 0.15 + 0.35 * swing, "fore_L": 0.25,
                    "thigh_R": -0.06 + swing, "shin_R": -0.5 * max(0.0, math.cos(phi)),
                    "thigh_L": 0.06 - swing, "shin_L": -0.5 * max(0.0, -math.cos(phi))}
        if self.action == "wave":
            return {"upper_R": -2.2 - 0.15 * math.sin(0.5 * phi), "fore_R": -0.3 + 0.6 * math.sin(1.6 * phi),
                    "upper_L": 0.18 + 0.08 * math.sin(phi), "fore_L": 0.15,
                    "thigh_R": -0.07 + 0.03 * math.sin(phi), "shin_R": 0.02,
                    "thigh_L": 0.07 + 0.03 * math.sin(phi), "shin_L": -0.02}
        open_ = 0.5 - 0.5 * math.cos(phi)  # jumping jacks: 0 closed, 1 open
        return {"upper_R": -(0.2 + 2.4 * open_), "fore_R": -0.2 * open_,
                "upper_L": 0.2 + 2.4 * open_, "fore_L": 0.2 * open_,
                "thigh_R": -(0.05 + 0.3 * open_), "shin_R": 0.05 * open_,
                "thigh_L": 0.05 + 0.3 * open_, "shin_L": -0.05 * open_}

    def root(self, seconds: float) -> tuple[float, float, float]:
        """Pelvis (x, y) in scene units and the whole-body lean angle."""
        x = self.start[0] + self.velocity * seconds + eval_path(self.sway, seconds)
        y = self.start[1]
        phi = 2 * math.pi * self.rate * seconds + self.phase
        if self.action == "walk":
            y -= 0.012 * abs(math.cos(phi))
        elif self.action == "jump":
            y -= 0.05 * abs(math.sin(phi))
        return x, y, eval_path(self.lean, seconds)

    def joints(self, seconds: float) -> np.ndarray:
        """(15, 2) joint positions in scene units, ``JOINT_NAMES`` order."""
        return self._skeleton(seconds)[0]

    def _skeleton(self, seconds: float) -> tuple[np.ndarray, dict]:
        """Joints (15, 2) in scene units and named extra points (feet, hands, head)."""
        a = self._angles(seconds)

        def direction(angle: float) -> np.ndarray:
            return np.array([math.sin(angle), math.cos(angle)])

        local = {
            "pelvis": np.array([0.0, 0.0]), "neck": np.array([0.0, -0.32]), "belly": np.array([0.0, -0.11]),
            "face": np.array([0.0, -0.415]),
            "right_shoulder": np.array([-0.1, -0.3]), "left_shoulder": np.array([0.1, -0.3]),
            "right_hip": np.array([-0.065, 0.0]), "left_hip": np.array([0.065, 0.0]),
        }
        for side, key in (("right", "R"), ("left", "L")):
            local[f"{side}_elbow"] = local[f"{side}_shoulder"] + 0.16 * direction(a[f"upper_{key}"])
            local[f"{side}_wrist"] = local[f"{side}_elbow"] + 0.15 * direction(a[f"upper_{key}"] + a[f"fore_{key}"])
            local[f"{side}_knee"] = local[f"{side}_hip"] + 0.24 * direction(a[f"thigh_{key}"])
            local[f"{side}_ankle"] = local[f"{side}_knee"] + 0.23 * direction(a[f"thigh_{key}"] + a[f"shin_{key}"])
            outward = -1.0 if side == "right" else 1.0
            local[f"{side}_toe"] = local[f"{side}_ankle"] + np.array([0.07 * outward, 0.015])
            local[f"{side}_hand"] = local[f"{side}_wrist"] + 0.03 * direction(a[f"upper_{key}"] + a[f"fore_{key}"])
        x, y, lean = self.root(seconds)
        c, s = math.cos(lean), math.sin(lean)
        world = {name: np.array([x + self.size * (c * p[0] - s * p[1]), y + self.size * (s * p[0] + c * p[1])])
                 for name, p in local.items()}
        return np.stack([world[name] for name in JOINT_NAMES]), world | {"lean": lean}

    def strokes(self, grid: Grid, seconds: float) -> list[Stroke]:
        """Back to front: legs, pelvis, torso, neck, arms, head."""
        _, w = self._skeleton(seconds)
        s = self.size
        t = self.tiles
        plan = []
        for side in ("right", "left"):
            leg_part = PART_CLASSES.index(f"{side}_leg")
            shoe_part = PART_CLASSES.index(f"{side}_shoe")
            plan += [(w[f"{side}_hip"], w[f"{side}_knee"], 0.055, t["pants"], PART_CLASSES.index("pants")),
                     (w[f"{side}_knee"], w[f"{side}_ankle"], 0.042, t["skin"], leg_part),
                     (w[f"{side}_ankle"], w[f"{side}_toe"], 0.032, t["shoes"], shoe_part)]
        torso_top = w["neck"] + 0.06 * s * np.array([-math.sin(w["lean"]), math.cos(w["lean"])])
        plan += [(w["right_hip"], w["left_hip"], 0.07, t["pants"], PART_CLASSES.index("pants")),
                 (torso_top, w["pelvis"] + 0.6 * (w["belly"] - w["pelvis"]), 0.1, t["shirt"], PART_CLASSES.index("upper_clothes")),
                 (w["neck"], 0.5 * (w["neck"] + w["face"]), 0.035, t["skin"], PART_CLASSES.index("torso_skin"))]
        for side in ("right", "left"):
            plan += [(w[f"{side}_shoulder"], w[f"{side}_elbow"], 0.04, t["shirt"], PART_CLASSES.index("upper_clothes")),
                     (w[f"{side}_elbow"], w[f"{side}_wrist"], 0.032, t["skin"], PART_CLASSES.index(f"{side}_arm")),
                     (w[f"{side}_wrist"], w[f"{side}_hand"], 0.036, t["skin"], PART_CLASSES.index(f"{side}_arm"))]
        out = []
        for index, (a, b, radius, tile, part) in enumerate(plan):
            offset = (37.0 * index, 53.0 * index)  # limbs sharing a tile should not look cloned
            stroke = _capsule(grid, a, b, radius * s, tile, part, offset)
            if stroke is not None:
                out.append(stroke)
        head = self._head(grid, w["face"], w["lean"])
        if head is not None:
            out.append(head)
        return out

    def _head(self, grid: Grid, centre: np.ndarray, lean: float) -> Stroke | None:
        """An ellipse: hair above a hairline, face below."""
        half_w, half_h = 0.065 * self.size, 0.082 * self.size
        window = grid.window(float(centre[0]), float(centre[1]), half_h)
        if window is None:
            return None
        y0, y1, x0, x1 = window
        ux, uy = rotate(*np.broadcast_arrays(grid.xs_w[None, x0:x1] - np.float32(centre[0]),
                                             grid.ys_h[y0:y1, None] - np.float32(centre[1])), -lean)
        inside = (ux / np.float32(half_w)) ** 2 + (uy / np.float32(half_h)) ** 2 <= 1.0
        if not inside.any():
            return None
        hair = (uy[inside] < -0.3 * half_h) | (np.abs(ux[inside]) > 0.85 * half_w) & (uy[inside] < 0.2 * half_h)
        density = np.float32(_FIGURE_DENSITY)
        ty, tx = uy[inside] * density, ux[inside] * density
        rgb = np.where(hair[:, None], sample_wrap(self.tiles["hair"], ty, tx), sample_wrap(self.tiles["skin"], ty + 91, tx + 17))
        part = np.where(hair, PART_CLASSES.index("hair"), PART_CLASSES.index("face")).astype(np.uint8)
        return Stroke(window, inside, rgb.astype(np.float32), part)

