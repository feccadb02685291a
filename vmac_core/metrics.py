"""Benchmark metrics for label propagation: DAVIS J&F, VIP mIoU, JHMDB PCK.

DAVIS follows davis2017-evaluation (``davis2017/metrics.py``, ``utils.py``,
``evaluation.py``, semi-supervised task):

* objects are the ids 1..max id of the first ground-truth frame; 255 (void) in the
  ground truth counts as background, as it does there (their void mask is taken
  after the masks were made boolean, so it is always empty);
* J is ``db_eval_iou`` (an empty prediction of an empty object scores 1);
* F is ``f_measure``: ``seg2bmap`` boundaries, dilated by a disk of radius
  ceil(0.008 x image diagonal) (skimage ``disk``: x^2 + y^2 <= r^2; cv2.dilate
  with constant zero border), precision and recall of the matched boundary pixels;
* first and last frames are not scored; per object, mean, recall (fraction of
  frames > 0.5) and decay (``db_statistics``: 4 bins, mean of first minus mean of
  last) over the remaining frames;
* the dataset numbers are means over all objects of all sequences (not over
  sequences), J&F = (J_mean + F_mean) / 2.

Known difference: ``db_statistics`` casts the bin edges to uint8, which wraps for
sequences longer than 256 scored frames; here they are ints (no DAVIS sequence is
that long, so DAVIS numbers are unchanged).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


# --------------------------------------------------------------------------- DAVIS


def region_jaccard(gt_thw: np.ndarray, pred_thw: np.ndarray) -> np.ndarray:
    """J per frame: IoU of boolean masks (T, H, W) -> (T,); 1 where both are empty."""
    gt = np.asarray(gt_thw, dtype=bool)
    pred = np.asarray(pred_thw, dtype=bool)
    inter = np.sum(gt & pred, axis=(-2, -1))
    union = np.sum(gt | pred, axis=(-2, -1))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def seg2bmap(seg_hw: np.ndarray) -> np.ndarray:
    """One-pixel boundaries of a boolean mask (H, W) -> bool (H, W), as davis2017's _seg2bmap.

    A pixel is a boundary if it differs from its east, south or south-east
    neighbour (outside the image counts as background); the last row and column
    compare only along the image edge and the bottom-right pixel is never a boundary.
    Boundaries sit half a pixel towards the origin from the true segment edge.
    """
    seg = np.asarray(seg_hw, dtype=bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """skimage.morphology.disk: bool (2r+1, 2r+1), True where x^2 + y^2 <= r^2."""
    offsets = np.arange(-radius, radius + 1)
    return offsets[None, :] ** 2 + offsets[:, None] ** 2 <= radius ** 2


def dilate(masks_nhw: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of (N, H, W) masks by disk(radius), zero outside the image.

    Same result as cv2.dilate(mask, disk(radius)) with its default border. The disk is
    decomposed into rows: for each row offset dy it spans |dx| <= floor(sqrt(r^2 - dy^2)),
    so the dilation is the OR over dy of the mask shifted by dy and dilated horizontally
    by that half-width. A horizontal dilation is a box count from a cumulative sum, so
    the cost does not grow with the width of the box (a 2-D convolution or max-pool
    with the 17 x 17 disk at 480p is ~10x slower).
    """
    masks = torch.from_numpy(np.ascontiguousarray(masks_nhw, dtype=bool))
    n, height, width = masks.shape
    # cum[..., i] = number of set pixels in columns [0, i).
    cum = F.pad(torch.cumsum(masks, dim=-1, dtype=torch.int32), (1, 0))
    cols = torch.arange(width)
    out = torch.zeros((n, height, width), dtype=torch.bool)
    horizontal: dict[int, torch.Tensor] = {}
    for dy in range(-radius, radius + 1):
        half = math.isqrt(radius * radius - dy * dy)
        if half not in horizontal:
            hi = (cols + half + 1).clamp(max=width)
            lo = (cols - half).clamp(min=0)
            horizontal[half] = (cum[..., hi] - cum[..., lo]) > 0
        rows = horizontal[half]
        # Output row y takes input row y + dy (the disk is symmetric, so the sign is moot).
        if dy >= 0:
            out[:, : height - dy] |= rows[:, dy:]
        else:
            out[:, -dy:] |= rows[:, : height + dy]
    return out.numpy()


def boundary_f_measure(gt_thw: np.ndarray, pred_thw: np.ndarray,
                       bound_th: float = 0.008) -> np.ndarray:
    """F per frame: boundary F-measure of boolean masks (T, H, W) -> (T,).

    bound_th < 1 is a fraction of the image diagonal: the tolerance is
    ceil(bound_th * sqrt(H^2 + W^2)) pixels (8 at 480 x 854); bound_th >= 1 is pixels.
    """
    gt = np.asarray(gt_thw, dtype=bool)
    pred = np.asarray(pred_thw, dtype=bool)
    height, width = gt.shape[-2:]
    bound_pix = int(bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(height, width)))
    gt_b = np.stack([seg2bmap(m) for m in gt])
    pred_b = np.stack([seg2bmap(m) for m in pred])
    dil = dilate(np.concatenate([gt_b, pred_b]), bound_pix)
    gt_dil, pred_dil = dil[: len(gt)], dil[len(gt):]
    n_pred = pred_b.sum(axis=(-2, -1)).astype(np.float64)
    n_gt = gt_b.sum(axis=(-2, -1)).astype(np.float64)
    pred_match = (pred_b & gt_dil).sum(axis=(-2, -1))
    gt_match = (gt_b & pred_dil).sum(axis=(-2, -1))
    # Their conventions for empty boundaries: nothing predicted -> precision 1,
    # nothing to find -> recall 1.
    precision = np.where(n_pred == 0, 1.0, pred_match / np.maximum(n_pred, 1))
    recall = np.where(n_gt == 0, 1.0, gt_match / np.maximum(n_gt, 1))
    precision = np.where((n_pred > 0) & (n_gt == 0), 0.0, precision)
    recall = np.where((n_pred == 0) & (n_gt > 0), 0.0, recall)
    denom = precision + recall
    return np.where(denom == 0, 0.0, 2 * precision * recall / np.where(denom == 0, 1, denom))


def db_statistics(per_frame: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of per-frame scores (N,), as davis2017's utils.db_statistics.

    recall: fraction of frames scoring > 0.5. decay: frames are split into 4 bins with
    edges round(linspace(1, N, 5)) - 1 (inclusive ends, so neighbouring bins share a
    frame); decay = mean(first bin) - mean(last bin). NaN when N == 0.
    """
    values = np.asarray(per_frame, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(np.nanmean(values))
    recall = float(np.nanmean(values > 0.5))
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(int)
    bins = [values[ids[i]:ids[i + 1] + 1] for i in range(4)]
    decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


def davis_sequence_scores(pred_thw, gt_thw, object_ids: Sequence[int] | None = None,
                          bound_th: float = 0.008) -> dict:
    """DAVIS J and F of one sequence, per object.

    pred_thw, gt_thw: (T, H, W) integer object-id maps (numpy or torch), frame 0 included.
    object_ids: objects to score; default 1..max id in gt frame 0 (255 excluded), as
        davis2017-evaluation.
    Frames 1..T-2 are scored (first and last excluded).
    Returns {"objects": {id: {"J": [per frame], "F": [...], "J_mean", "J_recall",
    "J_decay", "F_mean", "F_recall", "F_decay"}}, "J_mean", "F_mean", "JF_mean",
    "num_frames_scored"}; the sequence means are over its objects.
    """
    pred = _as_numpy(pred_thw)
    gt = _as_numpy(gt_thw).copy()
    if pred.shape != gt.shape or gt.ndim != 3:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must both be (T, H, W)")
    gt[gt == 255] = 0
    if object_ids is None:
        object_ids = range(1, int(gt[0].max()) + 1)
    pred, gt = pred[1:-1], gt[1:-1]
    objects = {}
    for obj in object_ids:
        obj = int(obj)
        j = region_jaccard(gt == obj, pred == obj)
        f = boundary_f_measure(gt == obj, pred == obj, bound_th)
        j_stats, f_stats = db_statistics(j), db_statistics(f)
        objects[obj] = {
            "J": j.tolist(), "F": f.tolist(),
            "J_mean": j_stats[0], "J_recall": j_stats[1], "J_decay": j_stats[2],
            "F_mean": f_stats[0], "F_recall": f_stats[1], "F_decay": f_stats[2],
        }
    j_mean = _mean([o["J_mean"] for o in objects.values()])
    f_mean = _mean([o["F_mean"] for o in objects.values()])
    return {"objects": objects, "J_mean": j_mean, "F_mean": f_mean,
            "JF_mean": (j_mean + f_mean) / 2, "num_frames_scored": int(len(gt))}


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def davis_summary(sequence_scores: Sequence[dict]) -> dict:
    """Dataset numbers from :func:`davis_sequence_scores` results.

    Means over all objects of all sequences, as davis2017-evaluation's "Global" row.
    Returns {"J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay",
    "JF_mean", "num_objects"}.
    """
    objects = [o for seq in sequence_scores for o in seq["objects"].values()]
    out = {key: _mean([o[key] for o in objects])
           for key in ("J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay")}
    out["JF_mean"] = (out["J_mean"] + out["F_mean"]) / 2
    out["num_objects"] = len(objects)
    return out


# --------------------------------------------------------------------------- VIP


def resize_labels_nearest(labels_hw: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of an integer label map (H, W) -> (size[0], size[1]).

    torch 'nearest' (source index floor(dst * in / out)), the same rule as cv2.INTER_NEAREST.
    """
    labels_hw = torch.as_tensor(labels_hw)
    if tuple(labels_hw.shape) == tuple(size):
        return labels_hw
    # float64 holds every int32 id exactly.
    up = F.interpolate(labels_hw[None, None].to(torch.float64), size=tuple(size), mode="nearest")
    return up[0, 0].to(labels_hw.dtype)


def confusion_matrix(pred, gt, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """Confusion counts (num_classes, num_classes), rows = ground truth, columns = prediction.

    pred, gt: integer maps of equal shape (any number of dims; numpy or torch). Pixels whose
    gt is ``ignore_index`` are skipped; any other gt or pred outside [0, num_classes) is
    an error. Sum the matrices of all frames of all videos, then call :func:`miou`.
    """
    pred = _as_numpy(pred).astype(np.int64).ravel()
    gt = _as_numpy(gt).astype(np.int64).ravel()
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt differ in size: {pred.size} vs {gt.size}")
    keep = np.ones_like(gt, dtype=bool) if ignore_index is None else gt != ignore_index
    pred, gt = pred[keep], gt[keep]
    for name, x in (("gt", gt), ("pred", pred)):
        if x.size and (x.min() < 0 or x.max() >= num_classes):
            raise ValueError(f"{name} holds ids outside [0, {num_classes}): {x.min()}..{x.max()}")
    counts = np.bincount(gt * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def class_iou(confusion: np.ndarray) -> np.ndarray:
    """IoU per class (num_classes,) from a confusion matrix; NaN for classes absent from
    both ground truth and prediction."""
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def miou(confusion: np.ndarray) -> float:
    """Mean IoU over classes that occur in ground truth or prediction."""
    iou = class_iou(confusion)
    return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")


# --------------------------------------------------------------------------- JHMDB


def pck(pred_tj2, gt_tj2, visible_tj=None, alphas: Sequence[float] = (0.1, 0.2)) -> dict:
    """PCK of one clip (one person), as CRW's eval_pck.py.

    pred_tj2, gt_tj2: (T, J, 2) joint (x, y) in image pixels; visible_tj: (T, J), nonzero
    = scored (default all). Frame 0 (given) is not scored. A joint is correct when its
    distance to the ground truth is <= alpha * 0.6 * the diagonal of that frame's box
    around the visible ground-truth joints. A NaN prediction (a joint lost by
    propagation) counts as wrong.
    Returns {"pck@<alpha>": mean over joints of the per-joint fraction correct (joints
    never scored are left out), "correct@<alpha>": per-joint counts, "total": per-joint
    counts}; pool clips with :func:`pck_summary`.
    """
    pred = _as_numpy(pred_tj2).astype(np.float64)
    gt = _as_numpy(gt_tj2).astype(np.float64)
    if pred.shape != gt.shape or gt.ndim != 3 or gt.shape[-1] != 2:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} must both be (T, J, 2)")
    vis = np.ones(gt.shape[:2], dtype=bool) if visible_tj is None else _as_numpy(visible_tj) != 0
    vis = vis.copy()
    vis[0] = False  # frame 0 is the given label
    # Box of the visible ground-truth joints per frame; frames with none are never used.
    lo = np.where(vis[..., None], gt, np.inf).min(axis=1)  # (T, 2)
    hi = np.where(vis[..., None], gt, -np.inf).max(axis=1)
    scale = 0.6 * np.linalg.norm(np.where(vis.any(1)[:, None], hi - lo, 0.0), axis=-1)  # (T,)
    dist = np.linalg.norm(pred - gt, axis=-1)  # (T, J); NaN prediction -> NaN distance
    out: dict = {"total": vis.sum(0).tolist()}
    for alpha in alphas:
        with np.errstate(invalid="ignore"):
            correct = vis & (dist <= alpha * scale[:, None])
        out[f"correct@{alpha:g}"] = correct.sum(0).tolist()
    out.update(_pck_from_counts(out, alphas))
    return out


def _pck_from_counts(counts: dict, alphas: Sequence[float]) -> dict:
    total = np.asarray(counts["total"], dtype=np.float64)
    scored = total > 0
    res = {}
    for alpha in alphas:
        correct = np.asarray(counts[f"correct@{alpha:g}"], dtype=np.float64)
        res[f"pck@{alpha:g}"] = float(np.mean(correct[scored] / total[scored])) if scored.any() else float("nan")
    return res


def pck_summary(clip_scores: Sequence[dict], alphas: Sequence[float] = (0.1, 0.2)) -> dict:
    """Dataset PCK: per-joint counts pooled over clips, then the mean over joints
    (eval_pck.py's ``computePCK``). Returns {"pck@<alpha>": float, "total": per joint}."""
    total = np.sum([c["total"] for c in clip_scores], axis=0)
    pooled = {"total": total.tolist()}
    for alpha in alphas:
        pooled[f"correct@{alpha:g}"] = np.sum([c[f"correct@{alpha:g}"] for c in clip_scores], axis=0).tolist()
    pooled.update(_pck_from_counts(pooled, alphas))
    return pooled
