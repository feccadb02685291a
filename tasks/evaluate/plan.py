"""What one evaluation run covers (the store, its labelled videos, the encoders), how a folder
given as ``--data`` is ingested first, and the run's lineage record."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from storage_schemas import benchmark as bm
from storage_schemas.benchmark import EvaluateConfig, SkippedVideo
from storage_schemas.config import IngestConfig
from storage_schemas.layout import VIDEOS_GROUP
from storage_schemas.lineage import Dataset, LineageRecord
from storage_schemas.records import DecodeParams
from tasks.evaluate.curve import learning_curves
from tasks.evaluate.report import read_report
from tasks.evaluate.videos import LabelledVideo, find_labelled_videos, selection_notes
from tasks.evaluate.weights import EncoderSpec, plan_encoders
from tasks.io import lineage
from tasks.io.files import file_sha256
from tasks.io.store import open_snapshot


@dataclass(frozen=True)
class EvaluationPlan:
    """What one evaluation run covers: the store, its labelled videos, and the encoders.
    ``snapshot``: the store's snapshot every video is read from (``STORE@SNAPSHOT``)."""

    store: str
    source: str
    encoders: list[EncoderSpec]
    videos: list[LabelledVideo]
    skipped: list[SkippedVideo]
    snapshot: str = ""
    notes: list[str] = field(default_factory=list)


def make_plan(config: EvaluateConfig, store: str) -> EvaluationPlan:
    """The encoders (checkpoints, then each architecture's random-init floor) and the labelled
    videos of ``store`` (its tip, or ``STORE@REF``), read from one snapshot for the whole run.
    Raises ValueError when no video can be evaluated."""
    encoders = plan_encoders(config)
    snapshot = open_snapshot(store)
    videos, skipped = find_labelled_videos(snapshot, config.split, config.vip_classes)
    if not videos:
        split = f" of split {config.split!r}" if config.split else " (DAVIS: split val by default)"
        why = "; ".join(f"{s.video_id}: {s.reason}" for s in skipped[:3]) + ("; …" if len(skipped) > 3 else "")
        raise ValueError(f"no labelled videos{split} to evaluate in {store}"
                         + (f"; {len(skipped)} not evaluable ({why})" if skipped else ""))
    return EvaluationPlan(snapshot.store, config.data, encoders, videos, skipped, snapshot.ref,
                          selection_notes(videos, config.split))


def ingest_config_for(config: EvaluateConfig) -> IngestConfig:
    """Ingest a folder given as --data into OUT/data.zarr at native resolution."""
    return IngestConfig(sources=[config.data], store=str(Path(config.out) / bm.DATA_STORE),
                        decode=DecodeParams(short_side=0), dask_workers=config.dask_workers, progress=False)


def _inputs(plan: EvaluationPlan) -> list[Dataset]:
    """The store, each weights file (with its sha256) and each evaluated video (its hashes)."""
    store = plan.store.rstrip("/")
    snapshot = open_snapshot(plan.snapshot or store)
    inputs = [Dataset(uri=store, kind="store", facets={"snapshot": snapshot.id})]
    for spec in plan.encoders:
        if spec.path:
            inputs.append(Dataset(uri=os.path.abspath(spec.path), kind="checkpoint" if spec.kind == "checkpoint" else "encoder",
                                  sha256=file_sha256(spec.path), facets={"name": spec.name, "encoder": spec.encoder}))
    for video in plan.videos:
        inputs.append(Dataset(uri=f"{store}/{VIDEOS_GROUP}/{video.video_id}", kind="video",
                              sha256=video.record.frames_sha256,
                              facets={"source_uri": video.record.source_uri, "source_sha256": video.record.sha256,
                                      "benchmark": video.benchmark,
                                      "version": snapshot.entries[video.video_id].version}))
    return inputs


def started_record(config: EvaluateConfig, plan: EvaluationPlan, run_id: str,
                   flow_run_id: str | None = None) -> LineageRecord:
    """The run's ``started`` record, before any encoder runs: a run killed mid-way leaves it unclosed."""
    return lineage.make_record("evaluate", "started", run_id, _inputs(plan), [], config.model_dump(mode="json"),
                               flow_run_id)


def lineage_record(config: EvaluateConfig, plan: EvaluationPlan, report_paths: list[str], run_id: str,
                   flow_run_id: str | None = None) -> LineageRecord:
    """The run's lineage: weights and videos in; benchmark files, comparison.md and the learning curve
    (when written) out."""
    outputs = [Dataset(uri=os.path.abspath(p), kind="benchmark", sha256=file_sha256(p),
                       facets={"name": Path(p).stem.removeprefix("benchmark-")}) for p in report_paths]
    # The curve only when this run drew it: a learning_curve.png of the user's own is not vmac's output.
    drawn = bool(learning_curves([read_report(p) for p in report_paths]))
    for name in (bm.COMPARISON, bm.LEARNING_CURVE) if drawn else (bm.COMPARISON,):
        written = Path(config.out) / name
        if written.exists():
            outputs.append(Dataset(uri=str(written.resolve()), kind="report", sha256=file_sha256(str(written))))
    return lineage.make_record("evaluate", "completed", run_id, _inputs(plan), outputs,
                               config.model_dump(mode="json"), flow_run_id)
