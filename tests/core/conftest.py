"""Shared helpers for the vmac_core tests: tiny seeded tensors on CPU."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    # Every test starts from the same global RNG state, so weight init is reproducible too.
    torch.manual_seed(0)
    yield


def patch_active(batch: int, grid: int, ratio: float, seed: int = 0) -> torch.Tensor:
    """A random patch visibility map (B, 1, grid, grid), True = visible, via random_patch_mask."""
    from vmac_core.masking import mask_to_active, random_patch_mask

    mask_bl = random_patch_mask(batch, grid, grid, ratio, torch.Generator().manual_seed(seed))
    return mask_to_active(mask_bl, grid, grid)
