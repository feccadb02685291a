"""Pictures of predictions: overlay sheets (prediction | ground truth, a few frames per sequence)
and predicted masks in the DAVIS results layout (palette PNGs of ids, docs/evaluate.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from storage_schemas.layout import NOT_ANNOTATED
from storage_schemas.palette import DAVIS_PALETTE
from tasks.io.files import atomic_path

PANEL_WIDTH = 427  # half of 854: a 480p frame's two panels side by side fit one DAVIS frame width
_GUTTER = 4  # px between panels and rows
_PALETTE_RGB = np.frombuffer(DAVIS_PALETTE, np.uint8).reshape(256, 3)  # DAVIS (PASCAL VOC) colours


def overlay_frames(total: int, count: int) -> list[int]:
    """The ``count`` frames (first, last and evenly between) an overlay of ``total`` frames shows."""
    return sorted(set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist()))


def save_palette_png(ids_hw: np.ndarray, path: Path) -> None:
    """A DAVIS results file: a palette PNG whose indices are the ids (H, W) uint8."""
    image = Image.fromarray(np.ascontiguousarray(ids_hw, dtype=np.uint8), mode="L")
    image.putpalette(DAVIS_PALETTE)  # "L" + palette -> "P"
    with atomic_path(path) as tmp:  # replaces a link at ``path``, never writes through it
        image.save(tmp, format="PNG")


def _blend(frame_hw3: np.ndarray, ids_hw: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The frame with labelled pixels (ids other than 0 and 255) tinted by their colour and
    outlined in white, the rest slightly darkened."""
    colours = _PALETTE_RGB[ids_hw].astype(np.float32)
    labelled = (ids_hw != 0) & (ids_hw != NOT_ANNOTATED)
    out = np.where(labelled[..., None], (1 - alpha) * frame_hw3 + alpha * colours, frame_hw3.astype(np.float32) * 0.8)
    edge = np.zeros_like(labelled)
    for a, b in ((np.s_[:, 1:], np.s_[:, :-1]), (np.s_[1:, :], np.s_[:-1, :])):
        differ = (ids_hw[a] != ids_hw[b]) & (labelled[a] | labelled[b])
        edge[a] |= differ
        edge[b] |= differ
    out[edge] = 255.0
    return out.clip(0, 255).astype(np.uint8)


def _panel(image_hw3: np.ndarray, caption: str) -> Image.Image:
    """The image scaled to PANEL_WIDTH with ``caption`` in white on black at its top-left."""
    image = Image.fromarray(image_hw3)
    height = max(1, round(image.height * PANEL_WIDTH / image.width))
    image = image.resize((PANEL_WIDTH, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((4, 4), caption)
    draw.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=(0, 0, 0))
    draw.text((4, 4), caption, fill=(255, 255, 255))
    return image


def _grid(rows: list[tuple[Image.Image, Image.Image]], path: Path) -> None:
    """Rows of (prediction, ground truth) panels with a 4 px gutter, saved as PNG."""
    width = 2 * PANEL_WIDTH + _GUTTER
    height = sum(left.height for left, _ in rows) + _GUTTER * (len(rows) - 1)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    y = 0
    for left, right in rows:
        sheet.paste(left, (0, y))
        sheet.paste(right, (PANEL_WIDTH + _GUTTER, y))
        y += left.height + _GUTTER
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")


def draw_mask_overlay(frames, kept: dict[int, tuple[np.ndarray, np.ndarray]], path: Path,
                      frame_name: Callable[[int], str] = str) -> None:
    """One row per kept frame t: (predicted ids, true ids), each (H, W), blended over frames[t]."""
    rows = []
    for t in sorted(kept):
        frame = np.asarray(frames[t])
        pred, gt = kept[t]
        name = frame_name(t)
        rows.append((_panel(_blend(frame, pred), f"frame {name}: {'prediction' if t else 'given'}"),
                     _panel(_blend(frame, gt), f"frame {name}: ground truth")))
    _grid(rows, path)


def _keypoint_panel(frame_hw3: np.ndarray, points_j: np.ndarray, caption: str) -> Image.Image:
    """The frame with each joint (rows x, y[, visible]) as a dot in its palette colour; NaN or
    invisible joints are left out."""
    colours = _PALETTE_RGB[1:]
    panel = _panel(frame_hw3, caption)
    draw = ImageDraw.Draw(panel)
    s = panel.width / frame_hw3.shape[1]
    for j, point in enumerate(points_j):
        if np.isnan(point[:2]).any() or (len(point) > 2 and point[2] <= 0):
            continue
        x, y = (point[0] + 0.5) * s - 0.5, (point[1] + 0.5) * s - 0.5
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=tuple(int(c) for c in colours[j % len(colours)]),
                     outline=(255, 255, 255))
    return panel


def draw_keypoint_overlay(frames, pred_tj2: np.ndarray, gt_tj3: np.ndarray, count: int, path: Path,
                          frame_name: Callable[[int], str] = str) -> None:
    """``count`` rows (``overlay_frames``): predicted (x, y) and true (x, y, visible) joints."""
    rows = []
    for t in overlay_frames(len(pred_tj2), count):
        frame = np.asarray(frames[t])
        name = frame_name(t)
        rows.append((_keypoint_panel(frame, pred_tj2[t], f"frame {name}: {'prediction' if t else 'given'}"),
                     _keypoint_panel(frame, gt_tj3[t], f"frame {name}: ground truth")))
    _grid(rows, path)
