"""TensorBoard event files of a real tiny run, read back with TensorBoard's own EventAccumulator:
the same scalars as metrics.jsonl (tags and values, step for step, a resume included) and the
preview grids as images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage_schemas.run import CHECKPOINTS_DIR, METRICS, TENSORBOARD_DIR, checkpoint_name
from tasks.pretrain.tensorboard import PREVIEW_TAG, scalars_of
from tasks.pretrain.train import train
from tests.pretrain.test_pretrain import _config, store  # noqa: F401 - the module's store fixture

pytest.importorskip("tensorboard", reason="the tensorboard extra (pulled by vmac[dev]) is not installed")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def _board(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir / TENSORBOARD_DIR), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]


def _assert_same_scalars(run_dir: Path) -> None:
    rows, board = _metrics(run_dir), _board(run_dir)
    expected = {tag for row in rows for tag in scalars_of(row)}
    assert expected >= {"loss", "loss_online", "loss_target", "loss_consistency", "lr", "momentum", "pairs_per_s"}
    assert set(board.Tags()["scalars"]) == expected
    for tag in expected:
        logged = [(e.step, e.value) for e in board.Scalars(tag)]
        assert [s for s, _ in logged] == [r["step"] for r in rows], tag  # each step once, in order
        for (_, value), row in zip(logged, rows):
            assert value == pytest.approx(row[tag], rel=1e-6, abs=1e-12), (tag, row["step"])


def test_scalars_and_previews_match_metrics_jsonl_through_a_resume(store, tmp_path):  # noqa: F811
    run_dir = tmp_path / "run"
    train(_config(store, run_dir, max_steps=5, checkpoint_every=2, preview_every=3), log=lambda m: None)
    _assert_same_scalars(run_dir)
    images = _board(run_dir).Images(PREVIEW_TAG)
    assert [i.step for i in images] == [3, 5] and all(i.width > 100 and i.height > 100 for i in images)

    # The run "crashed" after step 5 before its checkpoint: resuming from step 4 replays step 5,
    # and TensorBoard, like metrics.jsonl, keeps each step once.
    (run_dir / CHECKPOINTS_DIR / checkpoint_name(5)).unlink()
    train(_config(store, run_dir, max_steps=6, checkpoint_every=2, preview_every=3, resume=True), log=lambda m: None)
    assert [r["step"] for r in _metrics(run_dir)] == [1, 2, 3, 4, 5, 6]
    _assert_same_scalars(run_dir)


def test_switched_off_it_writes_nothing(store, tmp_path):  # noqa: F811
    run_dir = tmp_path / "off"
    train(_config(store, run_dir, max_steps=1, tensorboard=False), log=lambda m: None)
    assert not (run_dir / TENSORBOARD_DIR).exists()
