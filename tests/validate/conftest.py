"""Stores for validation tests: real encoded videos, ingested by the real decoder.

A base store with two good videos is built once per session; each test works on its own copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from storage_schemas.records import DecodeParams
from storage_schemas.validation import ValidateConfig
from tests.conftest import moving_frames

FRAMES = 24
DECODE = DecodeParams(short_side=48, shard_frames=8)


def encode(folder: Path, name: str, frames_thwc: np.ndarray, fps: float = 12) -> Path:
    from tasks.io.ffmpeg import encode_video

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    encode_video(frames_thwc, str(path), fps)
    return path


def clip(seed: int, frames: int = FRAMES) -> np.ndarray:
    """A moving texture, (T, 64, 96, 3) uint8; different seeds give different videos."""
    return moving_frames(frames, 64, 96, seed=seed)


def ingest(paths, store: str) -> list[str]:
    """Ingest sources as ingest_flow's workers do (no Prefect); returns their video ids."""
    from tasks.ingest.video import ingest_video
    from tasks.io.sources import expand_sources

    outcomes = [ingest_video(item, store, DECODE) for item in expand_sources([str(p) for p in paths])]
    return [o.video_id for o in outcomes]


def validate(store: str, **config):
    """What validate_flow does, step by step, without Prefect: returns the ValidationSummary."""
    from tasks.validate.record import record_summary
    from tasks.validate.suites import run_suites
    from tasks.validate.tasks import build_validation_tables

    cfg = ValidateConfig(store=store, **config)
    tables = build_validation_tables.fn(cfg)
    return record_summary(cfg, tables, run_suites(tables, cfg.thresholds))


def failed_rules(summary) -> dict[str, list[str]]:
    return {r.rule: r.videos for r in summary.rules if not r.success}


@pytest.fixture(scope="session")
def base_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("base")
    sources = [encode(root / "videos", f"good{i}.mp4", clip(seed=i)) for i in range(2)]
    store = root / "base.zarr"
    ingest(sources, str(store))
    return store


@pytest.fixture
def store(base_store, tmp_path) -> str:
    """A private copy of the base store (two good, complete videos)."""
    copy = tmp_path / "store.zarr"
    shutil.copytree(base_store, copy)
    return str(copy)
