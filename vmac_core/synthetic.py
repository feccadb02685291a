"""Procedural video scenes with exact labels: the renderer behind the embedded sample.

Pure numpy, no file I/O (``tasks/sample.py`` writes the files). A clip is textured rigid objects
moving over a textured background seen by a panning, zooming, slightly rolling camera; a
"figure" clip adds an articulated puppet with JHMDB keypoints and VIP part classes.

Conventions
- Scene units: origin at the frame centre, x right, y down, 1 unit = the frame height. Pixel
  (i, j) of an H×W raster samples the scene at its centre, x = (j + 0.5 - W/2) / H,
  y = (i + 0.5 - H/2) / H. Every scene parameter is drawn in these units before the raster
  size is looked at, so one spec rendered at another size of the same aspect (the DAVIS 480p
  export) is the same scene at another resolution, and a narrower aspect is a centre crop.
- Time: frame t is at t / fps seconds; speeds are per second, so fps changes sampling only.
- Keypoints: pixel coordinates with pixel (i, j)'s centre at (x=j, y=i), i.e. 0-based.
- Same spec → byte-identical arrays: one ``np.random.default_rng(spec.seed)`` stream, consumed
  in a fixed order, and only deterministic numpy operations (on one machine; libm ``sin`` may
  differ in the last ulp across CPUs, which can flip a hard edge pixel).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

# Bump whenever a change alters any rendered byte for an unchanged spec.
GENERATOR_VERSION = 1

# JHMDB's 15 joints, in its pos_img order.
JOINT_NAMES = (
    "neck", "belly", "face",
    "right_shoulder", "left_shoulder", "right_hip", "left_hip",
    "right_elbow", "left_elbow", "right_knee", "left_knee",
    "right_wrist", "left_wrist", "right_ankle", "left_ankle",
)

# VIP / LIP part classes; the index is the id stored in part masks (0 = background).
PART_CLASSES = (
    "background", "hat", "hair", "glove", "sunglasses", "upper_clothes", "dress", "coat",
    "socks", "pants", "torso_skin", "scarf", "skirt", "face", "left_arm", "right_arm",
    "left_leg", "right_leg", "left_shoe", "right_shoe",
)

# What a figure clip's puppet does; the name is also the JHMDB action folder.
FIGURE_ACTIONS = ("walk", "wave", "jump")

CLIP_KINDS = ("objects", "figure")

# Layout happens on a fixed 16:9 stage (half-width in scene units), never on the raster's own
# aspect, so that rasters of nearly equal aspect (288×512, 480×854) render the same scene.
_STAGE_HALF_WIDTH = 8.0 / 9.0

# Texture tiles are periodic and sampled with wrap-around; sizes are powers of two so that the
# wrap is a bit mask. Densities are texels per scene unit (per object radius for objects).
_BACKGROUND_TILE = 1024
_BACKGROUND_DENSITY = 320.0
_OBJECT_TILE = 256
_OBJECT_DENSITY = 96.0
_FIGURE_TILE = 256
_FIGURE_DENSITY = 360.0


@dataclass(frozen=True)
class ClipSpec:
    """Everything that determines a clip: same spec, same bytes.

    ``kind`` "objects": ``n_objects`` rigid textured objects (ids 1..n_objects).
    ``kind`` "figure": an articulated figure (id 1) plus ``n_objects - 1`` rigid objects
    (ids 2..n_objects; id 2 crosses in front of the figure, the rest pass behind).
    """

    name: str
    height: int
    width: int
    frames: int
    fps: float
    kind: str
    n_objects: int
    seed: int

    def __post_init__(self) -> None:
        if self.kind not in CLIP_KINDS:
            raise ValueError(f"kind must be one of {CLIP_KINDS}, got {self.kind!r}")
        if self.height < 8 or self.width < 8 or self.frames < 1 or self.fps <= 0:
            raise ValueError(f"degenerate clip size: {self}")
        lowest = 1 if self.kind == "figure" else 0
        if not lowest <= self.n_objects <= 255:
            raise ValueError(f"n_objects must be in [{lowest}, 255] for kind {self.kind!r}")


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


def default_sample_specs(seed: int, small: bool = False) -> list[ClipSpec]:
    """The embedded sample's clips for ``seed``.

    Default: 8 clips (6 "objects", 2 "figure"), 64–128 frames, short side 256–360 px.
    ``small``: 4 clips (3 "objects", 1 "figure"), 32 frames at 128×224, for fast tests.
    The first two "objects" clips and the first "figure" clip are the ones the sample exports
    to the DAVIS, VIP and JHMDB layouts. Clip seeds derive from (seed, clip index).
    """
    if small:
        table = [
            ("objects-01", 128, 224, 32, 24.0, "objects", 3),
            ("objects-02", 128, 224, 32, 25.0, "objects", 2),
            ("objects-03", 128, 224, 32, 30.0, "objects", 4),
            ("figure-01", 128, 224, 32, 24.0, "figure", 2),
        ]
    else:
        table = [
            ("objects-01", 288, 512, 64, 24.0, "objects", 3),
            ("objects-02", 288, 512, 64, 25.0, "objects", 2),
            ("objects-03", 288, 512, 112, 30.0, "objects", 4),
            ("objects-04", 360, 640, 64, 24.0, "objects", 1),
            ("objects-05", 256, 320, 96, 30.0, "objects", 3),
            ("objects-06", 288, 512, 128, 25.0, "objects", 2),
            ("figure-01", 288, 512, 96, 24.0, "figure", 2),
            ("figure-02", 288, 512, 80, 30.0, "figure", 3),
        ]
    return [
        ClipSpec(name, height, width, frames, fps, kind, n_objects, _clip_seed(seed, index))
        for index, (name, height, width, frames, fps, kind, n_objects) in enumerate(table)
    ]


def _clip_seed(seed: int, index: int) -> int:
    """A 31-bit seed for clip ``index`` of sample ``seed``, independent across clips."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] >> 1)


def render_clip(spec: ClipSpec) -> SyntheticClip:
    """Render ``spec``: frames, object masks, and for "figure" clips part masks and keypoints."""
    scene = _build_scene(spec)
    grid = _Grid(spec.height, spec.width)
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
        frames_thwc[t] = _to_uint8(rgb_hw3)
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
    grid = _Grid(spec.height, spec.width)
    out = np.empty((spec.frames, spec.height, spec.width, 3), np.uint8)
    for t in range(spec.frames):
        out[t] = _to_uint8(scene.camera.render(grid, t / spec.fps))
    return out


# ---------------------------------------------------------------------------------------------
# Raster geometry and compositing


class _Grid:
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
class _Stroke:
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


def _to_uint8(rgb_hw3: np.ndarray) -> np.ndarray:
    return (np.clip(rgb_hw3, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotate points by ``angle`` radians (clockwise on screen, since y points down)."""
    c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    return c * x - s * y, s * x + c * y


# ---------------------------------------------------------------------------------------------
# Textures: periodic channel-planar (3, n, n) float32 tiles in [0, 1]


def _random_colours(rng: np.random.Generator, count: int, saturation: tuple[float, float],
                    value: tuple[float, float], hue: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """(count, 3) float32 RGB palette. Hues step around the wheel from a random start, so a
    full-range palette is never monotone; a narrow ``hue`` range (skin) samples within it."""
    h = rng.uniform(*hue)
    colours = []
    for _ in range(count):
        colours.append(colorsys.hsv_to_rgb(h % 1.0, rng.uniform(*saturation), rng.uniform(*value)))
        h = h + rng.uniform(0.15, 0.45) if hue == (0.0, 1.0) else rng.uniform(*hue)
    return np.asarray(colours, np.float32)


def _band_noise(rng: np.random.Generator, n: int, centre: float, octaves: float = 0.6) -> np.ndarray:
    """Periodic (n, n) float32 noise, zero mean, unit std, power around ``centre`` cycles per tile."""
    fy = np.fft.fftfreq(n) * n
    fx = np.fft.rfftfreq(n) * n
    radius = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    radius[0, 0] = 1e-6
    gain = np.exp(-0.5 * (np.log2(radius / centre) / octaves) ** 2)
    gain[0, 0] = 0.0
    spectrum = (rng.standard_normal(gain.shape) + 1j * rng.standard_normal(gain.shape)) * gain
    field = np.fft.irfft2(spectrum, s=(n, n))
    field = (field - field.mean()) / (field.std() + 1e-12)
    return field.astype(np.float32)


def _wave(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """A random plane wave's phase (n, n) with an integer wave vector, so the tile stays periodic."""
    while True:
        kx, ky = rng.integers(-high, high + 1, size=2)
        if low <= math.hypot(kx, ky) <= high:
            break
    grid = np.arange(n, dtype=np.float32) / n
    return np.float32(2 * math.pi) * (kx * grid[None, :] + ky * grid[:, None]) + np.float32(rng.uniform(0, 2 * math.pi))


def _colourise(field_nn: np.ndarray, colours_k3: np.ndarray) -> np.ndarray:
    """Map a field in [0, 1] through a piecewise-linear palette: (n, n) → (n, n, 3)."""
    stops = np.linspace(0.0, 1.0, len(colours_k3))
    return np.stack([np.interp(field_nn, stops, colours_k3[:, c]) for c in range(3)], axis=-1).astype(np.float32)


def _squash(field: np.ndarray, sharpness: float) -> np.ndarray:
    """Zero-mean field → [0, 1]; high sharpness gives two-tone patterns with soft edges."""
    return (0.5 + 0.5 * np.tanh(sharpness * field)).astype(np.float32)


def _texture(rng: np.random.Generator, n: int, kind: str, colours_k3: np.ndarray, scale: float,
             grain: float = 0.1) -> np.ndarray:
    """A periodic channel-planar (3, n, n) float32 tile in [0, 1] (see ``_sample_wrap``).

    ``kind``: "noise" (band-limited noise), "waves" (sum of sinusoids), "stripes" (warped
    stripes), "checker" (rotated, warped checkerboard) or "cells" (blobs). ``scale`` sets the
    feature frequency in cycles per tile. A faint finer noise is multiplied in so that every
    patch of a tile is distinctive, also on flat stripes.
    """
    if kind == "noise":
        field = _squash(_band_noise(rng, n, scale) + 0.5 * _band_noise(rng, n, 2.5 * scale), 0.9)
    elif kind == "waves":
        total = sum(rng.uniform(0.4, 1.0) * np.sin(_wave(rng, n, max(1, int(scale / 2)), int(scale * 1.5) + 1))
                    for _ in range(int(rng.integers(3, 6))))
        field = _squash(total / 1.6, 1.0)
    elif kind == "stripes":
        warp = 0.8 * _band_noise(rng, n, max(2.0, scale / 4))
        field = _squash(np.sin(_wave(rng, n, max(1, int(scale / 2)), int(scale) + 1) + warp), 3.0)
    elif kind == "checker":
        kx, ky = [int(v) for v in rng.integers(1, max(2, int(scale / 2)) + 1, size=2)]
        grid = np.arange(n, dtype=np.float32) / n
        u = 2 * math.pi * (kx * grid[None, :] + ky * grid[:, None])
        v = 2 * math.pi * (-ky * grid[None, :] + kx * grid[:, None])
        warp = 0.5 * _band_noise(rng, n, max(2.0, scale / 4))
        field = _squash(np.sin(u + warp) * np.sin(v - warp), 4.0)
    elif kind == "cells":
        field = _squash(np.abs(_band_noise(rng, n, scale)) - 0.8, 3.0)
    else:
        raise ValueError(f"unknown texture kind {kind!r}")
    rgb = _colourise(field, colours_k3) * (1.0 + grain * _band_noise(rng, n, 4.0 * scale, octaves=1.0))[..., None]
    return np.ascontiguousarray(np.clip(rgb, 0.0, 1.0).transpose(2, 0, 1), dtype=np.float32)


_TEXTURE_KINDS = ("noise", "waves", "stripes", "checker", "cells")


def _sample_wrap(tile_3nn: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a periodic tile at texel coordinates (any shape S) → float32 (S..., 3).

    Texel (r, c) is centred at (y=r, x=c); coordinates wrap, so any real value is valid. The
    tile is channel-planar (3, n, n): three 1-D ``take`` gathers are ~2× faster than gathering
    RGB rows from an (n, n, 3) tile, and this lookup dominates rendering time.
    """
    n = tile_3nn.shape[-1]
    wrap = n - 1  # n is a power of two: & wrap is a floor-mod, also for negative indices
    planes = tile_3nn.reshape(3, n * n)
    y0f, x0f = np.floor(y), np.floor(x)
    fy, fx = y - y0f, x - x0f
    y0, x0 = y0f.astype(np.int32) & wrap, x0f.astype(np.int32) & wrap
    row0, row1 = y0 * n, ((y0 + 1) & wrap) * n
    x1 = (x0 + 1) & wrap
    i00, i01, i10, i11 = row0 + x0, row0 + x1, row1 + x0, row1 + x1
    w11 = fy * fx
    w10, w01 = fy - w11, fx - w11
    w00 = 1.0 - fy - w01
    out = np.empty(np.shape(y) + (3,), np.float32)
    for c in range(3):
        p = planes[c]
        out[..., c] = p.take(i00) * w00 + p.take(i01) * w01 + p.take(i10) * w10 + p.take(i11) * w11
    return out


def _smooth_path(rng: np.random.Generator, amplitude: float, period: tuple[float, float], terms: int = 2):
    """Random (amplitudes, angular frequencies, phases) of a smooth 1-D wander, each (terms,)."""
    return (rng.uniform(0.3, 1.0, terms) * amplitude / np.arange(1, terms + 1),
            2 * math.pi / rng.uniform(*period, terms),
            rng.uniform(0, 2 * math.pi, terms))


def _eval_path(path, seconds: float) -> float:
    amps, omegas, phases = path
    return float(np.sum(amps * np.sin(omegas * seconds + phases)))


# ---------------------------------------------------------------------------------------------
# Scene elements


@dataclass(frozen=True, eq=False)
class _Camera:
    """A camera over the infinite periodic background: pan, zoom (dolly + breathing), roll."""

    tile: np.ndarray
    origin: tuple[float, float]
    velocity: tuple[float, float]
    pan_x: tuple
    pan_y: tuple
    zoom_rate: float
    zoom: tuple
    roll: tuple

    @staticmethod
    def build(rng: np.random.Generator) -> "_Camera":
        colours = _random_colours(rng, int(rng.integers(3, 5)), saturation=(0.15, 0.6), value=(0.2, 0.85))
        kind = _TEXTURE_KINDS[int(rng.integers(len(_TEXTURE_KINDS)))]
        tile = _texture(rng, _BACKGROUND_TILE, kind, colours, scale=float(rng.uniform(6, 16)), grain=0.05)
        speed, heading = rng.uniform(0.04, 0.22), rng.uniform(0, 2 * math.pi)
        return _Camera(
            tile=tile,
            origin=(float(rng.uniform(0, 4)), float(rng.uniform(0, 4))),
            velocity=(speed * math.cos(heading), 0.5 * speed * math.sin(heading)),
            pan_x=_smooth_path(rng, 0.08, (3, 8)),
            pan_y=_smooth_path(rng, 0.04, (3, 8)),
            zoom_rate=float(rng.uniform(-0.06, 0.06)),
            zoom=_smooth_path(rng, 0.10, (4, 10), terms=1),
            roll=_smooth_path(rng, 0.04, (5, 12), terms=1),
        )

    def render(self, grid: _Grid, seconds: float) -> np.ndarray:
        """Background (H, W, 3) float32: screen point s sees world point centre + R(roll) s / zoom."""
        cx = self.origin[0] + self.velocity[0] * seconds + _eval_path(self.pan_x, seconds)
        cy = self.origin[1] + self.velocity[1] * seconds + _eval_path(self.pan_y, seconds)
        zoom = math.exp(self.zoom_rate * seconds + _eval_path(self.zoom, seconds))
        wx, wy = _rotate(grid.xs_w[None, :] / np.float32(zoom), grid.ys_h[:, None] / np.float32(zoom),
                         _eval_path(self.roll, seconds))
        density = np.float32(_BACKGROUND_DENSITY)
        return _sample_wrap(self.tile, (wy + np.float32(cy)) * density, (wx + np.float32(cx)) * density)


@dataclass(frozen=True, eq=False)
class _RigidObject:
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
    wander_x: tuple
    wander_y: tuple
    angle0: float
    spin: float
    wobble: tuple
    breathe: tuple
    texture_offset: tuple[float, float]

    @staticmethod
    def build(rng: np.random.Generator, start: tuple[float, float], velocity: tuple[float, float],
              radius: float, wander: float) -> "_RigidObject":
        colours = _random_colours(rng, int(rng.integers(2, 5)), saturation=(0.5, 1.0), value=(0.35, 1.0))
        kind = _TEXTURE_KINDS[int(rng.integers(len(_TEXTURE_KINDS)))]
        tile = _texture(rng, _OBJECT_TILE, kind, colours, scale=float(rng.uniform(3, 8)))
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
        return _RigidObject(
            tile=tile,
            radius=radius,
            aspect=float(rng.uniform(0.55, 1.0)) if shape != "star" else 1.0,
            power=power,
            harmonics=(orders, amps, rng.uniform(0, 2 * math.pi, len(orders))),
            start=start,
            velocity=velocity,
            wander_x=_smooth_path(rng, wander, (2.5, 7)),
            wander_y=_smooth_path(rng, 0.6 * wander, (2.5, 7)),
            angle0=float(rng.uniform(0, 2 * math.pi)),
            spin=float(rng.uniform(-0.8, 0.8)),
            wobble=_smooth_path(rng, 0.3, (2, 5), terms=1),
            breathe=_smooth_path(rng, 0.15, (3, 8), terms=1),
            texture_offset=(float(rng.uniform(0, _OBJECT_TILE)), float(rng.uniform(0, _OBJECT_TILE))),
        )

    def pose(self, seconds: float) -> tuple[float, float, float, float]:
        """(centre x, centre y, angle, scale) at ``seconds``; paths start exactly at ``start``."""
        x = self.start[0] + self.velocity[0] * seconds + _eval_path(self.wander_x, seconds) - _eval_path(self.wander_x, 0.0)
        y = self.start[1] + self.velocity[1] * seconds + _eval_path(self.wander_y, seconds) - _eval_path(self.wander_y, 0.0)
        angle = self.angle0 + self.spin * seconds + _eval_path(self.wobble, seconds)
        scale = math.exp(_eval_path(self.breathe, seconds))
        return x, y, angle, scale

    def strokes(self, grid: _Grid, seconds: float) -> list[_Stroke]:
        cx, cy, angle, scale = self.pose(seconds)
        size = self.radius * scale
        window = grid.window(cx, cy, size * math.sqrt(2.0))
        if window is None:
            return []
        y0, y1, x0, x1 = window
        dx, dy = np.broadcast_arrays((grid.xs_w[None, x0:x1] - np.float32(cx)) / np.float32(size),
                                     (grid.ys_h[y0:y1, None] - np.float32(cy)) / np.float32(size))
        ux, uy = _rotate(dx, dy, -angle)
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
        rgb = _sample_wrap(self.tile, uy[inside] * density + np.float32(self.texture_offset[1]),
                           ux[inside] * density + np.float32(self.texture_offset[0]))
        # Light from the upper left in screen space and a darkened rim read as a rounded solid.
        light = -0.55 * dx[inside] - 0.65 * dy[inside]
        rim = (norm[inside] / bound[inside]) ** 4
        shade = (1.0 + 0.18 * light - 0.3 * rim)[:, None]
        return [_Stroke(window, inside, (rgb * shade).astype(np.float32), 0)]


def _capsule(grid: _Grid, a: np.ndarray, b: np.ndarray, radius: float, tile: np.ndarray,
             part: int, texture_offset: tuple[float, float]) -> _Stroke | None:
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
    rgb = _sample_wrap(tile, across[inside] * density + np.float32(texture_offset[1]),
                       along[inside] * np.float32(math.sqrt(length2)) * density + np.float32(texture_offset[0]))
    rim = dist2[inside] / np.float32(radius * radius)
    shade = (1.0 - 0.25 * rim * rim)[:, None]
    return _Stroke(window, inside, (rgb * shade).astype(np.float32), part)


@dataclass(frozen=True, eq=False)
class _Figure:
    """An articulated 2-D puppet: JHMDB skeleton, limbs as textured capsules, VIP part classes.

    Skeleton in figure units (1 ≈ ankle-to-head-top), y down, pelvis at the origin; the
    figure's right side is on the image's left (it faces the camera). Limb angles are
    in-plane, 0 = hanging straight down, positive swings the distal end toward +x.
    """

    action: str
    size: float
    start: tuple[float, float]
    velocity: float
    sway: tuple
    lean: tuple
    rate: float
    phase: float
    tiles: dict

    @staticmethod
    def build(rng: np.random.Generator, action: str) -> "_Figure":
        skin_hue = (0.03, 0.1)
        tiles = {
            "shirt": _texture(rng, _FIGURE_TILE, _TEXTURE_KINDS[int(rng.integers(1, 4))],
                              _random_colours(rng, 3, (0.5, 1.0), (0.4, 1.0)), scale=float(rng.uniform(4, 9))),
            "pants": _texture(rng, _FIGURE_TILE, "noise",
                              _random_colours(rng, 3, (0.3, 0.8), (0.15, 0.5)), scale=float(rng.uniform(6, 12))),
            "skin": _texture(rng, _FIGURE_TILE, "noise",
                             _random_colours(rng, 2, (0.3, 0.55), (0.55, 0.95), hue=skin_hue), scale=4.0),
            "hair": _texture(rng, _FIGURE_TILE, "stripes",
                             _random_colours(rng, 2, (0.2, 0.7), (0.05, 0.35)), scale=24.0),
            "shoes": _texture(rng, _FIGURE_TILE, "checker",
                              _random_colours(rng, 2, (0.0, 0.5), (0.05, 0.6)), scale=8.0),
        }
        walking = action == "walk"
        return _Figure(
            action=action,
            size=float(rng.uniform(0.7, 0.8)),
            start=(float(rng.uniform(-0.3, -0.15) if walking else rng.uniform(-0.15, 0.15)),
                   float(rng.uniform(0.06, 0.1))),
            velocity=float(rng.uniform(0.06, 0.12)) if walking else 0.0,
            sway=_smooth_path(rng, 0.04, (2, 5)),
            lean=_smooth_path(rng, 0.06, (2, 5), terms=1),
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
        x = self.start[0] + self.velocity * seconds + _eval_path(self.sway, seconds)
        y = self.start[1]
        phi = 2 * math.pi * self.rate * seconds + self.phase
        if self.action == "walk":
            y -= 0.012 * abs(math.cos(phi))
        elif self.action == "jump":
            y -= 0.05 * abs(math.sin(phi))
        return x, y, _eval_path(self.lean, seconds)

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

    def strokes(self, grid: _Grid, seconds: float) -> list[_Stroke]:
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

    def _head(self, grid: _Grid, centre: np.ndarray, lean: float) -> _Stroke | None:
        """An ellipse: hair above a hairline, face below."""
        half_w, half_h = 0.065 * self.size, 0.082 * self.size
        window = grid.window(float(centre[0]), float(centre[1]), half_h)
        if window is None:
            return None
        y0, y1, x0, x1 = window
        ux, uy = _rotate(*np.broadcast_arrays(grid.xs_w[None, x0:x1] - np.float32(centre[0]),
                                              grid.ys_h[y0:y1, None] - np.float32(centre[1])), -lean)
        inside = (ux / np.float32(half_w)) ** 2 + (uy / np.float32(half_h)) ** 2 <= 1.0
        if not inside.any():
            return None
        hair = (uy[inside] < -0.3 * half_h) | (np.abs(ux[inside]) > 0.85 * half_w) & (uy[inside] < 0.2 * half_h)
        density = np.float32(_FIGURE_DENSITY)
        ty, tx = uy[inside] * density, ux[inside] * density
        rgb = np.where(hair[:, None], _sample_wrap(self.tiles["hair"], ty, tx), _sample_wrap(self.tiles["skin"], ty + 91, tx + 17))
        part = np.where(hair, PART_CLASSES.index("hair"), PART_CLASSES.index("face")).astype(np.uint8)
        return _Stroke(window, inside, rgb.astype(np.float32), part)


# ---------------------------------------------------------------------------------------------
# Scene assembly


@dataclass(frozen=True, eq=False)
class _Scene:
    """Camera (background), then ``layers`` as (object id, element) in painter's order."""

    camera: _Camera
    layers: list
    figure: _Figure | None
    figure_id: int


def _build_scene(spec: ClipSpec) -> _Scene:
    """Draw every scene parameter from the spec's seed, independently of the raster size."""
    rng = np.random.default_rng(spec.seed)
    duration = spec.frames / spec.fps
    camera = _Camera.build(rng)
    if spec.kind == "objects":
        objects = _build_objects(rng, spec.n_objects, duration)
        order = rng.permutation(len(objects))
        return _Scene(camera, [(int(k) + 1, objects[k]) for k in order], None, 0)
    action = FIGURE_ACTIONS[int(rng.integers(len(FIGURE_ACTIONS)))]
    figure = _Figure.build(rng, action)
    extras = _build_crossers(rng, spec.n_objects - 1, figure, duration)
    # id 2 crosses in front of the figure, the others pass behind it.
    behind = [(k + 2, obj) for k, obj in enumerate(extras) if k > 0]
    front = [(2, extras[0])] if extras else []
    return _Scene(camera, behind + [(1, figure)] + front, figure, 1)


def _build_objects(rng: np.random.Generator, count: int, duration: float) -> list[_RigidObject]:
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
        objects.append(_RigidObject.build(rng, start, velocity, float(radius), wander))
    return objects


def _build_crossers(rng: np.random.Generator, count: int, figure: _Figure, duration: float) -> list[_RigidObject]:
    """Rigid objects of a figure clip: the first crosses the figure mid-clip, the rest roam behind."""
    objects = []
    for k in range(count):
        radius = float(rng.uniform(0.08, 0.14))
        if k == 0:
            meet = figure.root(0.5 * duration)
            side = 1.0 if rng.uniform() < 0.5 else -1.0
            start = (meet[0] + side * 0.6, meet[1] - 0.2 + float(rng.uniform(-0.05, 0.05)))
            velocity = (-side * 0.6 / (0.5 * duration), 0.0)
            wander = 0.02
        else:
            start = (float(rng.uniform(-0.7, 0.7)), float(rng.uniform(-0.3, 0.3)))
            heading = rng.uniform(0, 2 * math.pi)
            velocity = (0.06 * math.cos(heading), 0.03 * math.sin(heading))
            wander = 0.12
        objects.append(_RigidObject.build(rng, start, velocity, radius, wander))
    return objects


def _keypoints(joints_j2: np.ndarray, grid: _Grid, ids_hw: np.ndarray, figure_id: int) -> np.ndarray:
    """(15, 3) float32: pixel x, y and visibility (inside the raster and not occluded)."""
    xy = grid.to_pixels(joints_j2)
    col, row = np.rint(xy[:, 0]).astype(np.int64), np.rint(xy[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < grid.width) & (row >= 0) & (row < grid.height)
    visible = np.zeros(len(xy), bool)
    visible[inside] = ids_hw[row[inside], col[inside]] == figure_id
    return np.concatenate([xy, visible[:, None]], axis=1).astype(np.float32)
