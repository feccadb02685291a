"""The evaluate stage: frozen-feature label propagation on labelled videos of a store.

For each encoder (an ``encoder.pt`` export, a full pre-training checkpoint, or a seeded random
initialisation of the same architecture as the floor) and each labelled video:

1. frames stream from the store ``batch_size`` at a time, ImageNet-normalised at the stored
   resolution (or resized to ``short_side``), zero-padded bottom/right to a multiple of 32;
2. the encoder runs dense (no mask); the stage at ``stage_stride`` is read and, when deeper than
   the propagation ``stride``, upsampled bilinearly; the grid is cropped to the cells that cover
   the frame (``Geometry``);
3. ``vmac_core.propagation.propagate`` carries frame 0's labels (object ids, VIP classes or JHMDB
   keypoints as Gaussian heatmaps) to frames 1..T-1, consuming features lazily, so at most
   ``batch_size`` frames plus the propagation context are in memory;
4. predictions are scored at the stored resolution (``vmac_core.metrics``), drawn as overlays,
   and with ``save_masks`` written in the DAVIS results layout.

Label and feature grids share one convention: the image sits at the top-left of the
``covered`` rectangle (feature cells x stride), and a cell covers a stride x stride pixel block.

Plain functions, with thin Prefect tasks at the end for ``flows.evaluate``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from storage_schemas import benchmark as bm
from storage_schemas.benchmark import (
    BenchmarkReport,
    CheckpointInfo,
    DataInfo,
    Environment,
    EvaluateConfig,
    FeatureProtocol,
    Protocol,
    SequenceResult,
    SkippedVideo,
    TaskSummary,
    Timing,
    VideoInput,
)
from storage_schemas.layout import (
    FRAMES,
    KEYPOINTS,
    MASKS,
    NOT_ANNOTATED,
    STORE_INFO_ATTR,
    VIDEOS_GROUP,
)
from storage_schemas.lineage import Dataset
from storage_schemas.records import Status, VideoRecord
from tasks.io import lineage
from tasks.io.files import file_sha256
from tasks.io.lineage import code_version
from tasks.io.store import open_store, read_catalog, video_group
from tasks.io.uris import is_url
from vmac_core import metrics
from vmac_core.encoders import ENCODER_STRIDE, ENCODERS, build_encoder
from vmac_core.propagation import (
    PropagationConfig,
    heatmaps_to_keypoints,
    keypoints_to_heatmaps,
    labels_to_onehot,
    probs_to_labels,
    propagate,
)

ONLINE_ENCODER_PREFIX = "online.encoder."
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _logger():
    try:
        return get_run_logger()
    except MissingContextError:  # outside a Prefect run (tests, benchmarks): a plain logger
        return logging.getLogger("vmac.evaluate")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda requested but CUDA is not available")
    return torch.device(name)


# --- encoders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncoderSpec:
    """One encoder to evaluate. ``kind``: encoder (encoder.pt), checkpoint (full) or random-init."""

    name: str
    encoder: str
    kind: str
    path: str | None = None
    seed: int | None = None

    @property
    def random_init(self) -> bool:
        return self.kind == "random-init"


def read_weights(path: str) -> tuple[str, dict[str, torch.Tensor], dict, int | None, str]:
    """(encoder name, dense encoder state_dict, ModelConfig dict, step, kind) of a weights file.

    ``encoder.pt`` holds ``{"config", "encoder", "state_dict", "step"}``; a full checkpoint holds
    ``{"config", "model", ...}`` whose online encoder keys start with ``online.encoder.``.
    """
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "config" not in blob:
        raise ValueError(f"{path}: not a vmac encoder export or checkpoint (no config)")
    config = dict(blob["config"])
    if "state_dict" in blob:
        name = blob.get("encoder") or config.get("encoder")
        return name, blob["state_dict"], config, blob.get("step"), "encoder"
    if "model" in blob:
        state = {k[len(ONLINE_ENCODER_PREFIX):]: v for k, v in blob["model"].items() if k.startswith(ONLINE_ENCODER_PREFIX)}
        if not state:
            raise ValueError(f"{path}: checkpoint has no {ONLINE_ENCODER_PREFIX}* weights")
        return config.get("encoder"), state, config, blob.get("step"), "checkpoint"
    raise ValueError(f"{path}: neither an encoder export (state_dict) nor a checkpoint (model)")


def _weights_name(path: str) -> str:
    """A readable name: the run directory for RUN/encoder.pt, RUN-ckpt-000100 for a checkpoint."""
    p = Path(path)
    if p.name == "encoder.pt":
        stem = p.parent.name or "encoder"
    elif p.parent.name == "checkpoints":
        stem = f"{p.parent.parent.name}-{p.stem}"
    else:
        stem = p.stem
    return _SAFE.sub("_", stem).strip("._-") or "encoder"


def plan_encoders(config: EvaluateConfig) -> list[EncoderSpec]:
    """Checkpoints in the given order, each architecture followed by its random-init floor."""
    specs: list[EncoderSpec] = []
    taken: set[str] = set()

    def unique(name: str) -> str:
        out, n = name, 2
        while out in taken:
            out, n = f"{name}-{n}", n + 1
        taken.add(out)
        return out

    architectures: list[str] = []
    for path in config.checkpoints:
        name, _, _, _, kind = read_weights(path)
        if name not in ENCODERS:
            raise ValueError(f"{path}: unknown encoder {name!r}")
        if config.encoder and name != config.encoder:
            raise ValueError(f"{path} holds a {name}, but --encoder {config.encoder} was given")
        specs.append(EncoderSpec(unique(_weights_name(path)), name, kind, path=path))
        if name not in architectures:
            architectures.append(name)
    if not architectures:
        architectures.append(config.floor_encoder)
    for name in architectures:
        specs.append(EncoderSpec(unique(f"random-init-{name}"), name, "random-init", seed=config.random_init_seed))
    # Group each architecture's checkpoints with its floor (floor last), keeping the given order.
    return sorted(specs, key=lambda s: (architectures.index(s.encoder), s.random_init))


def load_encoder(spec: EncoderSpec, device: torch.device) -> tuple[torch.nn.Module, CheckpointInfo]:
    """The encoder in eval mode on ``device``, and what it is (hash, step, config)."""
    if spec.random_init:
        # A private RNG stream: the floor's weights depend on the seed only, and the caller's
        # global RNG state is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed or 0)
            encoder = build_encoder(spec.encoder)
        info = {"kind": "random-init", "seed": spec.seed, "weights_config": {"encoder": spec.encoder}}
    else:
        name, state, weights_config, step, kind = read_weights(spec.path)
        encoder = build_encoder(name)
        encoder.load_state_dict(state, strict=True)
        info = {"kind": kind, "path": os.path.abspath(spec.path), "sha256": file_sha256(spec.path),
                "step": step, "weights_config": weights_config}
    params = sum(p.numel() for p in encoder.parameters())
    return encoder.eval().to(device), CheckpointInfo(**info, parameters=params)


# --- data -----------------------------------------------------------------------------------


def is_store(path: str) -> bool:
    """True when ``path`` is a vmac Zarr store (a remote URL is always taken as one)."""
    if is_url(path):
        return True
    try:
        root = open_store(path, mode="r")
    except (FileNotFoundError, OSError, ValueError):
        return False
    return STORE_INFO_ATTR in root.attrs or VIDEOS_GROUP in root


@dataclass(frozen=True)
class VideoTask:
    """A labelled video and the metric family that scores it."""

    video_id: str
    sequence: str
    task: str
    record: VideoRecord

    def as_input(self) -> VideoInput:
        r = self.record
        return VideoInput(video_id=self.video_id, sequence=self.sequence, task=self.task, layout=r.layout,
                          source_uri=r.source_uri, source_sha256=r.sha256, frames_sha256=r.frames_sha256,
                          split=r.split)


def task_of(record: VideoRecord) -> str | None:
    """davis (object masks), vip (part classes) or jhmdb (keypoints); None when unlabelled."""
    if record.has_keypoints:
        return "jhmdb"
    if record.has_masks:
        return "vip" if record.layout == "vip" else "davis"
    return None


def find_labelled_videos(store: str, split: str | None = None) -> tuple[list[VideoTask], list[SkippedVideo]]:
    """Complete, labelled videos of ``store`` (optionally of one split), and why others are skipped."""
    videos: list[VideoTask] = []
    skipped: list[SkippedVideo] = []
    for video_id, record in read_catalog(store).items():
        if record is None:
            skipped.append(SkippedVideo(video_id=video_id, reason="unreadable record"))
        elif record.status is not Status.complete:
            skipped.append(SkippedVideo(video_id=video_id, reason=f"status {record.status.value}: {record.reason or ''}".strip()))
        elif task_of(record) is None:
            skipped.append(SkippedVideo(video_id=video_id, reason="no labels: neither masks nor keypoints"))
        elif split is not None and record.split != split:
            skipped.append(SkippedVideo(video_id=video_id, reason=f"split {record.split!r} is not {split!r}"))
        elif (record.frame_count or 0) < 2:
            skipped.append(SkippedVideo(video_id=video_id, reason="fewer than 2 frames"))
        else:
            videos.append(VideoTask(video_id, "", task_of(record), record))
    return sorted(_name_sequences(videos), key=lambda v: (bm.TASKS.index(v.task), v.sequence)), skipped


def _name_sequences(videos: list[VideoTask]) -> list[VideoTask]:
    """Sequence names: the source folder's name (DAVIS's <seq>, as its results layout needs);
    ``<task>-<name>`` where two tasks share a name; the video id where that still clashes."""
    base = [os.path.basename(v.record.source_uri.rstrip("/")) for v in videos]
    names = [f"{v.task}-{n}" if base.count(n) > 1 else n for v, n in zip(videos, base)]
    clashes = {n for n in names if names.count(n) > 1 or not n or _SAFE.search(n) or n.startswith(".")}
    return [VideoTask(v.video_id, v.video_id if n in clashes else n, v.task, v.record) for v, n in zip(videos, names)]


# --- geometry and features ------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """Sizes of one video's pipeline, all (height, width).

    stored: frames in the store (metrics are computed here); input: fed to the encoder;
    padded: input padded bottom/right to a multiple of the encoder stride (32);
    feature: the propagation grid, ceil(input / stride); covered: feature * stride, the pixel
    rectangle the grid covers (image at its top-left).
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
    h, w = stored
    if short_side:
        s = short_side / min(h, w)
        h, w = max(1, round(h * s)), max(1, round(w * s))
    pad = lambda n: -(-n // ENCODER_STRIDE) * ENCODER_STRIDE
    return Geometry(tuple(stored), (h, w), (pad(h), pad(w)), (-(-h // stride), -(-w // stride)), stride)


@dataclass
class Clock:
    """Seconds spent in feature extraction, accumulated across a lazily consumed generator."""

    features: float = 0.0


def frames_to_input(frames_bhwc: np.ndarray, geom: Geometry, device: torch.device) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, Hp, Wp), zero (= mean colour) padding."""
    x = torch.from_numpy(np.ascontiguousarray(frames_bhwc)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if geom.resized:
        x = F.interpolate(x, size=geom.input, mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(bm.IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(bm.IMAGENET_STD, device=device).view(1, 3, 1, 1)
    x = (x - mean) / std
    (h, w), (hp, wp) = geom.input, geom.padded
    return F.pad(x, (0, wp - w, 0, hp - h))


def iter_features(encoder: torch.nn.Module, frames, geom: Geometry, stage_stride: int, batch_size: int,
                  device: torch.device, clock: Clock | None = None) -> Iterator[torch.Tensor]:
    """(C, h, w) features per frame of ``frames`` ((T, H, W, 3) uint8, a Zarr or numpy array).

    Reads and encodes ``batch_size`` frames at a time, only when the consumer asks for them.
    """
    hf, wf = geom.feature
    grid = (geom.padded[0] // geom.stride, geom.padded[1] // geom.stride)
    for start in range(0, frames.shape[0], batch_size):
        began = time.perf_counter()
        block = np.asarray(frames[start:start + batch_size])
        with torch.inference_mode():
            feats = encoder(frames_to_input(block, geom, device), strides=(stage_stride,))[stage_stride]
            if stage_stride != geom.stride:
                feats = F.interpolate(feats, size=grid, mode="bilinear", align_corners=False)
            feats = feats[:, :, :hf, :wf].contiguous()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if clock is not None:
            clock.features += time.perf_counter() - began
        yield from feats


def _pad_ids(ids_hw: np.ndarray, geom: Geometry) -> torch.Tensor:
    """Stored-resolution ids -> input resolution (nearest), void-padded to the covered size."""
    ids = torch.from_numpy(np.ascontiguousarray(ids_hw)).long()
    if geom.resized:
        ids = F.interpolate(ids[None, None].float(), size=geom.input, mode="nearest")[0, 0].long()
    (h, w), (ch, cw) = geom.input, geom.covered
    return F.pad(ids, (0, cw - w, 0, ch - h), value=NOT_ANNOTATED)


def ids_to_labels(ids_hw: np.ndarray, num_labels: int, geom: Geometry) -> torch.Tensor:
    """(K, h, w) soft one-hot labels of a stored-resolution id map (ids >= K count for none)."""
    return labels_to_onehot(_pad_ids(ids_hw, geom), num_labels, geom.feature)


def labels_to_ids(probs_khw: torch.Tensor, geom: Geometry) -> np.ndarray:
    """Soft labels (K, h, w) -> uint8 ids (H, W) at the stored resolution."""
    ids = probs_to_labels(probs_khw.float().cpu(), geom.covered)[: geom.input[0], : geom.input[1]]
    if geom.resized:
        ids = F.interpolate(ids[None, None].float(), size=geom.stored, mode="nearest")[0, 0].long()
    return ids.to(torch.uint8).numpy()


def keypoints_to_labels(kp_j3: np.ndarray, geom: Geometry, sigma: float) -> torch.Tensor:
    """(J, h, w) Gaussian heatmaps of stored-resolution keypoints (x, y, visible)."""
    sy, sx = geom.scale
    kp = torch.as_tensor(kp_j3, dtype=torch.float32).clone()
    # Pixel centres sit at integers (0-based): (x + 0.5) * s - 0.5 maps centre to centre.
    kp[:, 0] = (kp[:, 0] + 0.5) * sx - 0.5
    kp[:, 1] = (kp[:, 1] + 0.5) * sy - 0.5
    return keypoints_to_heatmaps(kp, geom.covered, geom.feature, sigma=sigma)


def labels_to_keypoints(heat_jhw: torch.Tensor, geom: Geometry, topk: int) -> np.ndarray:
    """(J, 2) x, y at the stored resolution from propagated heatmaps (NaN where a map is empty)."""
    xy = heatmaps_to_keypoints(heat_jhw.float().cpu(), geom.covered, topk=topk)
    sy, sx = geom.scale
    xy[:, 0] = (xy[:, 0] + 0.5) / sx - 0.5
    xy[:, 1] = (xy[:, 1] + 0.5) / sy - 0.5
    return xy.numpy()


def propagation_config(config: EvaluateConfig) -> PropagationConfig:
    return PropagationConfig(**config.propagation.model_dump())


# --- one video -------------------------------------------------------------------------------------


@dataclass
class VideoOutputs:
    """Where one video's pictures go (None: not written)."""

    overlay: Path | None = None
    masks_dir: Path | None = None


def evaluate_video(encoder: torch.nn.Module, video: VideoTask, store_root, config: EvaluateConfig,
                   device: torch.device, outputs: VideoOutputs) -> SequenceResult:
    """Propagate frame 0's labels through one stored video and score the result.

    Raises ValueError when the video cannot be evaluated (frame 0 unlabelled, ids out of range).
    """
    group = video_group(store_root, video.video_id)
    frames = group[FRAMES]
    geom = geometry_for(tuple(frames.shape[1:3]), config.features.stride, config.features.short_side)
    clock = Clock()
    feats = iter_features(encoder, frames, geom, config.features.effective_stage_stride, config.features.batch_size,
                          device, clock)
    run = _propagate_keypoints if video.task == "jhmdb" else _propagate_masks
    return run(feats, clock, video, group, geom, config, device, outputs)


def _propagate_keypoints(feats, clock: Clock, video: VideoTask, group, geom: Geometry, config: EvaluateConfig,
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
        _draw_keypoint_overlay(frames, pred_tj2, keypoints_tj3, config.overlay_frames, outputs.overlay)
    return SequenceResult(
        video_id=video.video_id, sequence=video.sequence, task="jhmdb", frames=t_total, scored_frames=t_total - 1,
        labels=keypoints_tj3.shape[1], stored_size=geom.stored, input_size=geom.input, feature_size=geom.feature,
        metrics=_pck_metrics(scores, config.pck_thresholds), joint_counts=_joint_counts(scores),
        seconds_features=clock.features, seconds_propagation=seconds - clock.features,
    )


def _propagate_masks(feats, clock: Clock, video: VideoTask, group, geom: Geometry, config: EvaluateConfig,
                     device: torch.device, outputs: VideoOutputs) -> SequenceResult:
    """DAVIS (object ids, J&F over whole sequences) and VIP (classes, one confusion matrix)."""
    frames, masks = group[FRAMES], group[MASKS]
    t_total = frames.shape[0]
    began = time.perf_counter()
    first_ids = np.asarray(masks[0])
    if (first_ids == NOT_ANNOTATED).all():
        raise ValueError("frame 0 is not annotated")
    if video.task == "vip":
        num_labels = config.vip_classes
    else:
        num_labels = int(first_ids[first_ids != NOT_ANNOTATED].max()) + 1
        if num_labels < 2:
            raise ValueError("frame 0 has no object")
    first = ids_to_labels(first_ids, num_labels, geom)
    shown = set(np.linspace(0, t_total - 1, min(config.overlay_frames, t_total)).round().astype(int).tolist())
    kept: dict[int, tuple[np.ndarray, np.ndarray]] = {0: (first_ids, first_ids)} if 0 in shown else {}
    # DAVIS scores whole sequences: keep every frame's ids as uint8 (2 x T x H x W bytes).
    pred_frames, gt_frames = [first_ids], [first_ids]
    confusion = np.zeros((num_labels, num_labels), np.int64)
    scored = 0
    scoring = 0.0
    if outputs.masks_dir is not None:
        _save_palette_png(first_ids, outputs.masks_dir / f"{0:05d}.png")
    with torch.inference_mode():
        for t, probs in enumerate(propagate(feats, first.to(device), propagation_config(config)), start=1):
            pred_ids = labels_to_ids(probs, geom)
            mark = time.perf_counter()
            gt_ids = np.asarray(masks[t])
            if video.task == "davis":
                pred_frames.append(pred_ids)
                gt_frames.append(gt_ids)
            elif not (gt_ids == NOT_ANNOTATED).all():
                confusion += metrics.confusion_matrix(pred_ids, gt_ids, num_labels, ignore_index=NOT_ANNOTATED)
                scored += 1
            if t in shown:
                kept[t] = (pred_ids, gt_ids)
            if outputs.masks_dir is not None:
                _save_palette_png(pred_ids, outputs.masks_dir / f"{t:05d}.png")
            scoring += time.perf_counter() - mark
    seconds = time.perf_counter() - began - scoring

    per_object: dict[str, dict[str, float]] = {}
    cm_out = None
    if video.task == "davis":
        pred_thw, gt_thw = np.stack(pred_frames), np.stack(gt_frames)
        annotated = ~(gt_thw == NOT_ANNOTATED).all(axis=(1, 2))
        # davis2017-evaluation scores frames 1..T-2 of fully annotated sequences; frames without
        # an annotation file (all NOT_ANNOTATED) are left out before that.
        scores = metrics.davis_sequence_scores(pred_thw[annotated], gt_thw[annotated], range(1, num_labels))
        per_object = {str(k): {name: float(row[key]) for key, name in _DAVIS_KEYS.items()}
                      for k, row in scores["objects"].items()}
        result_metrics = _davis_metrics(list(per_object.values()))
        scored = int(scores["num_frames_scored"])
    else:
        cm_out = confusion.tolist()
        result_metrics = {"mIoU": float(metrics.miou(confusion))}
    if outputs.overlay is not None:
        _draw_mask_overlay(frames, kept, outputs.overlay)
    return SequenceResult(
        video_id=video.video_id, sequence=video.sequence, task=video.task, frames=t_total, scored_frames=scored,
        labels=num_labels, stored_size=geom.stored, input_size=geom.input, feature_size=geom.feature,
        metrics=result_metrics, per_object=per_object, confusion_matrix=cm_out,
        seconds_features=clock.features, seconds_propagation=seconds - clock.features,
    )


# --- pictures and masks -----------------------------------------------------------------------------

PANEL_WIDTH = 427  # half of 854: a 480p frame's two panels side by side fit one DAVIS frame width


def _palette_rgb() -> np.ndarray:
    """(256, 3) uint8 DAVIS (PASCAL VOC) colours."""
    from storage_schemas.palette import DAVIS_PALETTE

    return np.frombuffer(DAVIS_PALETTE, np.uint8).reshape(256, 3)


def _save_palette_png(ids_hw: np.ndarray, path: Path) -> None:
    """A DAVIS results file: a palette PNG whose indices are the object ids."""
    from storage_schemas.palette import DAVIS_PALETTE

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.ascontiguousarray(ids_hw, dtype=np.uint8), mode="L")
    image.putpalette(DAVIS_PALETTE)  # "L" + palette -> "P"
    image.save(path)


def _blend(frame_hw3: np.ndarray, ids_hw: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The frame with labelled pixels (ids other than 0 and 255) tinted by their colour and
    outlined in white, the rest slightly darkened."""
    colours = _palette_rgb()[ids_hw].astype(np.float32)
    labelled = (ids_hw != 0) & (ids_hw != NOT_ANNOTATED)
    out = np.where(labelled[..., None], (1 - alpha) * frame_hw3 + alpha * colours, frame_hw3.astype(np.float32) * 0.8)
    edge = np.zeros_like(labelled)
    for a, b in ((np.s_[:, 1:], np.s_[:, :-1]), (np.s_[1:, :], np.s_[:-1, :])):
        differ = (ids_hw[a] != ids_hw[b]) & (labelled[a] | labelled[b])
        edge[a] |= differ
        edge[b] |= differ
    out[edge] = 255.0
    return out.clip(0, 255).astype(np.uint8)


def _panel(image_hw3: np.ndarray, caption: str) -> Image.Image:
    image = Image.fromarray(image_hw3)
    height = max(1, round(image.height * PANEL_WIDTH / image.width))
    image = image.resize((PANEL_WIDTH, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    box = draw.textbbox((4, 4), caption)
    draw.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=(0, 0, 0))
    draw.text((4, 4), caption, fill=(255, 255, 255))
    return image


def _grid(rows: list[tuple[Image.Image, Image.Image]], path: Path) -> None:
    """Rows of (prediction, ground truth) panels with a 4 px gutter, saved as PNG."""
    gap = 4
    width = 2 * PANEL_WIDTH + gap
    height = sum(left.height for left, _ in rows) + gap * (len(rows) - 1)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    y = 0
    for left, right in rows:
        sheet.paste(left, (0, y))
        sheet.paste(right, (PANEL_WIDTH + gap, y))
        y += left.height + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def _draw_mask_overlay(frames, kept: dict[int, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    rows = []
    for t in sorted(kept):
        frame = np.asarray(frames[t])
        pred, gt = kept[t]
        rows.append((_panel(_blend(frame, pred), f"frame {t}: prediction" if t else "frame 0: given"),
                     _panel(_blend(frame, gt), f"frame {t}: ground truth")))
    _grid(rows, path)


def _draw_keypoint_overlay(frames, pred_tj2: np.ndarray, gt_tj3: np.ndarray, count: int, path: Path) -> None:
    colours = _palette_rgb()[1:]
    total = len(pred_tj2)
    rows = []
    for t in sorted(set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist())):
        frame = np.asarray(frames[t])
        panels = []
        for points, caption in ((pred_tj2[t], "prediction" if t else "given"), (gt_tj3[t], "ground truth")):
            panel = _panel(frame, f"frame {t}: {caption}")
            draw = ImageDraw.Draw(panel)
            s = panel.width / frame.shape[1]
            for j, point in enumerate(points):
                if np.isnan(point[:2]).any() or (len(point) > 2 and point[2] <= 0):
                    continue
                x, y = (point[0] + 0.5) * s - 0.5, (point[1] + 0.5) * s - 0.5
                draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=tuple(int(c) for c in colours[j % len(colours)]),
                             outline=(255, 255, 255))
            panels.append(panel)
        rows.append(tuple(panels))
    _grid(rows, path)


# --- one encoder --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationPlan:
    """What one evaluation run covers: the store, its labelled videos, and the encoders."""

    store: str
    source: str
    encoders: list[EncoderSpec]
    videos: list[VideoTask]
    skipped: list[SkippedVideo]


# vmac_core.metrics' DAVIS keys -> the report's (davis2017-evaluation's CSV columns).
_DAVIS_KEYS = {"J_mean": "J-Mean", "J_recall": "J-Recall", "J_decay": "J-Decay",
               "F_mean": "F-Mean", "F_recall": "F-Recall", "F_decay": "F-Decay"}


def _davis_metrics(objects: list[dict[str, float]]) -> dict[str, float]:
    """Means over objects (report keys in, report keys out), J&F-Mean first, via davis_summary."""
    summary = metrics.davis_summary([{"objects": {i: {k: o[n] for k, n in _DAVIS_KEYS.items()}
                                                  for i, o in enumerate(objects)}}])
    return {"J&F-Mean": float(summary["JF_mean"]), **{n: float(summary[k]) for k, n in _DAVIS_KEYS.items()}}


def _pck_metrics(scores: dict, thresholds) -> dict[str, float]:
    return {f"PCK@{a:g}": float(scores[f"pck@{a:g}"]) for a in thresholds}


def _joint_counts(scores: dict) -> dict[str, list[int]]:
    return {k: [int(x) for x in v] for k, v in scores.items() if k == "total" or k.startswith("correct@")}


def summarise(results: list[SequenceResult], pck_thresholds=(0.1, 0.2)) -> dict[str, TaskSummary]:
    """Task -> mean metrics, pooled as each benchmark does (see TaskSummary)."""
    out: dict[str, TaskSummary] = {}
    for task_name in bm.TASKS:
        rows = [r for r in results if r.task == task_name]
        if not rows:
            continue
        if task_name == "davis":
            values = _davis_metrics([o for r in rows for o in r.per_object.values()])
        elif task_name == "vip":
            confusion = np.sum([np.asarray(r.confusion_matrix, np.int64) for r in rows], axis=0)
            values = {"mIoU": metrics.miou(confusion)}
        else:
            values = _pck_metrics(metrics.pck_summary([r.joint_counts for r in rows], pck_thresholds), pck_thresholds)
        out[task_name] = TaskSummary(task=task_name, sequences=len(rows), metrics={k: float(v) for k, v in values.items()})
    return out


def protocol_of(config: EvaluateConfig, encoder: torch.nn.Module) -> Protocol:
    f = config.features
    stage = f.effective_stage_stride
    return Protocol(
        propagation=config.propagation,
        features=FeatureProtocol(
            stride=f.stride, stage_stride=stage, stage_channels=int(encoder.out_channels[stage]),
            upsample=None if stage == f.stride else "bilinear, align_corners=False",
            short_side=f.short_side,
            padding=f"bottom/right zeros after normalisation (the mean colour) to a multiple of {ENCODER_STRIDE}; "
                    "the grid is cropped to ceil(size / stride) cells",
            batch_size=f.batch_size,
        ),
        label_downsampling="one-hot area average over each cell (void-padded beyond the image)",
        label_upsampling="bilinear probabilities (align_corners=False), argmax, padding cropped; "
                         "nearest to the stored size when resized",
        vip_classes=config.vip_classes,
        pck_thresholds=config.pck_thresholds,
        heatmap_sigma=config.heatmap_sigma,
        keypoint_topk=config.keypoint_topk,
        scored_frames={
            "davis": "annotated frames except the first and last",
            "vip": "annotated frames except the first (the given labels)",
            "jhmdb": "every frame except the first",
        },
    )


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# Outputs are files and the inputs name files whose bytes may change: never served from a cache.
@task(name="evaluate_encoder", cache_policy=NO_CACHE)
def evaluate_encoder(spec: EncoderSpec, plan: EvaluationPlan, config: EvaluateConfig, run_id: str,
                     flow_run_id: str | None = None) -> str:
    """Evaluate one encoder on every planned video; write its benchmark JSON, overlays and masks.

    Returns the benchmark JSON's path. A video that cannot be propagated (frame 0 unlabelled)
    is reported as skipped; any other error fails the task.
    """
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _evaluate_encoder(spec, plan, config, run_id, flow_run_id)
    finally:
        torch.set_num_threads(threads)


def _evaluate_encoder(spec: EncoderSpec, plan: EvaluationPlan, config: EvaluateConfig, run_id: str,
                      flow_run_id: str | None) -> str:
    log = _logger()
    began = time.perf_counter()
    device = resolve_device(config.device)
    encoder, info = load_encoder(spec, device)
    seconds_load = time.perf_counter() - began
    root = open_store(plan.store, mode="r")
    out = Path(config.out)
    results: list[SequenceResult] = []
    skipped = list(plan.skipped)
    evaluated: list[VideoInput] = []
    for video in plan.videos:
        outputs = VideoOutputs(
            overlay=out / bm.OVERLAYS_DIR / spec.name / f"{video.sequence}.png",
            masks_dir=(out / bm.MASKS_DIR / spec.name / video.sequence)
            if config.save_masks and video.task != "jhmdb" else None,
        )
        try:
            result = evaluate_video(encoder, video, root, config, device, outputs)
        except ValueError as exc:
            log.warning("%s: skipped %s: %s", spec.name, video.sequence, exc)
            skipped.append(SkippedVideo(video_id=video.video_id, reason=str(exc)))
            continue
        results.append(result)
        evaluated.append(video.as_input())
        shown = ", ".join(f"{k} {100 * v:.1f}" for k, v in result.metrics.items() if k in _HEADLINE[video.task])
        log.info("%s: %s %s (%d frames): %s; features %.1fs, propagation %.1fs", spec.name, video.task,
                 video.sequence, result.frames, shown, result.seconds_features, result.seconds_propagation)
    seconds_total = time.perf_counter() - began
    seconds_features = sum(r.seconds_features for r in results)
    seconds_propagation = sum(r.seconds_propagation for r in results)
    frames = sum(r.frames for r in results)
    report = BenchmarkReport(
        name=spec.name, encoder=spec.encoder, random_init=spec.random_init, checkpoint=info,
        data=DataInfo(store=plan.store, source=plan.source, videos=evaluated, skipped=skipped),
        protocol=protocol_of(config, encoder), sequences=results,
        summary=summarise(results, config.pck_thresholds),
        timing=Timing(
            seconds_total=seconds_total, seconds_load=seconds_load, seconds_features=seconds_features,
            seconds_propagation=seconds_propagation,
            seconds_scoring=max(seconds_total - seconds_load - seconds_features - seconds_propagation, 0.0),
            frames=frames, seconds_per_frame=(seconds_features + seconds_propagation) / max(frames, 1),
        ),
        environment=Environment(
            device=str(device), torch_version=torch.__version__, torch_threads=torch.get_num_threads(),
            host=socket.gethostname(), code_version=code_version(), git_sha=lineage.git_sha(),
        ),
        run_id=run_id, flow_run_id=flow_run_id, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        config=config,
    )
    path = out / bm.benchmark_filename(spec.name)
    _write_text_atomic(path, report.to_json())
    return str(path)


# --- comparison, lineage, data ------------------------------------------------------------------------

# Columns of the comparison: (task, metric key, header).
_COLUMNS = (
    ("davis", "J&F-Mean", "DAVIS J&F"), ("davis", "J-Mean", "J"), ("davis", "F-Mean", "F"),
    ("vip", "mIoU", "VIP mIoU"),
    ("jhmdb", "PCK@0.1", "JHMDB PCK@0.1"), ("jhmdb", "PCK@0.2", "PCK@0.2"),
)
_HEADLINE = {"davis": ("J&F-Mean",), "vip": ("mIoU",), "jhmdb": ("PCK@0.1", "PCK@0.2")}


def read_report(path: str) -> BenchmarkReport:
    return BenchmarkReport.model_validate_json(Path(path).read_text())


def _pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def comparison_markdown(reports: list[BenchmarkReport]) -> str:
    """Every evaluated encoder side by side (percentages), then per-sequence headline scores."""
    if not reports:
        return "# Label propagation\n\nNothing was evaluated.\n"
    first = reports[0]
    p, f = first.protocol.propagation, first.protocol.features
    sizes = sorted({(r.task, r.input_size) for rep in reports for r in rep.sequences})
    size_text = ", ".join(f"{t} {h}×{w}" for t, (h, w) in sizes) or "–"
    lines = [
        "# Label propagation",
        "",
        (f"Data: `{first.data.source}` ({len(first.data.videos)} labelled videos). "
         f"Features: stride {f.stride} (stage stride {f.stage_stride}{', upsampled' if f.upsample else ''}), "
         f"input {'stored resolution' if f.short_side is None else f'short side {f.short_side}'} ({size_text}). "
         f"CRW propagation: context {p.context}, radius {p.radius:g}, top-k {p.topk}, temperature {p.temperature:g}. "
         "Scores in %; random-init rows are the floor."),
        "",
        "| model | encoder | weights | " + " | ".join(h for _, _, h in _COLUMNS) + " | s/frame |",
        "|---|---|---|" + "---:|" * (len(_COLUMNS) + 1),
    ]
    for rep in reports:
        if rep.random_init:
            weights = f"random init (seed {rep.checkpoint.seed})"
        else:
            step = f" step {rep.checkpoint.step}" if rep.checkpoint.step is not None else ""
            weights = f"{rep.checkpoint.kind}{step} `{(rep.checkpoint.sha256 or '')[:8]}`"
        cells = [_pct(rep.summary[t].metrics.get(k)) if t in rep.summary else "–" for t, k, _ in _COLUMNS]
        lines.append(f"| {rep.name} | {rep.encoder} | {weights} | " + " | ".join(cells)
                     + f" | {rep.timing.seconds_per_frame:.2f} |")
    sequences = sorted({(r.task, r.sequence) for rep in reports for r in rep.sequences},
                       key=lambda ts: (bm.TASKS.index(ts[0]), ts[1]))
    if sequences:
        lines += ["", "## Per sequence", "",
                  "| task | sequence | metric | " + " | ".join(rep.name for rep in reports) + " |",
                  "|---|---|---|" + "---:|" * len(reports)]
        for task_name, seq in sequences:
            for key in _HEADLINE[task_name]:
                cells = []
                for rep in reports:
                    row = next((r for r in rep.sequences if (r.task, r.sequence) == (task_name, seq)), None)
                    cells.append(_pct(row.metrics.get(key)) if row else "–")
                lines.append(f"| {task_name} | {seq} | {key} | " + " | ".join(cells) + " |")
    by_reason: dict[str, list[str]] = {}
    for s in first.data.skipped:
        by_reason.setdefault(s.reason, []).append(s.video_id)
    if by_reason:
        lines += ["", f"Not evaluated ({len(first.data.skipped)} videos):", ""]
        lines += [f"- {reason}: " + ", ".join(f"`{v}`" for v in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
                  for reason, ids in by_reason.items()]
    return "\n".join(lines) + "\n"


def write_comparison(report_paths: list[str], out: str) -> tuple[str, str]:
    """Write ``OUT/comparison.md``; return (path, markdown)."""
    markdown = comparison_markdown([read_report(p) for p in report_paths])
    path = Path(out) / bm.COMPARISON
    _write_text_atomic(path, markdown)
    return str(path), markdown


@task(name="publish_comparison", cache_policy=NO_CACHE)
def publish_comparison(report_paths: list[str], out: str) -> str:
    """comparison.md, also as the Prefect markdown artifact ``evaluation-comparison``."""
    path, markdown = write_comparison(report_paths, out)
    create_markdown_artifact(key=bm.COMPARISON_ARTIFACT_KEY, markdown=markdown,
                             description=f"label propagation, {len(report_paths)} encoders ({path})")
    return markdown


@task(name="plan_evaluation", cache_policy=NO_CACHE)
def plan_evaluation(config: EvaluateConfig, store: str) -> EvaluationPlan:
    """The encoders (checkpoints, then each architecture's random-init floor) and labelled videos."""
    log = _logger()
    encoders = plan_encoders(config)
    videos, skipped = find_labelled_videos(store, config.split)
    if not videos:
        raise ValueError(f"no labelled videos to evaluate in {store} (split {config.split!r}); "
                         f"{len(skipped)} not evaluable")
    log.info("evaluating %s on %d videos (%s); %d skipped", ", ".join(e.name for e in encoders), len(videos),
             ", ".join(f"{t} {sum(v.task == t for v in videos)}" for t in bm.TASKS), len(skipped))
    return EvaluationPlan(store, config.data, encoders, videos, skipped)


def ingest_config_for(config: EvaluateConfig):
    """Ingest a folder given as --data into OUT/data.zarr at native resolution."""
    from storage_schemas.config import IngestConfig
    from storage_schemas.records import DecodeParams

    return IngestConfig(sources=[config.data], store=str(Path(config.out) / bm.DATA_STORE),
                        decode=DecodeParams(short_side=0), workers=config.ingest_workers, progress=False)


@task(name="record_evaluation_lineage", cache_policy=NO_CACHE)
def record_evaluation_lineage(config: EvaluateConfig, plan: EvaluationPlan, report_paths: list[str],
                              run_id: str, flow_run_id: str | None = None) -> str:
    """Append a lineage record to OUT/lineage/: weights and videos in; reports out."""
    store = plan.store.rstrip("/")
    inputs = [Dataset(uri=store, kind="store")]
    for spec in plan.encoders:
        if spec.path:
            inputs.append(Dataset(uri=os.path.abspath(spec.path), kind="checkpoint" if spec.kind == "checkpoint" else "encoder",
                                  sha256=file_sha256(spec.path), facets={"name": spec.name, "encoder": spec.encoder}))
    for video in plan.videos:
        inputs.append(Dataset(uri=f"{store}/{VIDEOS_GROUP}/{video.video_id}", kind="video",
                              sha256=video.record.frames_sha256,
                              facets={"source_uri": video.record.source_uri, "source_sha256": video.record.sha256,
                                      "task": video.task}))
    outputs = [Dataset(uri=os.path.abspath(p), kind="benchmark", sha256=file_sha256(p),
                       facets={"name": Path(p).stem.removeprefix("benchmark-")}) for p in report_paths]
    comparison = Path(config.out) / bm.COMPARISON
    if comparison.exists():
        outputs.append(Dataset(uri=str(comparison.resolve()), kind="report", sha256=file_sha256(str(comparison))))
    record = lineage.make_record("evaluate", "completed", run_id, inputs, outputs, config.model_dump(mode="json"),
                                 flow_run_id)
    return lineage.write_record(str(Path(config.out) / bm.LINEAGE_DIR), record)
