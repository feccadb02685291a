"""VideoMAC's pair augmentation: one RandomResizedCrop and one horizontal flip shared by both frames.

Paper and official code (docs/architecture.md, "VideoMAC as published"): frames t and t+gap of
one video get the *same* crop (scale 0.2–1, aspect ratio 3/4–4/3), the *same* flip, a bicubic
resize to the input size (224 px) and ImageNet normalisation. Sharing the crop keeps the two
frames pixel-aligned up to the scene's own motion, which the consistency loss relies on.

Pure torch and no file I/O: no torchvision, whose wheels drag in a CUDA torch
(docs/architecture.md, "Dependencies"). The crop box is drawn with torchvision's
``RandomResizedCrop.get_params`` algorithm (10 tries, then a centre crop of the whole frame clamped
to the ratio range), from an explicit ``torch.Generator``. Cropping and flipping are views and
copies of uint8 frames; the bicubic resize (antialiased, as PIL's) runs on the uint8 crop only, and
conversion to float plus normalisation is the last step, over the small resized output (a loader
ships the uint8 output of ``resize_pair_batch`` and normalises where training runs).

Two levers beyond the paper (``ViewParams``, docs/learning.md): the crop's area range, and
crop-in-crop views, where frame 2's crop is drawn inside frame 1's (``PairCrop.inner``) and
``view2_box`` says where it lies in frame 1's view, for ``vmac_core.views`` to align the two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CROP_SCALE = (0.2, 1.0)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)


@dataclass(frozen=True)
class PairCrop:
    """One pair's augmentation: a crop box in source pixels and whether to flip horizontally.

    inner: crop-in-crop only (``ViewParams.inner_scale``), frame 2's own box (top, left, height,
    width) in source pixels, inside the crop box; None: frame 2 shares frame 1's crop. The flip
    applies to both frames.
    """

    top: int
    left: int
    height: int
    width: int
    flip: bool
    inner: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class ViewParams:
    """How a pair's two views are drawn (``DataParams.crop_scale`` and ``inner_crop_scale``).

    scale: area of frame 1's crop as a fraction of the frame (RandomResizedCrop's scale).
    inner_scale: crop-in-crop (CropMAE's global-to-local views, Eymaël et al., ECCV 2024): frame
        2's crop is drawn inside frame 1's, its area this fraction of frame 1's crop, with the
        same ratio range; None: frame 2 shares frame 1's crop (VideoMAC's).
    """

    scale: tuple[float, float] = CROP_SCALE
    inner_scale: tuple[float, float] | None = None


def sample_crop_box(
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
) -> tuple[int, int, int, int]:
    """(top, left, crop height, crop width), drawn as torchvision's RandomResizedCrop does.

    Area fraction uniform in ``scale``, log aspect ratio uniform in ``log(ratio)``; up to 10
    tries for a box that fits, then the fallback: the whole frame, cropped centrally to the
    nearest ratio in range.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect_ratio = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=generator).item())
        crop_w = int(round(math.sqrt(target_area * aspect_ratio)))
        crop_h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(torch.randint(0, height - crop_h + 1, size=(1,), generator=generator).item())
            left = int(torch.randint(0, width - crop_w + 1, size=(1,), generator=generator).item())
            return top, left, crop_h, crop_w
    in_ratio = width / height
    if in_ratio < min(ratio):
        crop_w, crop_h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        crop_h, crop_w = height, int(round(height * max(ratio)))
    else:
        crop_w, crop_h = width, height
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def sample_pair_crop(height: int, width: int, generator: torch.Generator, views: ViewParams = ViewParams()) -> PairCrop:
    """The crop box, then the flip (probability 0.5), then with ``views.inner_scale`` frame 2's box
    inside the crop, in that order from ``generator`` (shared crops draw nothing more)."""
    top, left, crop_h, crop_w = sample_crop_box(height, width, generator, views.scale)
    flip = bool(torch.rand(1, generator=generator).item() < 0.5)
    inner = None
    if views.inner_scale is not None:
        in_top, in_left, in_h, in_w = sample_crop_box(crop_h, crop_w, generator, views.inner_scale)
        inner = (top + in_top, left + in_left, in_h, in_w)
    return PairCrop(top, left, crop_h, crop_w, flip, inner)


def view2_box(crop: PairCrop) -> tuple[float, float, float, float]:
    """Frame 2's view inside frame 1's: (y0, x0, y1, x1) as fractions of frame 1's resized, flipped
    crop (0 top/left, 1 bottom/right); (0, 0, 1, 1) when the frames share the crop."""
    if crop.inner is None:
        return 0.0, 0.0, 1.0, 1.0
    top, left, height, width = crop.inner
    y0, y1 = (top - crop.top) / crop.height, (top - crop.top + height) / crop.height
    x0, x1 = (left - crop.left) / crop.width, (left - crop.left + width) / crop.width
    return (y0, 1.0 - x1, y1, 1.0 - x0) if crop.flip else (y0, x0, y1, x1)


def _normalisation(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale_311, shift_311) with (x / 255 - mean) / std == x * scale + shift, per channel."""
    mean = torch.tensor(IMAGENET_MEAN, device=device)
    std = torch.tensor(IMAGENET_STD, device=device)
    return (1.0 / (255.0 * std)).view(3, 1, 1), (-mean / std).view(3, 1, 1)


def normalize_(frames_n3hw: torch.Tensor) -> torch.Tensor:
    """ImageNet normalisation in place of float pixels in 0–255, shaped (..., 3, H, W); returns it."""
    scale_311, shift_311 = _normalisation(frames_n3hw.device)
    return frames_n3hw.mul_(scale_311).add_(shift_311)


def normalize(frames_u8_nchw: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) → float32 ImageNet-normalised, contiguous NCHW."""
    out_nchw = torch.empty(frames_u8_nchw.shape, dtype=torch.float32, device=frames_u8_nchw.device)
    return normalize_(out_nchw.copy_(frames_u8_nchw))


def crop_resize_pair(pair_2hwc: torch.Tensor, crop: PairCrop, size: int) -> torch.Tensor:
    """Crop and flip both frames of ``pair_2hwc`` (uint8 RGB) identically (frame 2 through
    ``crop.inner`` when set), then resize the crop bicubically (antialiased) to ``size``: uint8
    (2, 3, size, size), channels-last in memory."""
    if pair_2hwc.dtype != torch.uint8 or pair_2hwc.ndim != 4 or pair_2hwc.shape[0] != 2 or pair_2hwc.shape[3] != 3:
        raise ValueError(f"expected a uint8 (2, H, W, 3) pair, got {tuple(pair_2hwc.shape)} {pair_2hwc.dtype}")
    outer = (crop.top, crop.left, crop.height, crop.width)
    if crop.inner is None:
        return _crop_resize(pair_2hwc, outer, crop.flip, size)
    # Crop-in-crop: frame 1 through the crop, frame 2 through its box inside it.
    return torch.cat([_crop_resize(pair_2hwc[:1], outer, crop.flip, size),
                      _crop_resize(pair_2hwc[1:], crop.inner, crop.flip, size)])


def _crop_resize(frames_nhwc: torch.Tensor, box: tuple[int, int, int, int], flip: bool, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) → (N, 3, size, size): the box (top, left, height, width), flipped when
    asked, resized bicubically (antialiased)."""
    top, left, height, width = box
    crop_nhwc = frames_nhwc[:, top : top + height, left : left + width]
    if flip:
        crop_nhwc = crop_nhwc.flip(2)
    # A permuted HWC tensor is channels-last NCHW: the layout of torch's fast uint8 resize kernels.
    return F.interpolate(crop_nhwc.permute(0, 3, 1, 2), size=(size, size), mode="bicubic",
                         antialias=True, align_corners=False)


def augment_pair(pair_2hwc: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One pair: uint8 (2, H, W, 3) → float32 (2, 3, size, size) with a shared crop and flip."""
    crop = sample_pair_crop(pair_2hwc.shape[1], pair_2hwc.shape[2], generator)
    return normalize(crop_resize_pair(pair_2hwc, crop, size))


def sample_batch_crops(pairs_2hwc: Sequence[torch.Tensor] | torch.Tensor, generator: torch.Generator,
                       views: ViewParams = ViewParams()) -> list[PairCrop]:
    """Each pair's crop and flip, drawn in batch order: what ``augment_pair_batch`` draws itself
    when it is given none (the same generator calls in the same order)."""
    return [sample_pair_crop(pair_2hwc.shape[1], pair_2hwc.shape[2], generator, views) for pair_2hwc in pairs_2hwc]


def resize_pair_batch(
    pairs_2hwc: Sequence[torch.Tensor] | torch.Tensor,
    size: int,
    generator: torch.Generator,
    out_frames: tuple[torch.Tensor, torch.Tensor] | None = None,
    crops: Sequence[PairCrop] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of pairs (a (B, 2, H, W, 3) tensor, or a list of (2, H, W, 3) pairs whose frame
    sizes may differ between pairs) → (frame1_bchw, frame2_bchw), uint8 (B, 3, size, size) each:
    the shared crop, flip and resize of every pair, not yet normalised (``normalize``).

    Each pair draws its own crop and flip from ``generator`` in batch order, so pair i equals
    ``crop_resize_pair`` with ``sample_pair_crop`` called pair by pair with the same generator;
    ``crops`` gives them instead (``sample_batch_crops``, when something else must follow the
    same crops). The two frames come back as two separately allocated contiguous tensors (the
    online and target branches take one each); ``out_frames`` supplies them instead, e.g. in
    shared memory. A quarter of the float32 bytes: what a loader worker ships to training.
    """
    count = len(pairs_2hwc)
    shape = (count, 3, size, size)
    if out_frames is None:
        out_frames = (torch.empty(shape, dtype=torch.uint8), torch.empty(shape, dtype=torch.uint8))
    for out in out_frames:
        if tuple(out.shape) != shape or out.dtype != torch.uint8:
            raise ValueError(f"out_frames must be uint8 {shape}, got {tuple(out.shape)} {out.dtype}")
    for index in range(count):
        pair_2hwc = pairs_2hwc[index]
        crop = crops[index] if crops is not None else sample_pair_crop(pair_2hwc.shape[1], pair_2hwc.shape[2], generator)
        resized_2chw = crop_resize_pair(pair_2hwc, crop, size)
        out_frames[0][index].copy_(resized_2chw[0])
        out_frames[1][index].copy_(resized_2chw[1])
    return out_frames


def augment_pair_batch(
    pairs_2hwc: Sequence[torch.Tensor] | torch.Tensor,
    size: int,
    generator: torch.Generator,
    crops: Sequence[PairCrop] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``resize_pair_batch`` then ``normalize``: (frame1_bchw, frame2_bchw), float32
    (B, 3, size, size) each, pair i equal to ``augment_pair`` called pair by pair with the same
    generator."""
    frame1_bchw, frame2_bchw = resize_pair_batch(pairs_2hwc, size, generator, crops=crops)
    return normalize(frame1_bchw), normalize(frame2_bchw)


def crop_cell_map(map_hw: torch.Tensor, crop: PairCrop, cell: int, grid: int) -> torch.Tensor:
    """A per-cell map of a frame (cells of ``cell`` × ``cell`` frame pixels, e.g. the stored
    motion map) seen through a pair's crop and flip: float32 (grid * grid,), row-major like
    ``mask_bl``, each entry the map's mean over the frame pixels of one patch of the crop
    (the crop resized to grid × grid patches, as ``crop_resize_pair`` resizes the frames)."""
    pixels_hw = map_hw.float().repeat_interleave(cell, dim=0).repeat_interleave(cell, dim=1)
    region_hw = pixels_hw[crop.top : crop.top + crop.height, crop.left : crop.left + crop.width]
    if crop.flip:
        region_hw = region_hw.flip(1)
    return F.adaptive_avg_pool2d(region_hw[None, None], grid).flatten()
