"""Visibility maps: ``active_b1hw`` is (B, 1, h, w) bool, True where a site is visible (kept)."""

from __future__ import annotations

from torch import Tensor


def upsample_active(active_b1hw: Tensor, height: int, width: int) -> Tensor:
    """Nearest-upsample a visibility map (B, 1, h, w) to (B, 1, height, width); h must divide height."""
    h, w = active_b1hw.shape[-2:]
    if (h, w) == (height, width):
        return active_b1hw
    if height % h or width % w:
        raise ValueError(f"active map {h}x{w} does not divide the feature grid {height}x{width}")
    return active_b1hw.repeat_interleave(height // h, dim=2).repeat_interleave(width // w, dim=3)
