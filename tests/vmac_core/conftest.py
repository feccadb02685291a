"""Shared helpers for the vmac_core tests: tiny seeded tensors on CPU."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded_single_thread():
    # Every test starts from the same global RNG state, so weight init is reproducible too.
    torch.manual_seed(0)
    # One intra-op thread: these tensors are tiny, and on a shared 2-core machine a second
    # OpenMP thread mostly waits for a core (tests ran up to 10x slower). Restored afterwards
    # because the setting is process-wide.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def patch_active(batch: int, grid: int, ratio: float, seed: int = 0) -> torch.Tensor:
    """A random patch visibility map (B, 1, grid, grid), True = visible, via random_patch_mask."""
    from vmac_core.masking import mask_to_active, random_patch_mask

    mask_bl = random_patch_mask(batch, grid, grid, ratio, torch.Generator().manual_seed(seed))
    return mask_to_active(mask_bl, grid, grid)
