"""The floor cache: a floor's scores depend only on the data, the protocol, the architecture and the
seed, so a floor scored once is reused, not run again (docs/evaluate.md, "Floors are cached").

A nightly run evaluates one new encoder and the two floors (random-init twin, raw pixels); the
floors were two thirds of its time. Each floor scored is kept as ``<cache>/floor-cache/<key>.json``
(the whole benchmark report); the next evaluation with the same key copies it into its OUT and
says so in the report (``floor_cache.reused``) and in comparison.md.

The key is the sha256 of:
- ``data_fingerprint``: the store's catalog fingerprint and every evaluated video's id and frames
  hash (the one function that says what "the same data" is; a versioned store's snapshot id can
  take its place);
- the protocol: every knob that changes a score (features, propagation, VIP classes, PCK
  thresholds, heatmap sigma, keypoint top-k) and the benchmark schema version;
- the architecture (``pixels`` for the raw-pixel floor) and the random-init seed.

Only floors are cached: a checkpoint is new by definition. Nothing is reused when masks are to be
saved (``save_masks``): they are files the run must write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from storage_schemas.benchmark import (
    BENCHMARK_SCHEMA_VERSION,
    FLOOR_CACHE_DIR,
    BenchmarkReport,
    EvaluateConfig,
    FloorCacheInfo,
)
from tasks.evaluate.plan import EvaluationPlan
from tasks.evaluate.report import read_report
from tasks.evaluate.weights import EncoderSpec
from tasks.io.files import write_atomic
from tasks.io.store import fingerprint_of, open_snapshot

FLOOR_KINDS = ("random-init", "pixels")


def _sha256(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def data_fingerprint(plan: EvaluationPlan) -> str:
    """What the evaluation reads, as one hex digest: the store's catalog fingerprint (which videos,
    decoded how, in which state, which version folder) of the snapshot it reads and the (video id,
    frames sha256) of every planned video."""
    catalog = fingerprint_of(open_snapshot(plan.snapshot or plan.store))
    videos = sorted((v.video_id, v.record.frames_sha256) for v in plan.videos)
    return _sha256({"catalog": catalog, "videos": videos})


def protocol_of_config(config: EvaluateConfig) -> dict:
    """Every knob of ``config`` that can change a score (not threads, device, paths or outputs)."""
    return {"schema_version": BENCHMARK_SCHEMA_VERSION, "features": config.features.model_dump(mode="json"),
            "propagation": dataclasses.asdict(config.propagation), "vip_classes": config.vip_classes,
            "pck_thresholds": list(config.pck_thresholds), "heatmap_sigma": config.heatmap_sigma,
            "keypoint_topk": config.keypoint_topk}


def floor_key(spec: EncoderSpec, data: str, config: EvaluateConfig) -> str:
    """The cache key of floor ``spec`` on data ``data`` (a ``data_fingerprint``) under ``config``."""
    return _sha256({"data": data, "protocol": protocol_of_config(config), "encoder": spec.encoder,
                    "kind": spec.kind, "seed": spec.seed})


def cache_file(config: EvaluateConfig, key: str) -> Path:
    """``<floor_cache or OUT>/floor-cache/<key>.json``."""
    return Path(config.floor_cache or config.out) / FLOOR_CACHE_DIR / f"{key}.json"


def cacheable(spec: EncoderSpec, config: EvaluateConfig) -> bool:
    """Whether ``spec``'s result may come from, and go to, the cache."""
    return spec.kind in FLOOR_KINDS and not config.save_masks


def reuse_floor(spec: EncoderSpec, plan: EvaluationPlan, config: EvaluateConfig, run_id: str,
                key: str, data: str) -> BenchmarkReport | None:
    """The cached report of floor ``spec`` as this run's (its name, data and config; ``floor_cache``
    saying it was reused), or None when the cache has no readable entry for ``key``."""
    path = cache_file(config, key)
    if not config.reuse_floors or not path.exists():
        return None
    try:
        cached = read_report(str(path))
    except ValueError:  # another schema version, or a damaged file: score the floor again
        return None
    if cached.floor_cache is None or cached.floor_cache.key != key:
        return None
    info = FloorCacheInfo(key=key, data_fingerprint=data, reused=True, source=str(path), reused_by_run_id=run_id)
    # The same fingerprint means the same catalog and videos: only where the store lies may differ.
    data_info = cached.data.model_copy(update={"store": plan.store, "source": plan.source})
    return cached.model_copy(update={"name": spec.name, "data": data_info, "config": config, "floor_cache": info})


def store_floor(report: BenchmarkReport, config: EvaluateConfig, key: str, data: str) -> BenchmarkReport:
    """``report`` with ``floor_cache`` filled in, also written to the cache file of ``key``."""
    path = cache_file(config, key)
    stored = report.model_copy(update={"floor_cache": FloorCacheInfo(key=key, data_fingerprint=data, reused=False,
                                                                     source=str(path))})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, stored.to_json())
    return stored
