"""Frame 1's view seen through frame 2's, for crop-in-crop pairs (``vmac_core.augment.ViewParams``).

With crop-in-crop views frame 2's crop is a box inside frame 1's, so patch i of one view is not
patch i of the other. VideoMAC's consistency term compares the online prediction of frame 1
with the target's prediction of frame 2 patch by patch (``vmac_core.videomac``); with two views
the online prediction is first resampled into frame 2's view:

- ``align_patches``: (B, L, p*p*C) patches over frame 1's view → the same layout over frame 2's
  view (bilinear), per-patch normalised again when the targets are (a patch of frame 2's view
  spans parts of several of frame 1's, each normalised on its own);
- ``aligned_mask``: the patches of frame 2's view whose every pixel falls on a masked patch of
  frame 1's view: a prediction at a visible patch is a copy of the input, not one to agree with.

``box_b4``: (B, 4) float, (y0, x0, y1, x1) of frame 2's view as fractions of frame 1's view
(``vmac_core.augment.view2_box``); (0, 0, 1, 1) is the shared crop, for which both functions are
the identity (up to the per-patch normalisation). Views are square, ``grid`` × ``grid`` patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vmac_core.masking import normalize_patches, patchify, unpatchify


def view_grid(box_b4: Tensor, size: int) -> Tensor:
    """``F.grid_sample`` coordinates (B, size, size, 2), (x, y) in [-1, 1] of frame 1's view
    (``align_corners=False``), of the centre of every pixel of frame 2's size × size view."""
    centres = (torch.arange(size, dtype=box_b4.dtype, device=box_b4.device) + 0.5) / size
    y0, x0, y1, x1 = box_b4.unbind(1)
    ys_bs = y0[:, None] + (y1 - y0)[:, None] * centres  # fractions of frame 1's view
    xs_bs = x0[:, None] + (x1 - x0)[:, None] * centres
    batch = box_b4.shape[0]
    grid_bss2 = torch.stack([xs_bs[:, None, :].expand(batch, size, size), ys_bs[:, :, None].expand(batch, size, size)],
                            dim=-1)
    return grid_bss2 * 2 - 1


def align_patches(patches_blk: Tensor, box_b4: Tensor, patch: int, normalise: bool, channels: int = 3) -> Tensor:
    """Patches (B, L, p*p*C) over frame 1's view, resampled (bilinear) over frame 2's: (B, L, p*p*C);
    per-patch normalised (``normalize_patches``) when ``normalise``."""
    grid = int(round(patches_blk.shape[1] ** 0.5))
    image_bchw = unpatchify(patches_blk, patch, grid, grid, channels)
    sampled_bchw = F.grid_sample(image_bchw, view_grid(box_b4.to(image_bchw.dtype), grid * patch), mode="bilinear",
                                 padding_mode="border", align_corners=False)
    aligned_blk = patchify(sampled_bchw, patch)
    return normalize_patches(aligned_blk) if normalise else aligned_blk


def aligned_mask(mask_bl: Tensor, box_b4: Tensor, patch: int) -> Tensor:
    """Bool (B, L): the patches of frame 2's view every pixel centre of which falls on a patch that
    ``mask_bl`` (bool (B, L) over frame 1's view, True = masked) masks."""
    batch, num_patches = mask_bl.shape
    grid = int(round(num_patches ** 0.5))
    masked_b1gg = mask_bl.reshape(batch, 1, grid, grid).float()
    sampled_b1ss = F.grid_sample(masked_b1gg, view_grid(box_b4.float(), grid * patch), mode="nearest",
                                 padding_mode="border", align_corners=False)
    # A patch counts when its least-masked pixel is masked: -maxpool(-x) is a min-pool.
    return (-F.max_pool2d(-sampled_b1ss, patch)).flatten(1) > 0.5
