"""Labels on the propagation grid: object/class ids and keypoints to and from feature cells.

Label propagation (``vmac_core.propagation``) carries soft labels on the grid of feature cells.
This module converts a video's labels into that grid and predictions back out of it, in the
CRW protocol (Jabri et al. 2020, ajabri/videowalk ``test.py``, ``data/jhmdb.py``):

* id maps become one-hot area averages per cell (:func:`labels_to_onehot`); predictions are
  upsampled bilinearly and the argmax taken (:func:`probs_to_labels`);
* keypoints become unnormalised Gaussians at their sub-cell position
  (:func:`keypoints_to_heatmaps`) and are read back as the weighted mean of the top cells
  (:func:`heatmaps_to_keypoints`).

:class:`Geometry` holds one video's sizes, from the stored frames (where metrics are computed)
through the encoder input to the grid; the ``*_to_labels`` / ``labels_to_*`` functions go
between stored-resolution labels and the grid through it (docs/evaluate.md, "Geometry").

Coordinate convention throughout: a feature cell covers a stride x stride block of pixels and
sits at that block's centre, i.e. ``align_corners=False`` (u = (x + 0.5) * w / W - 0.5), and
the image sits at the top-left of the ``covered`` rectangle (feature cells x stride).

Torch and numpy only, no file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vmac_core.architectures import ENCODER_STRIDE

# Id given to pixels beyond the image: outside [0, K) for every K, so in no class.
_NO_LABEL = -1


# --- one video's sizes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """Sizes of one video's pipeline, all (height, width) in pixels or cells.

    stored: frames in the store (metrics are computed here); input: fed to the encoder;
    padded: input padded bottom/right to a multiple of the encoder stride (``ENCODER_STRIDE``,
    32); feature: the propagation grid, ceil(input / stride) cells; covered: feature * stride,
    the pixel rectangle the grid covers (image at its top-left).
    """

    stored: tuple[int, int]
    input: tuple[int, int]
    padded: tuple[int, int]
    feature: tuple[int, int]
    stride: int

    @property
    def covered(self) -> tuple[int, int]:
        return self.feature[0] * self.stride, self.feature[1] * self.stride

    @property
    def resized(self) -> bool:
        return self.input != self.stored

    @property
    def scale(self) -> tuple[float, float]:
        """(sy, sx): input pixels per stored pixel."""
        return self.input[0] / self.stored[0], self.input[1] / self.stored[1]


def geometry_for(stored: tuple[int, int], stride: int, short_side: int | None = None) -> Geometry:
    """The geometry of frames stored at ``stored`` (H, W), read at ``stride`` pixels per cell.

    short_side: resize so the short side is this many pixels (rounded, aspect kept); None or 0
    keeps the stored size.
    """
    h, w = stored
    if short_side:
        s = short_side / min(h, w)
        h, w = max(1, round(h * s)), max(1, round(w * s))
    pad = lambda n: -(-n // ENCODER_STRIDE) * ENCODER_STRIDE
    return Geometry(tuple(stored), (h, w), (pad(h), pad(w)), (-(-h // stride), -(-w // stride)), stride)


# --- labels at feature resolution ------------------------------------------------------------------


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


# --- stored-resolution labels <-> the grid, through a Geometry --------------------------------------


def _pad_ids(ids_hw: np.ndarray, geom: Geometry) -> torch.Tensor:
    """Stored-resolution ids (H, W) -> long ids at input resolution (nearest), padded with an id
    in no class to the covered size."""
    ids = torch.from_numpy(np.ascontiguousarray(ids_hw)).long()
    if geom.resized:
        ids = F.interpolate(ids[None, None].float(), size=geom.input, mode="nearest")[0, 0].long()
    (h, w), (ch, cw) = geom.input, geom.covered
    return F.pad(ids, (0, cw - w, 0, ch - h), value=_NO_LABEL)


def ids_to_labels(ids_hw: np.ndarray, num_labels: int, geom: Geometry) -> torch.Tensor:
    """(K, h, w) soft one-hot labels of a stored-resolution id map (H, W); ids outside [0, K)
    (e.g. 255, not annotated) count for none."""
    return labels_to_onehot(_pad_ids(ids_hw, geom), num_labels, geom.feature)


def labels_to_ids(probs_khw: torch.Tensor, geom: Geometry) -> np.ndarray:
    """Soft labels (K, h, w) -> uint8 ids (H, W) at the stored resolution."""
    ids = probs_to_labels(probs_khw.float().cpu(), geom.covered)[: geom.input[0], : geom.input[1]]
    if geom.resized:
        ids = F.interpolate(ids[None, None].float(), size=geom.stored, mode="nearest")[0, 0].long()
    return ids.to(torch.uint8).numpy()


def keypoints_to_labels(kp_j3: np.ndarray, geom: Geometry, sigma: float) -> torch.Tensor:
    """(J, h, w) Gaussian heatmaps of stored-resolution keypoints, rows (x, y, visible);
    ``sigma`` in feature cells."""
    sy, sx = geom.scale
    kp = torch.as_tensor(kp_j3, dtype=torch.float32).clone()
    # Pixel centres sit at integers (0-based): (x + 0.5) * s - 0.5 maps centre to centre.
    kp[:, 0] = (kp[:, 0] + 0.5) * sx - 0.5
    kp[:, 1] = (kp[:, 1] + 0.5) * sy - 0.5
    return keypoints_to_heatmaps(kp, geom.covered, geom.feature, sigma=sigma)


def labels_to_keypoints(heat_jhw: torch.Tensor, geom: Geometry, topk: int) -> np.ndarray:
    """(J, 2) rows (x, y) at the stored resolution from propagated heatmaps (J, h, w); NaN where
    a map is empty."""
    xy = heatmaps_to_keypoints(heat_jhw.float().cpu(), geom.covered, topk=topk)
    sy, sx = geom.scale
    xy[:, 0] = (xy[:, 0] + 0.5) / sx - 0.5
    xy[:, 1] = (xy[:, 1] + 0.5) / sy - 0.5
    return xy.numpy()
