"""The evaluate stage without Prefect: weights loading, and every benchmark end to end on tiny
generated data in the DAVIS, VIP and JHMDB layouts (real ingest, real Zarr)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from storage_schemas.benchmark import (
    BenchmarkReport,
    EvaluateConfig,
    benchmark_json_schema,
)
from storage_schemas.palette import DAVIS_PALETTE
from tasks.evaluate import tasks as evaluate_tasks
from tasks.evaluate.comparison import write_comparison
from tasks.evaluate.outputs import VideoOutputs
from tasks.evaluate.overlays import PANEL_WIDTH
from tasks.evaluate.report import read_report
from tasks.evaluate.video import evaluate_video
from tasks.evaluate.videos import find_labelled_videos
from tasks.evaluate.weights import load_encoder, plan_encoders
from tasks.io.store import open_snapshot
from tests.evaluate.conftest import ingest_folder, write_jhmdb, write_vip
from vmac_core.augment import IMAGENET_MEAN, IMAGENET_STD


def _config(tmp_path, data, **extra) -> EvaluateConfig:
    # The raw-pixel floor has tests of its own; the others leave it out (one report each).
    values = {"random_init": True, "encoder": "resnet18", "data": str(data), "out": str(tmp_path / "out"),
              "threads": 1, "pixel_floor": False, **extra}
    return EvaluateConfig.model_validate(values)


def _run(config: EvaluateConfig) -> tuple[list[str], str]:
    """Plan and evaluate every encoder of ``config`` on its store; return (reports, comparison)."""
    plan = evaluate_tasks.plan_evaluation.fn(config, config.data)
    reports = [evaluate_tasks.evaluate_encoder.fn(spec, plan, config, "test-run") for spec in plan.encoders]
    return reports, write_comparison(reports, config.out)[1]


# --- propagation through the pipeline ----------------------------------------------------------------


class ColourEncoder(torch.nn.Module):
    """An oracle of the encoder contract: stride-8 features are each 8x8 block's mean colour
    (centred on grey). For flat-coloured objects that is a perfect texture feature."""

    out_channels = {8: 3}  # noqa: RUF012 (the encoder contract's attribute)

    def forward(self, x_bchw, active_b1hw=None, strides=(8,)):
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return {8: F.avg_pool2d(x_bchw * std + mean - 0.5, 8)}


def test_known_shifts_are_recovered_with_colour_features(tmp_path):
    """With features that identify the objects, propagation + geometry + scoring give J > 0.9:
    what is measured is the encoder, not the harness."""
    t_total, h, w = 10, 164, 236
    colours = np.array([[40, 40, 220], [220, 40, 40], [40, 220, 40]], np.uint8)  # background, 1, 2
    ids = np.zeros((t_total, h, w), np.uint8)
    for t in range(t_total):  # object 1 moves by (+2, +5) px per frame, object 2 by (-3, -4)
        ids[t, 10 + 2 * t:74 + 2 * t, 10 + 5 * t:90 + 5 * t] = 1
        ids[t, 96 - 3 * t:160 - 3 * t, 226 - 4 * t - 80:226 - 4 * t] = 2
    root = tmp_path / "davis"
    for t in range(t_total):
        (root / "JPEGImages" / "480p" / "flat").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / "480p" / "flat").mkdir(parents=True, exist_ok=True)
        Image.fromarray(colours[ids[t]]).save(root / "JPEGImages" / "480p" / "flat" / f"{t:05d}.png")
        mask = Image.fromarray(ids[t])
        mask.putpalette(DAVIS_PALETTE)
        mask.save(root / "Annotations" / "480p" / "flat" / f"{t:05d}.png")
    store = ingest_folder(root, tmp_path / "s.zarr")
    config = _config(tmp_path, store)
    (video,), _ = find_labelled_videos(store)
    result = evaluate_video(ColourEncoder(), video, open_snapshot(store), config, torch.device("cpu"),
                               VideoOutputs())
    assert result.benchmark == "davis" and result.frames == t_total and result.scored_frames == t_total - 2
    assert result.feature_size == (21, 30) and result.input_size == (h, w)
    for obj in ("1", "2"):
        assert result.per_object[obj]["J-Mean"] > 0.9, result.per_object
    assert result.metrics["J&F-Mean"] > 0.9


# --- weights ------------------------------------------------------------------------------------------


def _save_encoder_exports(tmp_path, name="convnextv2_atto"):
    """RUN/encoder.pt and RUN/checkpoints/ckpt-000100.pt shaped as pre-training writes them."""
    from vmac_core.encoders import build_encoder
    from vmac_core.model_config import ModelConfig

    torch.manual_seed(123)
    encoder = build_encoder(name)
    config = ModelConfig(encoder=name).to_dict()
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"config": config, "encoder": name, "state_dict": encoder.state_dict(), "step": 100}, run / "encoder.pt")
    model = {f"online.encoder.{k}": v for k, v in encoder.state_dict().items()}
    model |= {f"target.encoder.{k}": torch.zeros_like(v) for k, v in encoder.state_dict().items()}
    model["online.decoder.proj.weight"] = torch.zeros(4, 4)
    torch.save({"format": "vmac.videomac/1", "config": config, "model": model, "step": 100},
               run / "checkpoints" / "ckpt-000100.pt")
    return encoder, run / "encoder.pt", run / "checkpoints" / "ckpt-000100.pt"


def test_checkpoints_load_and_the_floor_is_seeded(tmp_path):
    source, encoder_pt, ckpt = _save_encoder_exports(tmp_path)
    config = _config(tmp_path, tmp_path, checkpoints=[str(encoder_pt), str(ckpt)], encoder=None, random_init=False)
    specs = plan_encoders(config)
    assert [(s.name, s.kind) for s in specs] == [
        ("run", "encoder"), ("run-ckpt-000100", "checkpoint"), ("random-init-convnextv2_atto", "random-init")]
    expected = source.state_dict()
    for spec in specs[:2]:
        encoder, info = load_encoder(spec, torch.device("cpu"))
        assert info.step == 100 and len(info.sha256) == 64 and info.weights_config["encoder"] == "convnextv2_atto"
        for key, value in encoder.state_dict().items():
            torch.testing.assert_close(value, expected[key])
    floor_a, info = load_encoder(specs[2], torch.device("cpu"))
    floor_b, _ = load_encoder(specs[2], torch.device("cpu"))
    assert info.kind == "random-init" and info.seed == 0 and info.sha256 is None
    key = next(iter(expected))
    torch.testing.assert_close(floor_a.state_dict()[key], floor_b.state_dict()[key])
    assert not torch.equal(floor_a.state_dict()[key], expected[key])
    with pytest.raises(ValueError, match="holds a convnextv2_atto"):
        plan_encoders(_config(tmp_path, tmp_path, checkpoints=[str(encoder_pt)], encoder="resnet18"))


# --- end to end per benchmark --------------------------------------------------------------------------------


def test_davis_random_init_artifacts(tmp_path, davis_store):
    store, truth = davis_store
    config = _config(tmp_path, store, save_masks=True, overlay_frames=3)
    (report_path,), markdown = _run(config)
    out = tmp_path / "out"
    assert report_path == str(out / "benchmark-random-init-resnet18.json")

    raw = json.loads(Path(report_path).read_text())
    jsonschema.validate(raw, benchmark_json_schema())
    report = BenchmarkReport.model_validate(raw)
    assert report.random_init and report.encoder == "resnet18" and report.checkpoint.seed == 0
    assert {s.sequence for s in report.sequences} == {"blobs", "single"}
    assert report.protocol.features.stride == 8 and report.protocol.features.stage_channels == 128
    assert report.protocol.propagation.context == 20 and report.environment.torch_threads == 1
    # The normalisation recorded is the one the features used (vmac_core.augment's).
    assert (report.protocol.features.normalisation_mean, report.protocol.features.normalisation_std) == (
        IMAGENET_MEAN, IMAGENET_STD)
    blobs = next(s for s in report.sequences if s.sequence == "blobs")
    assert blobs.stored_size == (76, 100) and blobs.input_size == (76, 100) and blobs.feature_size == (10, 13)
    assert set(blobs.per_object) == {"1", "2"} and blobs.scored_frames == 4
    summary = report.summary["davis"]
    assert summary.sequences == 2 and 0 <= summary.metrics["J&F-Mean"] <= 1
    assert summary.metrics["J&F-Mean"] == pytest.approx((summary.metrics["J-Mean"] + summary.metrics["F-Mean"]) / 2)
    assert all(len(v.frames_sha256) == 64 for v in report.data.videos)

    # DAVIS results layout: masks/<name>/<seq>/00000.png ..., palette PNGs of object ids.
    for seq, ids in truth.items():
        folder = out / "masks" / "random-init-resnet18" / seq
        assert sorted(p.name for p in folder.iterdir()) == [f"{t:05d}.png" for t in range(len(ids))]
        for t in range(len(ids)):
            image = Image.open(folder / f"{t:05d}.png")
            assert image.mode == "P" and image.size == (100, 76)
            assert bytes(image.getpalette()[:24]) == DAVIS_PALETTE[:24]
            assert set(np.unique(np.asarray(image))) <= set(range(ids.max() + 1))
        np.testing.assert_array_equal(np.asarray(Image.open(folder / "00000.png")), ids[0])
        overlay = Image.open(out / "overlays" / "random-init-resnet18" / f"{seq}.png")
        assert overlay.width == 2 * PANEL_WIDTH + 4 and overlay.height > 3 * 100

    assert "| random-init-resnet18 | resnet18 | random init (seed 0) |" in markdown
    assert (out / "comparison.md").read_text() == markdown


def test_vip_parts_scored_by_one_confusion_matrix(tmp_path):
    parts = write_vip(tmp_path / "vip")
    store = ingest_folder(tmp_path / "vip", tmp_path / "vip.zarr")
    (report_path,), markdown = _run(_config(tmp_path, store, encoder="convnextv2_atto", save_masks=True))
    report = read_report(report_path)
    (seq,) = report.sequences
    assert seq.benchmark == "vip" and seq.labels == 20 and seq.sequence == "v1"
    confusion = np.asarray(seq.confusion_matrix)
    assert confusion.shape == (20, 20) and confusion.sum() == parts[1:].size  # frame 0 is given, not scored
    np.testing.assert_array_equal(confusion.sum(1), np.bincount(parts[1:].ravel(), minlength=20))
    assert report.summary["vip"].metrics["mIoU"] == pytest.approx(seq.metrics["mIoU"])
    # Per-frame results reuse the source frame names (VIP's start at 000000000001).
    saved = sorted(p.name for p in (tmp_path / "out" / "masks" / report.name / "v1").iterdir())
    assert saved == [f"{t + 1:012d}.png" for t in range(len(parts))]
    row = next(line for line in markdown.splitlines() if line.startswith("| random-init-convnextv2_atto |"))
    assert row.count("| – ") == 6  # DAVIS J&F, J, F, YouTube-VOS J&F and both PCKs: no such videos


def test_jhmdb_keypoints_scored_by_pck(tmp_path):
    keypoints = write_jhmdb(tmp_path / "jhmdb")
    store = ingest_folder(tmp_path / "jhmdb", tmp_path / "jhmdb.zarr")
    config = _config(tmp_path, store, save_masks=True)
    (report_path,), _ = _run(config)
    report = read_report(report_path)
    (seq,) = report.sequences
    assert seq.benchmark == "jhmdb" and seq.labels == 15 and seq.scored_frames == len(keypoints) - 1
    assert set(seq.metrics) == {"PCK@0.1", "PCK@0.2"} and seq.metrics["PCK@0.1"] <= seq.metrics["PCK@0.2"]
    assert sum(seq.joint_counts["total"]) == 15 * (len(keypoints) - 1)
    assert report.summary["jhmdb"].metrics == pytest.approx(seq.metrics)
    assert (tmp_path / "out" / "overlays" / report.name / "clip1.png").exists()
    assert not (tmp_path / "out" / "masks").exists()  # keypoints have no masks to save


def test_unlabelled_and_unannotated_videos_are_skipped(tmp_path, davis_store, make_video):
    store, _ = davis_store
    make_video("plain.mp4", frames=6, height=64, width=96, folder=tmp_path / "videos")
    ingest_folder(tmp_path / "videos", tmp_path / "davis.zarr")
    videos, skipped = find_labelled_videos(store)
    assert [v.sequence for v in videos] == ["blobs", "single"]
    assert [s.reason for s in skipped] == ["no labels: neither masks nor keypoints"]
    assert find_labelled_videos(store, split="train")[0] == []


def test_a_deeper_stage_is_upsampled_to_stride_8_and_recorded(tmp_path, davis_store):
    store, _ = davis_store
    config = _config(tmp_path, store, encoder="convnextv2_atto", features={"stage_stride": 16, "batch_size": 3})
    (report_path,), markdown = _run(config)
    report = read_report(report_path)
    features = report.protocol.features
    assert (features.stride, features.stage_stride, features.stage_channels) == (8, 16, 160)
    assert features.upsample.startswith("bilinear") and features.batch_size == 3
    assert {s.feature_size for s in report.sequences} == {(10, 13)}
    assert "stage stride 16, upsampled" in markdown
