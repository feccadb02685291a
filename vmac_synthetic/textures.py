"""Procedural textures: periodic channel-planar (3, n, n) float32 tiles in [0, 1], and their lookup.

Tiles are periodic and sampled with wrap-around; sizes are powers of two so that the wrap is a
bit mask. Each user sets its tile size and its density (texels per scene unit; per object
radius for rigid objects).
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

TEXTURE_KINDS = ("noise", "waves", "stripes", "checker", "cells")


def random_colours(rng: np.random.Generator, count: int, saturation: tuple[float, float],
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


def texture(rng: np.random.Generator, n: int, kind: str, colours_k3: np.ndarray, scale: float,
            grain: float = 0.1) -> np.ndarray:
    """A periodic channel-planar (3, n, n) float32 tile in [0, 1] (see ``sample_wrap``).

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


def sample_wrap(tile_3nn: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
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
