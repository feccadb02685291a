"""One encoder evaluated on every planned video, written as its benchmark JSON."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import torch

from storage_schemas.benchmark import (
    BenchmarkReport,
    DataInfo,
    EvaluateConfig,
    SequenceResult,
    SkippedVideo,
    VideoInput,
)
from tasks.evaluate.floors import cacheable, data_fingerprint, floor_key, reuse_floor, store_floor
from tasks.evaluate.outputs import report_path, video_outputs
from tasks.evaluate.plan import EvaluationPlan
from tasks.evaluate.report import environment_of, protocol_of, timing_of
from tasks.evaluate.scores import HEADLINE, summarise
from tasks.evaluate.video import evaluate_video
from tasks.evaluate.videos import NotEvaluable
from tasks.evaluate.weights import EncoderSpec, load_encoder
from tasks.evaluate.youtube_vos import evaluate_first_appearance
from tasks.io.files import write_atomic
from tasks.io.store import open_snapshot
from vmac_core.device import resolve_device

_LOG = logging.getLogger("vmac.evaluate")


def evaluate_encoder(spec: EncoderSpec, plan: EvaluationPlan, config: EvaluateConfig, run_id: str,
                     flow_run_id: str | None = None, log: logging.Logger | logging.LoggerAdapter = _LOG) -> str:
    """Evaluate one encoder on every planned video; write its benchmark JSON, overlays and masks.

    Returns the benchmark JSON's path. A video that cannot be propagated (frame 0 unlabelled)
    is reported as skipped; any other error is raised. ``config.threads`` applies while it runs.
    A floor (random-init, raw pixels) already scored on the same data with the same protocol,
    architecture and seed is copied from the floor cache instead (``tasks.evaluate.floors``;
    no overlays are drawn then), and a floor scored here is added to it.
    """
    threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _evaluate_encoder(spec, plan, config, run_id, flow_run_id, log)
    finally:
        torch.set_num_threads(threads)


def _evaluate_encoder(spec: EncoderSpec, plan: EvaluationPlan, config: EvaluateConfig, run_id: str,
                      flow_run_id: str | None, log) -> str:
    path = report_path(config.out, spec.name)
    key = data = None
    if cacheable(spec, config):
        data = data_fingerprint(plan)
        key = floor_key(spec, data, config)
        reused = reuse_floor(spec, plan, config, run_id, key, data)
        if reused is not None:
            log.info("%s: reused from the floor cache (%s; scored by run %s): same data, protocol, architecture "
                     "and seed", spec.name, reused.floor_cache.source, reused.run_id)
            write_atomic(path, reused.to_json())
            return str(path)
    began = time.perf_counter()
    device = resolve_device(config.device)
    encoder, info = load_encoder(spec, device)
    seconds_load = time.perf_counter() - began
    results, evaluated, skipped = _evaluate_videos(encoder, spec.name, plan, config, device, log)
    timing = timing_of(results, time.perf_counter() - began, seconds_load)
    report = BenchmarkReport(
        name=spec.name, encoder=spec.encoder, random_init=spec.random_init, checkpoint=info,
        data=DataInfo(store=plan.store, source=plan.source, videos=evaluated, skipped=skipped, notes=plan.notes),
        protocol=protocol_of(config, encoder), sequences=results,
        summary=summarise(results, config.pck_thresholds, {v.video_id: v.split for v in evaluated}),
        timing=timing, environment=environment_of(device),
        run_id=run_id, flow_run_id=flow_run_id, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        config=config,
    )
    if key is not None:
        report = store_floor(report, config, key, data)
    write_atomic(path, report.to_json())
    return str(path)


def _evaluate_videos(encoder: torch.nn.Module, name: str, plan: EvaluationPlan, config: EvaluateConfig,
                     device: torch.device, log) -> tuple[list[SequenceResult], list[VideoInput], list[SkippedVideo]]:
    """(results, the videos they came from, the plan's skipped videos plus those that failed)."""
    snapshot = open_snapshot(plan.snapshot or plan.store)
    results: list[SequenceResult] = []
    evaluated: list[VideoInput] = []
    skipped = list(plan.skipped)
    for video in plan.videos:
        outputs = video_outputs(config.out, name, video.sequence,
                                save_masks=config.save_masks and video.benchmark != "jhmdb")
        try:
            # YouTube-VOS by its own semantics (objects from their first appearance), never as DAVIS.
            run = evaluate_first_appearance if video.benchmark == "youtube-vos" else evaluate_video
            result = run(encoder, video, snapshot, config, device, outputs)
        except NotEvaluable as exc:
            log.warning("%s: skipped %s: %s", name, video.sequence, exc)
            skipped.append(SkippedVideo(video_id=video.video_id, reason=str(exc)))
            continue
        results.append(result)
        evaluated.append(video.as_input())
        shown = ", ".join(f"{k} {100 * v:.1f}" for k, v in result.metrics.items() if k in HEADLINE[video.benchmark])
        log.info("%s: %s %s (%d frames): %s; features %.1fs, propagation %.1fs", name, video.benchmark,
                 video.sequence, result.frames, shown, result.seconds_features, result.seconds_propagation)
    return results, evaluated, skipped
