"""Scene assembly and rendering: a clip's frames and exact labels from its ``ClipSpec``.

Every frame composites, in painter's order, the camera's view of the background and then each
element's strokes; the topmost stroke sets a pixel's colour, object id and part class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vmac_synthetic.figure import Figure
from vmac_synthetic.motion import Camera
from vmac_synthetic.objects import RigidObject, build_crossers, build_objects
from vmac_synthetic.raster import Grid, to_uint8
from vmac_synthetic.spec import FIGURE_ACTIONS, JOINT_NAMES, ClipSpec


@dataclass(frozen=True, eq=False)
class SyntheticClip:
    """A rendered clip and its exact labels.

    frames_thwc   uint8 (T, H, W, 3) RGB.
    masks_thw     uint8 (T, H, W) object ids: 0 background, 1..n_objects, topmost object wins.
    parts_thw     uint8 (T, H, W) VIP part classes (``PART_CLASSES``) of the figure's visible
                  pixels, 0 elsewhere; None for "objects" clips.
    keypoints_tj3 float32 (T, 15, 3) in ``JOINT_NAMES`` order: x, y in pixels (0-based pixel
                  centres; may lie outside the frame), visible 1.0 when the joint is inside the
                  frame and the figure is the topmost object at its pixel, else 0.0; None for
                  "objects" clips.
    action        the figure's action (one of ``FIGURE_ACTIONS``), None for "objects" clips.
    """

    spec: ClipSpec
    frames_thwc: np.ndarray
    masks_thw: np.ndarray
    parts_thw: np.ndarray | None
    keypoints_tj3: np.ndarray | None
    action: str | None


def render_clip(spec: ClipSpec) -> SyntheticClip:
    """Render ``spec``: frames, object masks, and for "figure" clips part masks and keypoints."""
    scene = _build_scene(spec)
    grid = Grid(spec.height, spec.width)
    t_count, height, width = spec.frames, spec.height, spec.width
    frames_thwc = np.empty((t_count, height, width, 3), np.uint8)
    masks_thw = np.zeros((t_count, height, width), np.uint8)
    has_figure = scene.figure is not None
    parts_thw = np.zeros((t_count, height, width), np.uint8) if has_figure else None
    keypoints_tj3 = np.zeros((t_count, len(JOINT_NAMES), 3), np.float32) if has_figure else None
    parts_hw = np.zeros((height, width), np.uint8)
    for t in range(t_count):
        seconds = t / spec.fps
        rgb_hw3 = scene.camera.render(grid, seconds)
        ids_hw = masks_thw[t]
        parts_hw[:] = 0
        for obj_id, layer in scene.layers:
            for stroke in layer.strokes(grid, seconds):
                stroke.paint(rgb_hw3, ids_hw, parts_hw, obj_id)
        frames_thwc[t] = to_uint8(rgb_hw3)
        if has_figure:
            parts_thw[t] = parts_hw
            keypoints_tj3[t] = _keypoints(scene.figure.joints(seconds), grid, ids_hw, scene.figure_id)
    action = scene.figure.action if has_figure else None
    return SyntheticClip(spec, frames_thwc, masks_thw, parts_thw, keypoints_tj3, action)


def render_background(spec: ClipSpec) -> np.ndarray:
    """The background alone, uint8 (T, H, W, 3): ``render_clip(spec)`` before any object is drawn.

    Where ``masks_thw == 0`` the clip's frames equal these bytes exactly; tests use it to check
    that masks and pixels agree.
    """
    scene = _build_scene(spec)
    grid = Grid(spec.height, spec.width)
    out = np.empty((spec.frames, spec.height, spec.width, 3), np.uint8)
    for t in range(spec.frames):
        out[t] = to_uint8(scene.camera.render(grid, t / spec.fps))
    return out


@dataclass(frozen=True, eq=False)
class _Scene:
    """Camera (background), then ``layers`` as (object id, element) in painter's order."""

    camera: Camera
    layers: list[tuple[int, RigidObject | Figure]]
    figure: Figure | None
    figure_id: int


def _build_scene(spec: ClipSpec) -> _Scene:
    """Draw every scene parameter from the spec's seed, independently of the raster size."""
    rng = np.random.default_rng(spec.seed)
    duration = spec.frames / spec.fps
    camera = Camera.build(rng)
    if spec.kind == "objects":
        objects = build_objects(rng, spec.n_objects, duration)
        order = rng.permutation(len(objects))
        return _Scene(camera, [(int(k) + 1, objects[k]) for k in order], None, 0)
    action = FIGURE_ACTIONS[int(rng.integers(len(FIGURE_ACTIONS)))]
    figure = Figure.build(rng, action)
    extras = build_crossers(rng, spec.n_objects - 1, figure.root(0.5 * duration)[:2], duration)
    # id 2 crosses in front of the figure, the others pass behind it.
    behind = [(k + 2, obj) for k, obj in enumerate(extras) if k > 0]
    front = [(2, extras[0])] if extras else []
    return _Scene(camera, behind + [(1, figure)] + front, figure, 1)


def _keypoints(joints_j2: np.ndarray, grid: Grid, ids_hw: np.ndarray, figure_id: int) -> np.ndarray:
    """(15, 3) float32: pixel x, y and visibility (inside the raster and not occluded)."""
    xy = grid.to_pixels(joints_j2)
    col, row = np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    visible = np.zeros(len(xy), bool)
    visible[inside] = ids_hw[row[inside], col[inside]] == figure_id
    return np.concatenate([xy, visible[:, None]], axis=1).astype(np.float32)
