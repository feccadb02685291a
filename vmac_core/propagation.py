"""Label propagation with frozen features, in the CRW protocol.

Jabri et al. 2020, "Space-Time Correspondence as a Contrastive Random Walk"
(ajabri/videowalk, ``test.py`` and ``utils/test_utils.py``), which VideoMAC and
SiamMAE use to score DAVIS-2017, VIP and JHMDB. For every target frame t >= 1:

* features are L2-normalised over channels;
* the context is a long-term memory (frame 0 with its given labels) plus a
  short-term memory of the previous ``context`` frames with their predicted soft
  labels;
* the affinity of a target site to a short-term site is its cosine similarity,
  kept only if the two sites are closer than ``radius`` feature cells
  (Euclidean, strict ``<`` as CRW's ``MaskedAttention``); the long-term frame is
  compared with every site, as in CRW, unless ``restrict_first_frame``;
* the ``topk`` largest affinities over the whole context are softmaxed with
  ``temperature`` and used to average the context labels.

Memory is bounded independently of the sequence length T: frames are consumed
from an iterator one at a time, the propagator keeps at most ``context + 1``
frames (features and labels), and the largest affinity block alive is one row of
target tiles against one context frame. The radius restriction is computed blockwise:
target sites are grouped in ``tile x tile`` tiles, each tile is compared with
the (tile + 2 * half)^2 window of context sites that can be within the radius
(one batched matmul per context frame and tile row), and a precomputed disk
mask removes the rest. The top-k over all context frames is a running merge
(top-k of a union is the top-k of the union of per-part top-k's), so the
scores of only one context frame are alive at a time.

Coordinate convention throughout (labels, keypoints, upsampling): a feature
cell covers a block of image pixels and sits at that block's centre, i.e.
``align_corners=False`` (u = (x + 0.5) * w / W - 0.5).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PropagationConfig:
    """Knobs of the CRW label-propagation protocol (defaults are CRW's).

    context: number of previous frames (with predicted labels) in the short-term memory.
    radius: spatial radius in feature cells; a context site is a candidate when
        its distance to the target site is strictly less than this.
    topk: number of context sites averaged per target site.
    temperature: softmax temperature on cosine affinities.
    restrict_first_frame: also restrict the long-term memory (frame 0) to the
        radius. CRW does not (its ``long_mem`` frame is compared with every
        site), which is the default here.
    pad_context: before ``context`` predictions exist, fill the short-term memory
        with copies of frame 0, as CRW's data loaders do by prepending
        ``videoLen`` copies of the first frame. Copies are duplicate candidates, so
        they can take several of the top-k slots. Implemented as a multiplicity:
        no extra features are stored.
    tile: target tile size for the blockwise radius restriction. Affects speed
        and memory only, not results.
    """

    context: int = 20
    radius: float = 12.0
    topk: int = 10
    temperature: float = 0.05
    restrict_first_frame: bool = False
    pad_context: bool = True
    tile: int = 8

    def __post_init__(self) -> None:
        if self.context < 0:
            raise ValueError(f"context must be >= 0, got {self.context}")
        if self.radius <= 0:
            raise ValueError(f"radius must be > 0, got {self.radius}")
        if self.topk < 1:
            raise ValueError(f"topk must be >= 1, got {self.topk}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.tile < 1:
            raise ValueError(f"tile must be >= 1, got {self.tile}")


def window_half_width(radius: float) -> int:
    """Largest |dy| (or |dx|) with dy^2 + dx^2 < radius^2 for integer offsets."""
    return max(int(math.ceil(radius)) - 1, 0)


def _disk_mask_tile(tile: int, half: int, radius: float, device: torch.device) -> torch.Tensor:
    """Which window sites are within the radius of which tile sites.

    Returns a bool tensor (tile*tile, R*R), R = tile + 2*half: entry [i*tile + j, a*R + b]
    says whether window site (a, b) is within ``radius`` of tile site (i, j); window site
    (a, b) sits at offset (a - half - i, b - half - j) from the tile site.
    """
    r_win = tile + 2 * half
    ti = torch.arange(tile, device=device)
    wa = torch.arange(r_win, device=device)
    d = wa[None, :] - half - ti[:, None]  # (tile, R): offset along one axis
    # d2 is indexed [i, j, a, b]: dy comes from (i, a), dx from (j, b).
    d2 = d[:, None, :, None].pow(2) + d[None, :, None, :].pow(2)
    inside = d2.to(torch.float64) < float(radius) ** 2
    return inside.reshape(tile * tile, r_win * r_win)


@dataclass(frozen=True)
class _MemoryFrame:
    """One context frame, stored channels-last and padded so windows are strided views of it.

    keys_pqc: (Hp + 2*half, Wp + 2*half, C + 1) L2-normalised features with the image at
        offset (half, half) and zeros around it. The extra last channel is 0 on image
        sites and -1 on padding; queries carry a large constant there, so padding sites
        score far below any cosine and are never chosen over a real site.
    labels_pqk: (Hp + 2*half, Wp + 2*half, K) soft labels, padded the same way.
    """

    keys_pqc: torch.Tensor
    labels_pqk: torch.Tensor


class LabelPropagator:
    """Streams CRW label propagation, one target frame per :meth:`step`.

    Holds at most ``cfg.context + 1`` frames of features and labels (frame 0 plus
    the short-term memory); :attr:`held_frames` reports how many.
    """

    # Added to a padding site's score (before the temperature): far below any cosine.
    _PAD_PENALTY = 1.0e4

    def __init__(self, first_feats_chw: torch.Tensor, first_labels_khw: torch.Tensor,
                 cfg: PropagationConfig) -> None:
        """first_feats_chw: (C, h, w) features of frame 0; first_labels_khw: (K, h, w)
        soft labels of frame 0 at feature resolution."""
        if first_feats_chw.dim() != 3 or first_labels_khw.dim() != 3:
            raise ValueError("expected feats (C, h, w) and labels (K, h, w)")
        if first_feats_chw.shape[-2:] != first_labels_khw.shape[-2:]:
            raise ValueError(
                f"feature size {tuple(first_feats_chw.shape[-2:])} != label size "
                f"{tuple(first_labels_khw.shape[-2:])}")
        self.cfg = cfg
        self.feat_size = tuple(first_feats_chw.shape[-2:])
        self.num_channels = first_feats_chw.shape[0]
        self.dtype = first_feats_chw.dtype if first_feats_chw.is_floating_point() else torch.float32
        self.device = first_feats_chw.device
        self.half = window_half_width(cfg.radius)
        h, w = self.feat_size
        t = cfg.tile
        self.padded_size = (-(-h // t) * t, -(-w // t) * t)  # (Hp, Wp), multiples of tile
        # Additive score bias (t*t, R*R): 0 inside the radius, -inf-like outside.
        disk = _disk_mask_tile(t, self.half, cfg.radius, self.device)
        self.disk_bias = torch.zeros(disk.shape, dtype=self.dtype, device=self.device).masked_fill(
            ~disk, torch.finfo(self.dtype).min / 4)
        first_keys_chw = self._normalise(first_feats_chw)
        first_labels_khw = first_labels_khw.to(self.device, self.dtype)
        self.first = self._memory_frame(first_keys_chw, first_labels_khw)
        # CRW compares frame 0 with every site: keep it flat as well, (C, h*w) and (h*w, K).
        self.first_keys_cn = None if cfg.restrict_first_frame else first_keys_chw.flatten(1)
        self.first_labels_nk = None if cfg.restrict_first_frame else first_labels_khw.flatten(1).T
        self.recent: deque[_MemoryFrame] = deque(maxlen=cfg.context)

    @property
    def held_frames(self) -> int:
        """Frames whose features are currently stored (frame 0 + short-term memory)."""
        return 1 + len(self.recent)

    def _normalise(self, feats_chw: torch.Tensor) -> torch.Tensor:
        if tuple(feats_chw.shape) != (self.num_channels, *self.feat_size):
            raise ValueError(
                f"expected features of shape {(self.num_channels, *self.feat_size)}, "
                f"got {tuple(feats_chw.shape)}")
        return F.normalize(feats_chw.to(self.device, self.dtype), dim=0)

    def _pad_hwc(self, x_chw: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        """(C, h, w) -> channels-last (Hp + 2*half, Wp + 2*half, C), image at (half, half)."""
        h, w = self.feat_size
        hp, wp = self.padded_size
        x = F.pad(x_chw, (self.half, wp - w + self.half, self.half, hp - h + self.half), value=value)
        return x.permute(1, 2, 0).contiguous()

    def _memory_frame(self, keys_chw: torch.Tensor, labels_khw: torch.Tensor) -> _MemoryFrame:
        """keys_chw: (C, h, w) normalised features; labels_khw: (K, h, w)."""
        pad_flag = torch.zeros((1, *self.feat_size), device=self.device, dtype=self.dtype)
        keys = self._pad_hwc(torch.cat([keys_chw, pad_flag]), value=0.0)
        keys[..., -1] = -1.0
        keys[self.half:self.half + self.feat_size[0], self.half:self.half + self.feat_size[1], -1] = 0.0
        return _MemoryFrame(keys_pqc=keys, labels_pqk=self._pad_hwc(labels_khw))

    def _context(self) -> list[tuple[_MemoryFrame, int, bool]]:
        """(frame, multiplicity, restricted) for every context part, long-term first."""
        cfg = self.cfg
        parts = [(self.first, 1, cfg.restrict_first_frame)]
        copies = cfg.context - len(self.recent) if cfg.pad_context else 0
        if copies > 0:
            parts.append((self.first, copies, True))
        parts.extend((frame, 1, True) for frame in self.recent)
        return parts

    def step(self, feats_chw: torch.Tensor) -> torch.Tensor:
        """Predict the next frame's labels and push it into the short-term memory.

        feats_chw: (C, h, w) features of the target frame.
        Returns (K, h, w) soft labels (each site a convex combination of context labels).
        """
        query_chw = self._normalise(feats_chw)
        h, w = self.feat_size
        hp, wp = self.padded_size
        t = self.cfg.tile
        flag = torch.full((1, h, w), self._PAD_PENALTY, device=self.device, dtype=self.dtype)
        query_cpq = F.pad(torch.cat([query_chw, flag]), (0, wp - w, 0, hp - h))
        parts = self._context()
        bands = [self._predict_band(query_cpq[:, row:row + t], row, parts) for row in range(0, hp, t)]
        probs_khw = torch.cat(bands, dim=1)[:, :h, :w].contiguous()
        if self.cfg.context > 0:
            self.recent.append(self._memory_frame(query_chw, probs_khw))
        return probs_khw

    def _predict_band(self, query_ctq: torch.Tensor, row: int,
                      parts: list[tuple[_MemoryFrame, int, bool]]) -> torch.Tensor:
        """Soft labels (K, tile, Wp) for the row of target tiles at padded rows [row, row + tile).

        query_ctq: (C + 1, tile, Wp) normalised features plus the padding-penalty channel.
        """
        cfg, t = self.cfg, self.cfg.tile
        c1, _, wp = query_ctq.shape
        n_tiles = wp // t
        # (n_tiles, t*t, C+1): tile sites in row-major order, matching _disk_mask_tile.
        query_bsc = query_ctq.view(c1, t, n_tiles, t).permute(2, 1, 3, 0).reshape(n_tiles, t * t, c1)
        best_scores = best_labels = None
        for frame, copies, restricted in parts:
            if restricted:
                scores, labels = self._local_topk(query_bsc, frame, row)
            else:
                scores, labels = self._global_topk(query_bsc[..., :-1])
            if copies > 1:
                reps = min(copies, cfg.topk)
                scores = scores.repeat(1, 1, reps)
                labels = labels.repeat(1, 1, reps, 1)
            best_scores, best_labels = _merge_topk(best_scores, best_labels, scores, labels, cfg.topk)
        weights = torch.softmax(best_scores, dim=-1)  # (n_tiles, t*t, k)
        probs_bsk = torch.einsum("bsn,bsnk->bsk", weights, best_labels)
        # Back to (K, t, n_tiles * t): tiles of one row side by side.
        k = probs_bsk.shape[-1]
        return probs_bsk.view(n_tiles, t, t, k).permute(3, 1, 0, 2).reshape(k, t, n_tiles * t)

    def _local_topk(self, query_bsc: torch.Tensor, frame: _MemoryFrame,
                    row: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k within the radius in one context frame.

        query_bsc: (n_tiles, t*t, C+1). Returns scores (n_tiles, t*t, k') and the chosen
        sites' labels (n_tiles, t*t, k', K), k' = min(topk, window size).
        """
        t, half = self.cfg.tile, self.half
        r_win = t + 2 * half
        n_tiles, sites, c1 = query_bsc.shape
        # The padded maps hold the image at offset `half`, so the window of the tile row
        # starting at target row `row` starts at padded row `row`; tile n's window starts
        # at padded column n * t.
        band_keys = frame.keys_pqc[row:row + r_win]  # (R, Wp + 2*half, C+1), contiguous
        row_stride, col_stride = band_keys.stride(0), band_keys.stride(1)
        keys_bwc = band_keys.as_strided(
            (n_tiles, r_win, r_win, c1), (t * col_stride, row_stride, col_stride, 1),
        ).reshape(n_tiles, r_win * r_win, c1)
        scores = torch.baddbmm(self.disk_bias, query_bsc, keys_bwc.transpose(1, 2),
                               alpha=1.0 / self.cfg.temperature)  # (n_tiles, t*t, R*R)
        k = min(self.cfg.topk, scores.shape[-1])
        top_scores, top_idx = scores.topk(k, dim=-1)
        # Window index (a, b) of tile n -> flat index into the band (R, Wp + 2*half).
        band_width = band_keys.shape[1]
        tile_col = (torch.arange(n_tiles, device=self.device) * t).view(n_tiles, 1, 1)
        flat_idx = (top_idx // r_win) * band_width + top_idx % r_win + tile_col
        band_labels = frame.labels_pqk[row:row + r_win].reshape(r_win * band_width, -1)
        return top_scores, band_labels[flat_idx]

    def _global_topk(self, query_bsc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k over every site of frame 0 (CRW's long-term memory).

        query_bsc: (n_tiles, t*t, C). Returns scores (n_tiles, t*t, k') and labels
        (n_tiles, t*t, k', K); memory is (n_tiles * t*t) x (h*w) for one tile row.
        """
        n_tiles, sites, _ = query_bsc.shape
        scores = (query_bsc.reshape(n_tiles * sites, -1) / self.cfg.temperature) @ self.first_keys_cn
        k = min(self.cfg.topk, scores.shape[-1])
        top_scores, top_idx = scores.topk(k, dim=-1)
        top_labels = self.first_labels_nk[top_idx]  # (n_tiles*sites, k, K)
        return top_scores.view(n_tiles, sites, k), top_labels.view(n_tiles, sites, k, -1)


def _merge_topk(scores_a, labels_a, scores_b, labels_b, k: int):
    """Top-k of the union of two candidate sets. scores (..., n), labels (..., n, K)."""
    if scores_a is None:
        scores, labels = scores_b, labels_b
    else:
        scores = torch.cat([scores_a, scores_b], dim=-1)
        labels = torch.cat([labels_a, labels_b], dim=-2)
    if scores.shape[-1] <= k:
        return scores, labels
    top_scores, idx = scores.topk(k, dim=-1)
    top_labels = torch.gather(labels, -2, idx[..., None].expand(*idx.shape, labels.shape[-1]))
    return top_scores, top_labels


def propagate(features: Iterable[torch.Tensor], first_labels_khw: torch.Tensor,
              cfg: PropagationConfig = PropagationConfig()) -> Iterator[torch.Tensor]:
    """Propagate frame-0 labels through a video, lazily.

    features: iterable of (C, h, w) stride-8 feature maps for frames 0..T-1, consumed
        one at a time (it is never read ahead), so features may be computed on demand.
    first_labels_khw: (K, h, w) soft labels of frame 0 at feature resolution
        (see :func:`labels_to_onehot`, :func:`keypoints_to_heatmaps`).
    Yields (K, h, w) soft labels for frames 1..T-1, on the features' device.
    """
    frames = iter(features)
    try:
        first_feats_chw = next(frames)
    except StopIteration:
        return
    propagator = LabelPropagator(first_feats_chw, first_labels_khw.to(first_feats_chw.device), cfg)
    del first_feats_chw  # the propagator keeps its own normalised copy
    for feats_chw in frames:
        yield propagator.step(feats_chw)


def labels_to_onehot(labels_hw: torch.Tensor, num_classes: int,
                     size: tuple[int, int]) -> torch.Tensor:
    """Soft one-hot labels at feature resolution.

    labels_hw: (H, W) integer class ids; ids outside [0, num_classes) (e.g. 255 = void)
        belong to no class.
    size: (h, w) feature size.
    Returns (K, h, w) float32, K = num_classes: the fraction of each cell's pixels with
    each id (area averaging; cells straddle pixels when H/h is not an integer).
    """
    labels_hw = torch.as_tensor(labels_hw).long()
    valid = (labels_hw >= 0) & (labels_hw < num_classes)
    onehot_hwk = F.one_hot(labels_hw.clamp(0, num_classes - 1), num_classes) * valid[..., None]
    onehot_khw = onehot_hwk.permute(2, 0, 1).to(torch.float32)
    return F.adaptive_avg_pool2d(onehot_khw[None], tuple(size))[0]


def probs_to_labels(probs_khw: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
    """Upsample soft labels bilinearly (align_corners=False, as cv2.resize in CRW), then argmax.

    probs_khw: (K, h, w). out_size: (H, W). Returns (H, W) long class indices.
    """
    up = F.interpolate(probs_khw[None].float(), size=tuple(out_size), mode="bilinear",
                       align_corners=False)[0]
    return up.argmax(dim=0)


def keypoints_to_heatmaps(kp_j3: torch.Tensor, image_size: tuple[int, int],
                          feat_size: tuple[int, int], sigma: float = 0.5) -> torch.Tensor:
    """Gaussian heatmaps of keypoints at feature resolution (JHMDB protocol).

    kp_j3: (J, 3) rows (x, y, visible) in image pixels (0-based); joints with
        visible == 0 get an all-zero map.
    image_size: (H, W); feat_size: (h, w).
    sigma: in feature cells; 0.5 is CRW's JhmdbSet default.
    Returns (J, h, w) float32 with peak value 1 at the joint (unnormalised, as the
    hourglass ``draw_labelmap`` CRW uses). Unlike it, the Gaussian is centred at the
    sub-cell position and not truncated at 3 sigma.
    """
    kp_j3 = torch.as_tensor(kp_j3, dtype=torch.float32)
    (big_h, big_w), (h, w) = image_size, feat_size
    u = (kp_j3[:, 0] + 0.5) * w / big_w - 0.5  # (J,), feature-cell coordinates
    v = (kp_j3[:, 1] + 0.5) * h / big_h - 0.5
    xs = torch.arange(w, dtype=torch.float32, device=kp_j3.device)
    ys = torch.arange(h, dtype=torch.float32, device=kp_j3.device)
    d2 = (xs[None, None, :] - u[:, None, None]) ** 2 + (ys[None, :, None] - v[:, None, None]) ** 2
    heat_jhw = torch.exp(-d2 / (2.0 * sigma ** 2))
    visible = kp_j3[:, 2] > 0
    return heat_jhw * visible[:, None, None]


def heatmaps_to_keypoints(heat_jhw: torch.Tensor, image_size: tuple[int, int],
                          topk: int = 3) -> torch.Tensor:
    """Keypoint positions from (propagated) heatmaps, in image pixels.

    As CRW's ``process_pose``: the mean of the ``topk`` highest cells' coordinates,
    weighted by their values.
    heat_jhw: (J, h, w); image_size: (H, W).
    Returns (J, 2) float32 rows (x, y) in image pixels; NaN for a joint whose map is all
    zero (CRW writes -1 there).
    """
    j, h, w = heat_jhw.shape
    flat = heat_jhw.reshape(j, h * w).float()
    k = min(topk, h * w)
    vals, idx = flat.topk(k, dim=-1)
    total = vals.sum(-1, keepdim=True)
    weights = vals / total.clamp_min(torch.finfo(vals.dtype).tiny)
    u = ((idx % w).float() * weights).sum(-1)
    v = ((idx // w).float() * weights).sum(-1)
    big_h, big_w = image_size
    xy = torch.stack([(u + 0.5) * big_w / w - 0.5, (v + 0.5) * big_h / h - 0.5], dim=-1)
    return xy.masked_fill(total <= 0, float("nan"))
