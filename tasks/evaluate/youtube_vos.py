"""YouTube-VOS scored by its own semantics, not DAVIS's (docs/evaluate.md, "YouTube-VOS").

An object may first appear after frame 0, and object ids need not be 1..n. Each object is
propagated from the frame its mask first appears in (``VideoRecord.object_first_frames``):
objects that appear together start one propagation, whose first frame holds their given masks
and background elsewhere. Each object is then scored on the annotated frames after its first,
with DAVIS's per-frame J (region IoU) and F (boundary F-measure) and per-object mean, recall and
decay; the sequence and the summary are means over objects. A 255 band in a ground-truth mask
counts as background, as in DAVIS. Only videos whose masks hold every object in every annotated
frame (``mask_semantics == "complete"``, YouTube-VOS train) get here: a valid or test video's
masks hold each object only where it first appears, so nothing after it can be scored
(``tasks.evaluate.videos`` lists it as not evaluable). The challenge's seen/unseen split needs
the training categories and is not computed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from storage_schemas.benchmark import EvaluateConfig, SequenceResult
from storage_schemas.layout import FRAMES, MASKS, NOT_ANNOTATED
from tasks.evaluate.features import Clock, iter_features
from tasks.evaluate.outputs import VideoOutputs
from tasks.evaluate.overlays import draw_mask_overlay, overlay_frames, save_palette_png
from tasks.evaluate.scores import DAVIS_KEYS, davis_metrics
from tasks.evaluate.video import predicted_ids
from tasks.evaluate.videos import LabelledVideo, NotEvaluable
from tasks.io.store import Snapshot
from vmac_core import metrics
from vmac_core.label_grid import geometry_for


@dataclass(frozen=True)
class FramesFrom:
    """The stored frames from ``start`` on, as ``iter_features`` reads them ((T, H, W, 3), sliced)."""

    frames: object
    start: int

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.frames.shape[0] - self.start, *self.frames.shape[1:])

    def __getitem__(self, index: slice) -> np.ndarray:
        return self.frames[self.start + index.start:self.start + index.stop]


def evaluate_first_appearance(encoder: torch.nn.Module, video: LabelledVideo, snapshot: Snapshot,
                              config: EvaluateConfig, device: torch.device, outputs: VideoOutputs) -> SequenceResult:
    """Propagate each object from its first appearance and score it on the annotated frames after.

    Reads the version folder ``snapshot`` (the run's one snapshot of the store) names. Raises
    NotEvaluable when no object has an annotated frame after its first."""
    group = snapshot.group(video.video_id)
    frames, masks = group[FRAMES], group[MASKS]
    geom = geometry_for(tuple(frames.shape[1:3]), config.features.stride, config.features.short_side)
    first = dict(sorted(video.record.object_first_frames.items()))
    clock, began = Clock(), time.perf_counter()
    gt_thw = np.asarray(masks[:])
    merged_thw = np.zeros_like(gt_thw)  # every object's prediction; later starts drawn over earlier
    per_frame: dict[int, tuple[list[float], list[float]]] = {}
    for start in sorted(set(first.values())):
        objects = [k for k, f in first.items() if f == start]
        merged_thw[start][np.isin(gt_thw[start], objects)] = gt_thw[start][np.isin(gt_thw[start], objects)]
        lookup = np.zeros(256, np.uint8)
        lookup[objects] = np.arange(1, len(objects) + 1)
        feats = iter_features(encoder, FramesFrom(frames, start), geom, config.features.effective_stage_stride,
                              config.features.batch_size, device, clock)
        with torch.inference_mode():
            for t, pred in predicted_ids(feats, lookup[gt_thw[start]], len(objects) + 1, geom, config, device):
                if t == 0:
                    continue
                for label, k in enumerate(objects, start=1):
                    merged_thw[start + t][pred == label] = k
                    _score_frame(per_frame.setdefault(k, ([], [])), pred == label, gt_thw[start + t], k)
    seconds = time.perf_counter() - began
    return _result(video, frames, geom, first, per_frame, merged_thw, gt_thw, clock, seconds, config, outputs)


def _score_frame(scores: tuple[list[float], list[float]], pred_hw: np.ndarray, gt_ids_hw: np.ndarray, k: int) -> None:
    """Append frame's J and F of object ``k`` when the frame is annotated (not all 255); a 255 band
    is background, as davis2017-evaluation scores it."""
    if (gt_ids_hw == NOT_ANNOTATED).all():
        return
    truth = (gt_ids_hw == k)[None]
    scores[0].append(float(metrics.region_jaccard(truth, pred_hw[None])[0]))
    scores[1].append(float(metrics.boundary_f_measure(truth, pred_hw[None])[0]))


def _result(video, frames, geom, first, per_frame, merged_thw, gt_thw, clock, seconds, config, outputs) -> SequenceResult:
    per_object = {}
    for k, (j, f) in sorted(per_frame.items()):
        if not j:
            continue
        (jm, jr, jd), (fm, fr, fd) = metrics.db_statistics(np.array(j)), metrics.db_statistics(np.array(f))
        per_object[str(k)] = dict(zip(DAVIS_KEYS.values(), (jm, jr, jd, fm, fr, fd)))
    if not per_object:
        raise NotEvaluable("no object has an annotated frame after the one it first appears in: nothing to score")
    t_total = frames.shape[0]
    if outputs.overlay is not None:
        shown = overlay_frames(t_total, config.overlay_frames)
        draw_mask_overlay(frames, {t: (merged_thw[t], gt_thw[t]) for t in shown}, outputs.overlay,
                          lambda t: video.frame_file(t, ""))
    if outputs.masks_dir is not None:
        for t in range(t_total):
            save_palette_png(merged_thw[t], outputs.masks_dir / video.frame_file(t))
    scored = {t for k, f in first.items() for t in range(f + 1, t_total) if not (gt_thw[t] == NOT_ANNOTATED).all()}
    return SequenceResult(
        video_id=video.video_id, sequence=video.sequence, benchmark="youtube-vos", frames=t_total,
        scored_frames=len(scored), labels=len(first) + 1, stored_size=geom.stored, input_size=geom.input,
        feature_size=geom.feature, metrics=davis_metrics(list(per_object.values())), per_object=per_object,
        objects_scored=sorted(int(k) for k in per_object), first_frames={str(k): f for k, f in first.items()},
        seconds_features=clock.features, seconds_propagation=seconds - clock.features,
    )
