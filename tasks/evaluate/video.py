"""Propagation of one stored video: frame 0's labels carried through its frames, then scored.

Object ids (DAVIS) and part classes (VIP) travel as soft one-hot labels, keypoints (JHMDB) as
Gaussian heatmaps (``vmac_core.label_grid``); ``vmac_core.propagation.propagate`` consumes the
features lazily, so at most ``batch_size`` frames plus the propagation context are in memory.
Predictions are scored at the stored resolution (``vmac_core.metrics``), drawn as overlays, and
with ``save_masks`` written in the DAVIS results layout (docs/evaluate.md, "Protocol as
implemented").
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch

from storage_schemas.benchmark import EvaluateConfig, SequenceResult
from storage_schemas.layout import FRAMES, KEYPOINTS, MASKS, NOT_ANNOTATED
from tasks.evaluate.features import Clock, iter_features
from tasks.evaluate.outputs import VideoOutputs
from tasks.evaluate.overlays import draw_keypoint_overlay, draw_mask_overlay, overlay_frames, save_palette_png
from tasks.evaluate.scores import DAVIS_KEYS, davis_metrics, joint_counts, pck_metrics
from tasks.evaluate.videos import LabelledVideo, NotEvaluable
from tasks.io.store import Snapshot, UnreadableFramesError, check_claimed_shape
from vmac_core import metrics
from vmac_core.label_grid import (
    Geometry,
    geometry_for,
    ids_to_labels,
    keypoints_to_labels,
    labels_to_ids,
    labels_to_keypoints,
)
from vmac_core.propagation import PropagationConfig, propagate


def propagation_config(config: EvaluateConfig) -> PropagationConfig:
    """The propagation knobs of ``config``: the config holds ``vmac_core``'s dataclass itself."""
    return config.propagation


def evaluate_video(encoder: torch.nn.Module, video: LabelledVideo, snapshot: Snapshot, config: EvaluateConfig,
                   device: torch.device, outputs: VideoOutputs) -> SequenceResult:
    """Propagate frame 0's labels through one stored video and score the result.

    Reads the version folder ``snapshot`` (the run's one snapshot of the store) names. Raises
    NotEvaluable when the protocol cannot score the video (frame 0 unlabelled or without an
    object, no annotated frame left to score) or its arrays cannot be read (``check_stored_shapes``).
    """
    group = snapshot.group(video.video_id)
    frames = group[FRAMES]
    check_stored_shapes(group, video.benchmark)
    geom = geometry_for(tuple(frames.shape[1:3]), config.features.stride, config.features.short_side)
    clock = Clock()
    feats = iter_features(encoder, frames, geom, config.features.effective_stage_stride, config.features.batch_size,
                          device, clock)
    run = _propagate_keypoints if video.benchmark == "jhmdb" else _propagate_masks
    return run(feats, clock, video, group, geom, config, device, outputs)


def check_stored_shapes(group, benchmark: str) -> None:
    """NotEvaluable, before anything is read, when the video's frames or masks claim more than the
    store holds or frames too large to read (a crafted or damaged store: reading would allocate
    what the header claims), or when the masks' (T, H, W) is not the frames'."""
    frames = group[FRAMES]
    arrays = [frames] if benchmark == "jhmdb" else [frames, group[MASKS]]
    try:
        for array in arrays:
            check_claimed_shape(array)
    except UnreadableFramesError as exc:
        raise NotEvaluable(str(exc)) from None
    if benchmark != "jhmdb" and tuple(arrays[1].shape[:3]) != tuple(frames.shape[:3]):
        raise NotEvaluable(f"its masks are {' × '.join(map(str, arrays[1].shape[:3]))}, its frames "
                           f"{' × '.join(map(str, frames.shape[:3]))}: not one video's")


def _propagate_keypoints(feats, clock: Clock, video: LabelledVideo, group, geom: Geometry, config: EvaluateConfig,
                         device: torch.device, outputs: VideoOutputs) -> SequenceResult:
    """JHMDB: keypoints travel as Gaussian heatmaps; PCK over frames 1..T-1."""
    frames = group[FRAMES]
    t_total = frames.shape[0]
    began = time.perf_counter()
    keypoints_tj3 = np.asarray(group[KEYPOINTS][:], dtype=np.float32)
    first = keypoints_to_labels(keypoints_tj3[0], geom, config.heatmap_sigma)
    pred_tj2 = np.full((t_total, keypoints_tj3.shape[1], 2), np.nan, np.float32)
    pred_tj2[0] = keypoints_tj3[0, :, :2]
    with torch.inference_mode():
        for t, heat in enumerate(propagate(feats, first.to(device), propagation_config(config)), start=1):
            pred_tj2[t] = labels_to_keypoints(heat, geom, config.keypoint_topk)
    seconds = time.perf_counter() - began
    # Frame 0 (the given keypoints) is not scored by metrics.pck.
    scores = metrics.pck(pred_tj2, keypoints_tj3[..., :2], keypoints_tj3[..., 2] > 0, config.pck_thresholds)
    if outputs.overlay is not None:
        draw_keypoint_overlay(frames, pred_tj2, keypoints_tj3, config.overlay_frames, outputs.overlay,
                              lambda t: video.frame_file(t, ""))
    return SequenceResult(
        video_id=video.video_id, sequence=video.sequence, benchmark="jhmdb", frames=t_total,
        scored_frames=t_total - 1, labels=keypoints_tj3.shape[1], stored_size=geom.stored, input_size=geom.input,
        feature_size=geom.feature, metrics=pck_metrics(scores, config.pck_thresholds),
        joint_counts=joint_counts(scores),
        seconds_features=clock.features, seconds_propagation=seconds - clock.features,
    )


class _DavisScores:
    """DAVIS scores whole sequences (J&F), so every frame's ids are kept as uint8: 2 x T x H x W bytes."""

    def __init__(self, num_labels: int, first_ids: np.ndarray, object_ids: list[int]) -> None:
        self.num_labels = num_labels
        self.pred: list[np.ndarray] = []
        self.gt: list[np.ndarray] = []
        present = set(np.unique(first_ids).tolist()) - {0, NOT_ANNOTATED}
        self.scored = list(range(1, num_labels))
        # Objects that frame 0 does not show are never propagated: within 1..max they are scored
        # (as davis2017-evaluation does, whose object count is frame 0's largest id), above it not.
        self.missing = sorted(set(object_ids) - present)

    def add(self, t: int, pred_ids: np.ndarray, gt_ids: np.ndarray) -> None:
        self.pred.append(pred_ids)
        self.gt.append(gt_ids)

    def result(self) -> dict:
        """The SequenceResult fields: metrics, per_object and scored_frames."""
        pred_thw, gt_thw = np.stack(self.pred), np.stack(self.gt)
        annotated = ~(gt_thw == NOT_ANNOTATED).all(axis=(1, 2))
        if annotated.sum() < 3:
            listed = ", ".join(str(t) for t in np.flatnonzero(annotated))
            raise NotEvaluable(
                f"only frame{'s' if annotated.sum() > 1 else ''} {listed} of {len(gt_thw)} annotated: DAVIS scores the "
                "annotated frames between the first and the last, and none is left")
        # davis2017-evaluation scores frames 1..T-2 of fully annotated sequences; frames without
        # an annotation file (all NOT_ANNOTATED) are left out before that.
        scores = metrics.davis_sequence_scores(pred_thw[annotated], gt_thw[annotated], range(1, self.num_labels))
        per_object = {str(k): {name: float(row[key]) for key, name in DAVIS_KEYS.items()}
                      for k, row in scores["objects"].items()}
        return {"metrics": davis_metrics(list(per_object.values())), "per_object": per_object,
                "scored_frames": int(scores["num_frames_scored"]), "objects_scored": self.scored,
                "objects_missing_from_first_frame": self.missing}


class _VipScores:
    """VIP sums one confusion matrix over the annotated frames 1..T-1 (frame 0 holds the given
    labels); 255 in the ground truth is ignored."""

    def __init__(self, num_labels: int, first_ids: np.ndarray, object_ids: list[int]) -> None:
        self.num_labels = num_labels
        self.confusion = np.zeros((num_labels, num_labels), np.int64)
        self.scored = 0

    def add(self, t: int, pred_ids: np.ndarray, gt_ids: np.ndarray) -> None:
        if t == 0 or (gt_ids == NOT_ANNOTATED).all():
            return
        _check_classes(gt_ids, self.num_labels, f"frame {t}")
        self.confusion += metrics.confusion_matrix(pred_ids, gt_ids, self.num_labels, ignore_index=NOT_ANNOTATED)
        self.scored += 1

    def result(self) -> dict:
        """The SequenceResult fields: metrics, confusion_matrix and scored_frames."""
        if not self.scored:
            raise NotEvaluable("no annotated frame after frame 0: VIP scores the frames after the given one")
        return {"metrics": {"mIoU": float(metrics.miou(self.confusion))},
                "confusion_matrix": self.confusion.tolist(), "scored_frames": self.scored}


def _count_labels(first_ids: np.ndarray, benchmark: str, vip_classes: int) -> int:
    """Propagated channels: VIP's classes, or DAVIS's objects 1..max of frame 0 plus background.

    Raises NotEvaluable when frame 0 is not annotated or (DAVIS) holds no object.
    """
    if (first_ids == NOT_ANNOTATED).all():
        raise NotEvaluable("frame 0 is not annotated: propagation starts from the first frame's labels")
    if benchmark == "vip":
        _check_classes(first_ids, vip_classes, "frame 0")
        return vip_classes
    num_labels = int(first_ids[first_ids != NOT_ANNOTATED].max()) + 1
    if num_labels < 2:
        raise NotEvaluable("frame 0 shows no object: there is nothing to propagate")
    return num_labels


def _check_classes(ids: np.ndarray, classes: int, where: str) -> None:
    """NotEvaluable when VIP ground truth holds a class id outside 0..classes-1 (255 is void)."""
    beyond = np.unique(ids[(ids >= classes) & (ids != NOT_ANNOTATED)])
    if beyond.size:
        raise NotEvaluable(f"VIP masks hold class id(s) {', '.join(map(str, beyond.tolist()))} in {where}, outside "
                           f"the {classes} classes scored (0-{classes - 1})")


def predicted_ids(feats, first_ids: np.ndarray, num_labels: int, geom: Geometry, config: EvaluateConfig,
                   device: torch.device) -> Iterator[tuple[int, np.ndarray]]:
    """(t, uint8 ids (H, W) at the stored resolution) for frame 0 (the given ids), then each
    propagated frame; the caller holds torch.inference_mode."""
    yield 0, first_ids
    first = ids_to_labels(first_ids, num_labels, geom)
    for t, probs in enumerate(propagate(feats, first.to(device), propagation_config(config)), start=1):
        yield t, labels_to_ids(probs, geom)


def _propagate_masks(feats, clock: Clock, video: LabelledVideo, group, geom: Geometry, config: EvaluateConfig,
                     device: torch.device, outputs: VideoOutputs) -> SequenceResult:
    """DAVIS (object ids, J&F over whole sequences) and VIP (classes, one confusion matrix)."""
    frames, masks = group[FRAMES], group[MASKS]
    t_total = frames.shape[0]
    began = time.perf_counter()
    first_ids = np.asarray(masks[0])
    num_labels = _count_labels(first_ids, video.benchmark, config.vip_classes)
    scoring_class = _DavisScores if video.benchmark == "davis" else _VipScores
    scores = scoring_class(num_labels, first_ids, video.record.object_ids)
    shown = set(overlay_frames(t_total, config.overlay_frames))
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    scoring = 0.0  # seconds of reading, scoring and saving inside the loop, not propagation's
    with torch.inference_mode():
        for t, pred_ids in predicted_ids(feats, first_ids, num_labels, geom, config, device):
            mark = time.perf_counter()
            gt_ids = first_ids if t == 0 else np.asarray(masks[t])
            scores.add(t, pred_ids, gt_ids)
            if t in shown:
                kept[t] = (pred_ids, gt_ids)
            if outputs.masks_dir is not None:
                save_palette_png(pred_ids, outputs.masks_dir / video.frame_file(t))
            scoring += time.perf_counter() - mark
    seconds = time.perf_counter() - began - scoring
    if outputs.overlay is not None:
        draw_mask_overlay(frames, kept, outputs.overlay, lambda t: video.frame_file(t, ""))
    return SequenceResult(
        video_id=video.video_id, sequence=video.sequence, benchmark=video.benchmark, frames=t_total,
        labels=num_labels, stored_size=geom.stored, input_size=geom.input, feature_size=geom.feature,
        **scores.result(), seconds_features=clock.features, seconds_propagation=seconds - clock.features,
    )
