"""Contracts of the evaluate stage: its config (``EvaluateConfig``) and the benchmark JSON.

``evaluate_flow`` writes one ``BenchmarkReport`` per evaluated encoder to
``OUT/benchmark-<name>.json``. A report is self-describing: besides per-sequence and mean
metrics it holds every protocol knob (propagation, feature stage and stride, the input
resolution actually used), the checkpoint's and the data's hashes, the encoder name, whether
the weights are a random-init floor, the time taken, and the code version.

Metric values are fractions in [0, 1] (davis2017-evaluation's convention); tables show
percentages. Keys follow davis2017-evaluation's CSV columns where one exists:

- davis:  ``J&F-Mean``, ``J-Mean``, ``J-Recall``, ``J-Decay``, ``F-Mean``, ``F-Recall``, ``F-Decay``
- youtube-vos: the same keys, each object scored from the frame it first appears in (not DAVIS's
  frame 0), over the annotated frames after it
- vip:    ``mIoU``
- jhmdb:  ``PCK@0.1``, ``PCK@0.2`` (one key per threshold in ``pck_thresholds``)
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vmac_core.propagation_config import PropagationConfig

# 2: a video's metric family is its ``benchmark`` (was ``task``), summaries are BenchmarkSummary,
# the propagation knobs include ``tile``, and the normalisation is the one the code used.
BENCHMARK_SCHEMA_VERSION = 2
BENCHMARK_KIND = "vmac.benchmark"

# The benchmark whose metrics score a labelled video: object masks (DAVIS and plain labelled
# folders), object masks with YouTube-VOS's semantics (objects propagated from their first
# appearance), part classes (VIP) or keypoints (JHMDB).
BenchmarkName = Literal["davis", "youtube-vos", "vip", "jhmdb"]
BENCHMARKS: tuple[str, ...] = ("davis", "youtube-vos", "vip", "jhmdb")
# The split a benchmark scores when none is asked for, as its official tool does
# (davis2017-evaluation: --set val). Benchmarks not listed score every labelled video.
DEFAULT_SPLITS = {"davis": "val"}
ALL_SPLITS = "all"
# A video in no split list of its dataset (a DAVIS tree without ImageSets, a plain folder).
UNLISTED_SPLIT = "unlisted"

VIP_CLASSES = 20  # background + 19 human parts
DAVIS_BOUNDARY_TOLERANCE = 0.008  # x image diagonal (davis2017-evaluation)
PCK_NORMALISER = "0.6 x diagonal of the ground-truth joints' bounding box"

# Names of artifacts under OUT/.
DATA_STORE = "data.zarr"
COMPARISON = "comparison.md"
LEARNING_CURVE = "learning_curve.png"  # with two or more checkpoints of one pre-training run
OVERLAYS_DIR = "overlays"
MASKS_DIR = "masks"
LINEAGE_DIR = "lineage"
FLOOR_CACHE_DIR = "floor-cache"  # under floor_cache (default OUT): one <key>.json per scored floor
COMPARISON_ARTIFACT_KEY = "evaluation-comparison"
COMPARISON_TABLE_ARTIFACT_KEY = "evaluation-comparison-table"


def benchmark_filename(name: str) -> str:
    return f"benchmark-{name}.json"


# The random-init floor's architecture when no checkpoint names one: the tiny-cpu preset's encoder
# (tests/cli/test_args.py holds the two together).
FLOOR_ENCODER = "convnextv2_atto"


# --- config -----------------------------------------------------------------------------------


class FeatureParams(BaseModel):
    """How dense features are taken from an encoder run without a mask."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stride: Literal[4, 8, 16] = Field(8, description="stride of the propagation grid (CRW: 8)")
    stage_stride: Literal[4, 8, 16, 32] | None = Field(
        None,
        description="encoder stage to read, by its stride; None reads the stage at `stride`. A deeper "
        "stage is upsampled bilinearly to `stride` (e.g. ConvNeXt's stride-16 stage).",
    )
    short_side: int | None = Field(
        None, ge=32, description="resize frames so the short side is this; None keeps the stored resolution"
    )
    batch_size: int = Field(4, ge=1, description="frames per encoder forward (bounds memory)")

    @model_validator(mode="after")
    def _stage_not_finer(self) -> FeatureParams:
        if self.stage_stride is not None and self.stage_stride < self.stride:
            raise ValueError(f"stage_stride {self.stage_stride} is finer than the propagation stride {self.stride}")
        return self

    @property
    def effective_stage_stride(self) -> int:
        return self.stage_stride or self.stride


class EvaluateConfig(BaseModel):
    """Parameters of ``evaluate_flow``.

    Every architecture among the checkpoints is also evaluated with random weights (seed
    ``random_init_seed``) as the floor, and raw pixels (Lab colour pooled to the propagation
    stride, ``vmac_core.colour.PixelFeatures``) as the second floor unless ``pixel_floor`` is
    false. ``random_init`` alone evaluates only the floors of ``encoder``; ``pixels`` alone only
    the raw-pixel floor.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoints: list[str] = Field(
        default_factory=list, description="encoder.pt exports or full pre-training checkpoints"
    )
    random_init: bool = Field(False, description="evaluate a random-init `encoder` even without checkpoints")
    encoder: str | None = Field(
        None,
        description=f"architecture of the random-init floor when no checkpoint is given (default "
        f"{FLOOR_ENCODER}, the tiny-cpu preset's); with checkpoints, must match theirs",
    )
    random_init_seed: int = 0
    pixels: bool = Field(False, description="evaluate the raw-pixel floor even without checkpoints (--baseline pixels)")
    pixel_floor: bool = Field(True, description="evaluate the raw-pixel floor beside every random-init floor; false "
                              "leaves it out")
    data: str = Field(description="a vmac Zarr store, or a folder (DAVIS/VIP/JHMDB layouts) to ingest first")
    out: str = Field(description="output folder")
    split: str | None = Field(
        None, description="only videos of this split (e.g. val, train); 'all': every split; None: each benchmark's "
        "own default (DAVIS: val, as davis2017-evaluation; the others: every labelled video)")
    save_masks: bool = Field(False, description="write predicted masks in the DAVIS results layout")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(
        None, ge=1, description="torch CPU threads while evaluating; None keeps torch's default (all cores). "
        "Without OMP_WAIT_POLICY=PASSIVE (vmac sets it), OpenMP threads spin while they wait, and on a shared, "
        "loaded machine 1 thread can then be several times faster than 2",
    )
    propagation: PropagationConfig = Field(
        default_factory=PropagationConfig, description="the CRW protocol's knobs (vmac_core.propagation_config)")
    features: FeatureParams = FeatureParams()
    vip_classes: int = Field(VIP_CLASSES, ge=2)
    pck_thresholds: tuple[float, ...] = (0.1, 0.2)
    heatmap_sigma: float = Field(0.5, gt=0, description="keypoint Gaussians' sigma in feature cells (CRW: 0.5)")
    keypoint_topk: int = Field(3, ge=1, description="cells averaged to read a keypoint off its heatmap (CRW: 3)")
    overlay_frames: int = Field(4, ge=1, description="frames shown per sequence overlay")
    dask_workers: int | None = Field(None, ge=1, description="Dask workers when ingesting a folder")
    floor_cache: str | None = Field(
        None, description="folder whose floor-cache/ keeps every floor scored (random-init, raw pixels): a floor "
        "already scored there on the same data with the same protocol, architecture and seed is reused, not run "
        "again (None: OUT); pipeline runs share one")
    reuse_floors: bool = Field(True, description="reuse cached floors; false scores them again (and re-caches them)")

    @model_validator(mode="after")
    def _something_to_evaluate(self) -> EvaluateConfig:
        if not self.checkpoints and not self.random_init and not self.pixels:
            raise ValueError("give at least one checkpoint, random_init or pixels")
        if not self.data.strip() or not self.out.strip():
            raise ValueError("data and out must be paths")
        return self

    @property
    def floor_encoder(self) -> str:
        """The architecture of the random-init floor when no checkpoint names one."""
        return self.encoder or FLOOR_ENCODER


# --- the benchmark JSON ----------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CheckpointInfo(_Frozen):
    """What was evaluated: a file (with its hash), a seeded random initialisation, or raw pixels
    (``weights_config`` then says how pixels become features)."""

    kind: Literal["encoder", "checkpoint", "random-init", "pixels"]
    path: str | None = None
    sha256: str | None = None
    step: int | None = Field(None, description="pre-training step of the weights")
    weights_config: dict = Field(default_factory=dict, description="the ModelConfig stored with the weights")
    seed: int | None = Field(None, description="torch seed of a random initialisation")
    parameters: int = Field(0, description="encoder parameter count")


class FloorCacheInfo(_Frozen):
    """How a floor's result relates to the floor cache (docs/evaluate.md, "Floors are cached")."""

    key: str = Field(description="sha256 of (data fingerprint, protocol, architecture, seed)")
    data_fingerprint: str = Field(description="the evaluated data: tasks.evaluate.floors.data_fingerprint")
    reused: bool = Field(description="true: copied from the cache, not run again; run_id, created_at, timing and "
                         "environment are those of the run that scored it")
    source: str | None = Field(None, description="the cache file it was reused from, or stored to")
    reused_by_run_id: str | None = Field(None, description="the run that reused it")


class VideoInput(_Frozen):
    """One evaluated video as stored: enough to find and verify its bytes."""

    video_id: str
    sequence: str = Field(description="the dataset's sequence name (folder name)")
    benchmark: BenchmarkName
    layout: str
    source_uri: str
    source_sha256: str | None = None
    frames_sha256: str | None = None
    split: str | None = None


class SkippedVideo(_Frozen):
    video_id: str
    reason: str


class DataInfo(_Frozen):
    store: str
    source: str = Field(description="what --data named (a store, or the folder ingested into `store`)")
    videos: list[VideoInput]
    skipped: list[SkippedVideo] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="what the selection of videos did that a reader "
                             "must know, e.g. 'davis: no val split in this tree (its lists: dev): all 10 sequences'")


class FeatureProtocol(_Frozen):
    """Feature extraction as run (config values plus what the encoder and data imply)."""

    stride: int
    stage_stride: int
    stage_channels: int
    upsample: str | None = Field(description="how a deeper stage reaches `stride`; None when read directly")
    short_side: int | None = Field(description="resize target of the short side; None = stored resolution")
    normalisation_mean: tuple[float, float, float] = Field(description="per-channel mean of pixels in [0, 1]")
    normalisation_std: tuple[float, float, float] = Field(description="per-channel standard deviation")
    padding: str = Field(description="how frames reach a multiple of the encoder stride")
    batch_size: int
    dtype: str = "float32"


class Protocol(_Frozen):
    propagation: PropagationConfig
    features: FeatureProtocol
    label_downsampling: str
    label_upsampling: str
    vip_classes: int
    pck_thresholds: tuple[float, ...]
    pck_normaliser: str = PCK_NORMALISER
    heatmap_sigma: float
    keypoint_topk: int
    davis_boundary_tolerance: float = DAVIS_BOUNDARY_TOLERANCE
    scored_frames: dict[str, str] = Field(description="which frames each benchmark scores")


class SequenceResult(_Frozen):
    """One video's scores and the sizes it was run at."""

    video_id: str
    sequence: str
    benchmark: BenchmarkName
    frames: int
    scored_frames: int
    labels: int = Field(description="propagated channels: object ids + background, classes, or joints")
    stored_size: tuple[int, int] = Field(description="(H, W) of the stored frames, where metrics are computed")
    input_size: tuple[int, int] = Field(description="(H, W) fed to the encoder before padding")
    feature_size: tuple[int, int] = Field(description="(h, w) of the propagation grid")
    metrics: dict[str, float]
    per_object: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="davis: object id -> that object's metrics"
    )
    objects_scored: list[int] | None = Field(
        None, description="davis: the object ids scored, 1..the largest id in frame 0 (davis2017-evaluation)")
    first_frames: dict[str, int] | None = Field(
        None, description="youtube-vos: object id -> the frame its mask first appears in, where its propagation "
        "starts; it is scored on the annotated frames after that")
    objects_missing_from_first_frame: list[int] | None = Field(
        None, description="davis: ids the annotations show later but frame 0 does not; propagation cannot "
        "carry them (those within 1..max are scored, and score low; those above are not scored)")
    confusion_matrix: list[list[int]] | None = Field(
        None, description="vip: rows ground truth, columns prediction, over the scored frames"
    )
    joint_counts: dict[str, list[int]] | None = Field(
        None, description="jhmdb: per joint, scored frames ('total') and correct ones ('correct@<alpha>'), "
        "the counts pooled over clips for the summary",
    )
    seconds_features: float
    seconds_propagation: float


class BenchmarkSummary(_Frozen):
    """Mean metrics of one benchmark over its sequences, pooled as each benchmark defines:
    davis over all objects of all sequences, vip from the summed confusion matrix, jhmdb from
    per-joint counts summed over clips (then the mean over joints)."""

    benchmark: BenchmarkName
    sequences: int
    splits: list[str] = Field(default_factory=list, description="the dataset splits the sequences averaged "
                              "here come from ('unlisted': in no split list)")
    metrics: dict[str, float]


class Timing(_Frozen):
    seconds_total: float
    seconds_load: float
    seconds_features: float
    seconds_propagation: float
    seconds_scoring: float = Field(description="metrics, overlays and masks")
    frames: int
    seconds_per_frame: float


class Environment(_Frozen):
    device: str
    torch_version: str
    torch_threads: int
    host: str
    code_version: str
    git_sha: str | None = None


class BenchmarkReport(_Frozen):
    """``OUT/benchmark-<name>.json``."""

    schema_version: int = BENCHMARK_SCHEMA_VERSION
    kind: Literal["vmac.benchmark"] = BENCHMARK_KIND
    name: str
    encoder: str
    random_init: bool
    checkpoint: CheckpointInfo
    data: DataInfo
    protocol: Protocol
    sequences: list[SequenceResult]
    summary: dict[str, BenchmarkSummary] = Field(
        description="benchmark -> mean metrics; only benchmarks with sequences"
    )
    timing: Timing
    environment: Environment
    run_id: str
    flow_run_id: str | None = None
    created_at: str
    config: EvaluateConfig
    floor_cache: FloorCacheInfo | None = Field(None, description="floors only: the cache key, and whether the "
                                               "result was reused")

    @model_validator(mode="before")
    @classmethod
    def _known_schema_version(cls, data):
        """A file of another schema version fails with that said, not with a list of field errors."""
        version = data.get("schema_version", BENCHMARK_SCHEMA_VERSION) if isinstance(data, dict) else None
        if version is not None and version != BENCHMARK_SCHEMA_VERSION:
            raise ValueError(f"benchmark file of schema version {version}; this code reads version "
                             f"{BENCHMARK_SCHEMA_VERSION} (version 1 named the benchmark `task`)")
        return data

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=False) + "\n"


def benchmark_json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a benchmark file."""
    return BenchmarkReport.model_json_schema(mode="serialization")
