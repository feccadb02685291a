"""A store of healthy slow footage plus broken clips validates, marks only the broken ones, and
pre-training runs on it, skipping them by name (docs/validation.md, "Quarantine").

The footage is ``benchmarks/slow_scenes.py``'s (slow pan and zoom, static cameras, a fading title
card, a screen recording; a frozen camera and black), short; with the shared dev clips present, a
second test adds the 20 real videos.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.slow_scenes import BROKEN, HEALTHY, write_scenes
from storage_schemas.config import build_pretrain_config, nest_overrides
from storage_schemas.records import DecodeParams
from tasks.ingest.video import ingest_video
from tasks.io.sources import expand_sources
from tasks.io.store import read_catalog
from tasks.pretrain.index import PairIndex
from tasks.pretrain.tasks import check_stores_validated
from tasks.pretrain.train import train
from tests.validate.conftest import validate

pytestmark = pytest.mark.slow
DEV_VIDEOS = next((p / "shared" / "data" / "davis2016-dev" / "videos" for p in Path(__file__).resolve().parents
                   if (p / "shared" / "data" / "davis2016-dev" / "videos").is_dir()), None)
TINY = {"encoder": "convnextv2_atto", "input_size": 64, "decoder_dim": 32, "batch_size": 4, "loader_workers": 0,
        "warmup_epochs": 0, "max_steps": 2, "checkpoint_every": 100, "preview_every": 1000, "plot_every": 1000,
        "log_every": 1000, "progress": False, "threads": 1}


def _store(tmp_path: Path, sources: list[str]) -> tuple[str, dict[str, str]]:
    """Sources ingested at short side 64; file stem → video id."""
    store = str(tmp_path / "s.zarr")
    ids = {}
    for item in expand_sources(sources):
        outcome = ingest_video(item, store, DecodeParams(short_side=64))
        assert outcome.action == "decoded", outcome
        ids[Path(item.uri).stem] = outcome.video_id
    return store, ids


def _validate_then_pretrain(store: str, ids: dict[str, str], out: Path) -> list[str]:
    """Validate (the store must pass and mark exactly the broken clips), check the stamp as the
    pretrain flow does, train 2 steps; the training log."""
    summary = validate(store)
    assert summary.passed, summary.failure_text()
    assert set(summary.stamp.quarantined) == {ids[name] for name in BROKEN}, summary.stamp.quarantined
    config = build_pretrain_config(None, nest_overrides({**TINY, "stores": [store], "out": str(out)}))
    check_stores_validated.fn(config)  # the stamp vouches for the store: no refusal
    index = PairIndex([store])
    assert {v.video_id for v in index.videos} == set(ids.values()) - set(summary.stamp.quarantined)
    lines: list[str] = []
    result = train(config, log=lines.append)
    assert result.steps == 2
    return lines


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """The generated scenes, 40 frames each (1.6 s), written once for both tests."""
    return write_scenes(tmp_path_factory.mktemp("scenes"), DEV_VIDEOS, frames=40)


def test_slow_scenes_validate_and_pretraining_skips_only_the_marked_by_name(clips, tmp_path):
    store, ids = _store(tmp_path, [str(p) for p in clips])
    lines = _validate_then_pretrain(store, ids, tmp_path / "run")
    [skipped] = [line for line in lines if line.startswith("skipping")]
    assert skipped.startswith("skipping 2 video(s) validation quarantined: ")
    for name in BROKEN:
        assert ids[name] in skipped
    assert f"{ids['black']} (no_black_frames, no_long_frozen_runs)" in skipped
    for name in HEALTHY:
        assert ids[name] not in skipped


@pytest.mark.skipif(DEV_VIDEOS is None, reason="the shared dev clips (shared/data/davis2016-dev/videos) are not here")
def test_dev_videos_with_slow_scenes_validate_and_pretrain(clips, tmp_path):
    store, ids = _store(tmp_path, [str(DEV_VIDEOS), *map(str, clips)])
    assert sum(r.status.value == "complete" for r in read_catalog(store).values()) == 20 + len(clips)
    lines = _validate_then_pretrain(store, ids, tmp_path / "run")
    assert any(line.startswith("skipping 2 video(s) validation quarantined") for line in lines)
