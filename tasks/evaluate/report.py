"""Parts of one encoder's benchmark JSON (``storage_schemas.benchmark.BenchmarkReport``) that the
run itself decides: the protocol as run, the times and the environment; and reading a report."""

from __future__ import annotations

import socket
from pathlib import Path

import torch

from storage_schemas.benchmark import (
    BenchmarkReport,
    Environment,
    EvaluateConfig,
    FeatureProtocol,
    Protocol,
    SequenceResult,
    Timing,
)
from tasks.io import lineage
from vmac_core.architectures import ENCODER_STRIDE
from vmac_core.augment import IMAGENET_MEAN, IMAGENET_STD


def protocol_of(config: EvaluateConfig, encoder: torch.nn.Module) -> Protocol:
    """Every protocol knob as run: the config's values, what the encoder implies (the stage's
    channels) and what the code does (normalisation, padding, label resampling, scored frames)."""
    f = config.features
    stage = f.effective_stage_stride
    return Protocol(
        propagation=config.propagation,
        features=FeatureProtocol(
            stride=f.stride, stage_stride=stage, stage_channels=int(encoder.out_channels[stage]),
            upsample=None if stage == f.stride else "bilinear, align_corners=False",
            short_side=f.short_side, normalisation_mean=IMAGENET_MEAN, normalisation_std=IMAGENET_STD,
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


def timing_of(results: list[SequenceResult], seconds_total: float, seconds_load: float) -> Timing:
    """Seconds per phase over all sequences; scoring is what the others leave of the total."""
    seconds_features = sum(r.seconds_features for r in results)
    seconds_propagation = sum(r.seconds_propagation for r in results)
    frames = sum(r.frames for r in results)
    return Timing(
        seconds_total=seconds_total, seconds_load=seconds_load, seconds_features=seconds_features,
        seconds_propagation=seconds_propagation,
        seconds_scoring=max(seconds_total - seconds_load - seconds_features - seconds_propagation, 0.0),
        frames=frames, seconds_per_frame=(seconds_features + seconds_propagation) / max(frames, 1),
    )


def environment_of(device: torch.device) -> Environment:
    """Where the run ran: device, torch version and threads, host, code version and git SHA."""
    return Environment(
        device=str(device), torch_version=torch.__version__, torch_threads=torch.get_num_threads(),
        host=socket.gethostname(), code_version=lineage.code_version(), git_sha=lineage.git_sha(),
    )


def read_report(path: str) -> BenchmarkReport:
    """A benchmark JSON; raises pydantic's ValidationError for another schema version."""
    return BenchmarkReport.model_validate_json(Path(path).read_text())
