"""VideoMAC's symmetric patch mask, patchify/unpatchify and per-patch normalised targets.

Convention, everywhere in vmac_core: `mask_bl` is bool (B, L) over the patch grid in row-major
order, and **True means masked (removed)**, as in MAE ("0 is keep, 1 is remove"). Its complement
on a spatial grid is `active_b1hw` (True = visible), which is what the encoders take.

One mask is drawn per pair and shared by both frames ("symmetric" masking, VideoMAC Sec. 3.2).
"""

from __future__ import annotations

import torch
from torch import Tensor


def num_visible_patches(num_patches: int, ratio: float) -> int:
    """Patches kept by `random_patch_mask`: round(L * (1 - ratio)), at least 1."""
    return max(1, int(round(num_patches * (1.0 - ratio))))


def random_patch_mask(
    batch: int,
    grid_h: int,
    grid_w: int,
    ratio: float,
    generator: torch.Generator | None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw one random patch mask per sample.

    Returns mask_bl: bool (batch, grid_h * grid_w), True = masked/removed, row-major over the
    patch grid. Every sample has exactly L - num_visible_patches(L, ratio) masked patches (a
    fixed count keeps per-sample statistics comparable and lets the encoder reshape instead of
    scatter). `generator` makes the draw reproducible; its device decides where the noise is drawn.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}")
    num_patches = grid_h * grid_w
    noise_device = generator.device if generator is not None else (device or "cpu")
    noise_bl = torch.rand(batch, num_patches, generator=generator, device=noise_device)
    # The lowest-noise patches are kept (MAE's argsort trick), the rest are masked.
    order_bl = noise_bl.argsort(dim=1)
    mask_bl = torch.ones(batch, num_patches, dtype=torch.bool, device=noise_device)
    keep = num_visible_patches(num_patches, ratio) if ratio > 0 else num_patches
    mask_bl.scatter_(1, order_bl[:, :keep], False)
    return mask_bl.to(device) if device is not None else mask_bl


def mask_to_active(mask_bl: Tensor, grid_h: int, grid_w: int, out_h: int | None = None, out_w: int | None = None) -> Tensor:
    """Turn a patch mask into a visibility map, upsampled to any grid that the patch grid divides.

    mask_bl: bool (B, grid_h * grid_w), True = masked.
    Returns active_b1hw: bool (B, 1, out_h, out_w), True = visible. out_h/out_w default to the
    patch grid itself; e.g. out_h = H / 4 gives the stride-4 map the encoders' first stage uses,
    out_h = H gives a pixel mask for previews.
    """
    out_h = grid_h if out_h is None else out_h
    out_w = grid_w if out_w is None else out_w
    if out_h % grid_h or out_w % grid_w:
        raise ValueError(f"grid {out_h}x{out_w} is not a multiple of the patch grid {grid_h}x{grid_w}")
    active_b1hw = (~mask_bl).reshape(-1, 1, grid_h, grid_w)
    return active_b1hw.repeat_interleave(out_h // grid_h, dim=2).repeat_interleave(out_w // grid_w, dim=3)


def patchify(images_bchw: Tensor, patch: int) -> Tensor:
    """(B, C, H, W) -> patches_blk (B, L, patch*patch*C), L row-major, values ordered (p, q, c) as in MAE."""
    b, c, h, w = images_bchw.shape
    if h % patch or w % patch:
        raise ValueError(f"image {h}x{w} is not a multiple of patch {patch}")
    gh, gw = h // patch, w // patch
    x = images_bchw.reshape(b, c, gh, patch, gw, patch)
    return torch.einsum("nchpwq->nhwpqc", x).reshape(b, gh * gw, patch * patch * c)


def unpatchify(patches_blk: Tensor, patch: int, grid_h: int, grid_w: int, channels: int = 3) -> Tensor:
    """Inverse of `patchify`: (B, L, patch*patch*C) -> (B, C, grid_h*patch, grid_w*patch)."""
    b = patches_blk.shape[0]
    x = patches_blk.reshape(b, grid_h, grid_w, patch, patch, channels)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(b, channels, grid_h * patch, grid_w * patch)


# MAE's constant: var + 1e-6 under the square root keeps flat patches finite.
PATCH_NORM_EPS = 1e-6


def patch_statistics(patches_blk: Tensor) -> tuple[Tensor, Tensor]:
    """Per-patch mean and (unbiased, as in MAE) variance: two (B, L, 1) tensors."""
    var_bl1, mean_bl1 = torch.var_mean(patches_blk, dim=-1, keepdim=True)
    return mean_bl1, var_bl1


def normalize_patches(patches_blk: Tensor) -> Tensor:
    """Per-patch normalised targets of norm_pix_loss: (x - mean) / sqrt(var + 1e-6), (B, L, K)."""
    mean_bl1, var_bl1 = patch_statistics(patches_blk)
    return (patches_blk - mean_bl1) / (var_bl1 + PATCH_NORM_EPS).sqrt()


def denormalize_patches(pred_blk: Tensor, reference_blk: Tensor) -> Tensor:
    """Undo `normalize_patches` with the statistics of the reference patches (for previews)."""
    mean_bl1, var_bl1 = patch_statistics(reference_blk)
    return pred_blk * (var_bl1 + PATCH_NORM_EPS).sqrt() + mean_bl1


def masked_patch_mse(pred_blk: Tensor, target_blk: Tensor, mask_bl: Tensor) -> Tensor:
    """Mean squared error over masked patches only (MAE's loss).

    Each patch's loss is the mean over its K values; patches are averaged over the True entries of
    mask_bl. With no masked patch the loss is 0 (the denominator is clamped to 1), so a ratio-0
    step is well defined.
    """
    per_patch_bl = (pred_blk - target_blk).square().mean(dim=-1)
    weight_bl = mask_bl.to(per_patch_bl.dtype)
    return (per_patch_bl * weight_bl).sum() / weight_bl.sum().clamp(min=1.0)
