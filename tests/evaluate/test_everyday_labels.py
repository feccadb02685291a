"""Labelled folders as people make them: unpadded names, sparse annotations, objects that enter
later. What is scored must be what the labels say, and what is not must say why (docs/ingest.md,
docs/evaluate.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from storage_schemas.palette import DAVIS_PALETTE
from tasks.evaluate.outputs import video_outputs
from tasks.evaluate.video import evaluate_video
from tasks.evaluate.videos import NotEvaluable, find_labelled_videos
from tasks.io.store import open_snapshot
from tests.evaluate.conftest import ingest_folder
from tests.evaluate.test_evaluate import ColourEncoder, _config, _run

COLOURS = np.array([[40, 40, 220], [220, 40, 40], [40, 220, 40], [220, 220, 40]], np.uint8)


def flat_sequence(frames: int, h: int = 100, w: int = 140, late_object_from: int | None = None) -> np.ndarray:
    """Object ids (T, H, W): object 1 moving right, object 2 moving down; with
    ``late_object_from``, object 3 enters at that frame."""
    ids = np.zeros((frames, h, w), np.uint8)
    for t in range(frames):
        ids[t, 10:50, 10 + 4 * t:60 + 4 * t] = 1
        ids[t, 55 + 2 * t:90 + 2 * t, 90:130] = 2
        if late_object_from is not None and t >= late_object_from:
            ids[t, 5:25, 100:130] = 3
    return ids


def write_sequence(root: Path, seq: str, ids: np.ndarray, names: list[str], annotated: list[int] | None = None) -> None:
    images, annotations = root / "JPEGImages/480p" / seq, root / "Annotations/480p" / seq
    images.mkdir(parents=True)
    annotations.mkdir(parents=True)
    for t, name in enumerate(names):
        Image.fromarray(COLOURS[ids[t]]).save(images / f"{name}.png")
        if annotated is None or t in annotated:
            mask = Image.fromarray(ids[t])
            mask.putpalette(DAVIS_PALETTE)
            mask.save(annotations / f"{name}.png")


def evaluate_one(tmp_path: Path, root: Path, save_masks: bool = False):
    store = ingest_folder(root, tmp_path / "s.zarr")
    (video,), _ = find_labelled_videos(store)
    outputs = video_outputs(str(tmp_path / "out"), "colour", video.sequence, save_masks)
    result = evaluate_video(ColourEncoder(), video, open_snapshot(store), _config(tmp_path, store),
                            torch.device("cpu"), outputs)
    return result, outputs


def test_unpadded_names_are_scored_in_time_order_and_results_reuse_them(tmp_path):
    ids = flat_sequence(12)
    write_sequence(tmp_path / "padded", "seq", ids, [f"{t:05d}" for t in range(12)])
    write_sequence(tmp_path / "unpadded", "seq", ids, [str(t) for t in range(12)])
    padded, _ = evaluate_one(tmp_path / "a", tmp_path / "padded")
    unpadded, outputs = evaluate_one(tmp_path / "b", tmp_path / "unpadded", save_masks=True)
    assert unpadded.metrics == padded.metrics and unpadded.metrics["J&F-Mean"] > 0.9
    assert sorted(p.name for p in outputs.masks_dir.iterdir()) == sorted(f"{t}.png" for t in range(12))
    np.testing.assert_array_equal(np.asarray(Image.open(outputs.masks_dir / "0.png")), ids[0])


def test_a_sequence_that_starts_at_frame_30_keeps_its_names(tmp_path):
    ids = flat_sequence(6)
    write_sequence(tmp_path / "davis", "late", ids, [f"{t:05d}" for t in range(30, 36)])
    _, outputs = evaluate_one(tmp_path, tmp_path / "davis", save_masks=True)
    assert sorted(p.name for p in outputs.masks_dir.iterdir()) == [f"{t:05d}.png" for t in range(30, 36)]


@pytest.mark.parametrize("annotated,listed", [([0, 4], "frames 0, 4 of 8"), ([0], "frame 0 of 8")])
def test_too_few_annotated_frames_are_skipped_in_the_benchmarks_words(tmp_path, annotated, listed):
    write_sequence(tmp_path / "davis", "sparse", flat_sequence(8), [f"{t:05d}" for t in range(8)], annotated)
    with pytest.raises(NotEvaluable) as reason:
        evaluate_one(tmp_path, tmp_path / "davis")
    assert str(reason.value) == (f"only {listed} annotated: DAVIS scores the annotated frames between the "
                                 "first and the last, and none is left")


def test_the_report_names_skipped_sequences_and_keeps_nan_out_of_the_means(tmp_path):
    root = tmp_path / "davis"
    write_sequence(root, "good", flat_sequence(6), [f"{t:05d}" for t in range(6)])
    write_sequence(root, "sparse", flat_sequence(8), [f"{t:05d}" for t in range(8)], [0, 4])
    store = ingest_folder(root, tmp_path / "s.zarr")
    (path,), markdown = _run(_config(tmp_path, store, encoder="resnet18"))
    assert "- only frames 0, 4 of 8 annotated: DAVIS scores the annotated frames between" in markdown
    assert "nan" not in markdown.lower() and "stack" not in markdown
    assert "| good | 1, 2 | – |" in markdown  # the objects scored, per sequence


def test_objects_missing_from_the_first_frame_are_listed(tmp_path):
    write_sequence(tmp_path / "davis", "enters", flat_sequence(8, late_object_from=3), [f"{t:05d}" for t in range(8)])
    result, _ = evaluate_one(tmp_path, tmp_path / "davis")
    assert result.objects_scored == [1, 2] and result.objects_missing_from_first_frame == [3]
    assert set(result.per_object) == {"1", "2"}
