"""The raw-pixel floor beside the random-init floor, and learning curves from several checkpoints of
one run (real ingest, real Zarr, no Prefect)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from storage_schemas.benchmark import EvaluateConfig
from tasks.evaluate.comparison import write_comparison
from tasks.evaluate.curve import learning_curves
from tasks.evaluate.report import read_report
from tasks.evaluate.weights import load_encoder, plan_encoders
from tests.evaluate.test_evaluate import _run, _save_encoder_exports


def _plan(tmp_path, **values) -> list[tuple[str, str]]:
    config = EvaluateConfig.model_validate({"data": "d", "out": str(tmp_path / "o"), **values})
    return [(s.name, s.kind) for s in plan_encoders(config)]


def test_the_pixel_floor_joins_every_random_init_floor_and_can_run_alone(tmp_path):
    _, encoder_pt, _ = _save_encoder_exports(tmp_path)
    assert _plan(tmp_path, checkpoints=[str(encoder_pt)]) == [
        ("run", "encoder"), ("random-init-convnextv2_atto", "random-init"), ("pixels", "pixels")]
    assert _plan(tmp_path, random_init=True, encoder="resnet18") == [
        ("random-init-resnet18", "random-init"), ("pixels", "pixels")]
    assert _plan(tmp_path, pixels=True) == [("pixels", "pixels")]
    assert _plan(tmp_path, random_init=True, pixel_floor=False) == [("random-init-convnextv2_atto", "random-init")]
    with pytest.raises(ValueError, match="random_init or pixels"):
        EvaluateConfig(data="d", out="o")
    floor, info = load_encoder(plan_encoders(EvaluateConfig(pixels=True, data="d", out="o"))[0], torch.device("cpu"))
    assert info.kind == "pixels" and info.parameters == 0 and info.sha256 is None
    assert "avg_pool2d" in info.weights_config["pooling"] and "L*a*b*" in info.weights_config["features"]


def test_pixel_floor_end_to_end_beside_the_random_init_floor(tmp_path, davis_store):
    store, _ = davis_store
    config = EvaluateConfig(random_init=True, encoder="resnet18", data=store, out=str(tmp_path / "out"), threads=1)
    paths, markdown = _run(config)
    assert [Path(p).name for p in paths] == ["benchmark-random-init-resnet18.json", "benchmark-pixels.json"]
    pixels = read_report(paths[1])
    assert pixels.encoder == "pixels" and not pixels.random_init and pixels.checkpoint.kind == "pixels"
    features = pixels.protocol.features
    assert (features.stride, features.stage_stride, features.stage_channels, features.upsample) == (8, 8, 3, None)
    assert {s.feature_size for s in pixels.sequences} == {(10, 13)}  # the same grid as the encoders'
    assert 0.0 <= pixels.summary["davis"].metrics["J&F-Mean"] <= 1.0
    assert "| pixels | pixels | raw pixels (Lab, cell mean) |" in markdown
    assert "the random-init and raw-pixel rows are the floors" in markdown
    assert (tmp_path / "out" / "overlays" / "pixels" / "blobs.png").exists()


def _run_with_checkpoints(tmp_path: Path) -> list[str]:
    """RUN/checkpoints/ckpt-{000000,000040}.pt (different weights), RUN/encoder.pt (step 80) and
    RUN/metrics.jsonl with cumulative CPU seconds, as pre-training writes them."""
    from vmac_core.encoders import build_encoder
    from vmac_core.model_config import ModelConfig

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    config = ModelConfig(encoder="convnextv2_atto").to_dict()
    paths = []
    for seed, step in ((1, 0), (2, 40)):
        torch.manual_seed(seed)
        model = {f"online.encoder.{k}": v for k, v in build_encoder("convnextv2_atto").state_dict().items()}
        path = run / "checkpoints" / f"ckpt-{step:06d}.pt"
        torch.save({"config": config, "model": model, "step": step}, path)
        paths.append(str(path))
    torch.manual_seed(3)
    torch.save({"config": config, "encoder": "convnextv2_atto", "state_dict": build_encoder("convnextv2_atto").state_dict(),
                "step": 80}, run / "encoder.pt")
    rows = [{"step": s, "loss": 1.0, "cpu_s": 1.5 * s, "wall_s": 2.0 * s, "threads": 2} for s in range(1, 81)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return [*paths, str(run / "encoder.pt")]


def test_several_checkpoints_of_one_run_draw_a_learning_curve(tmp_path, davis_store):
    store, _ = davis_store
    config = EvaluateConfig(checkpoints=_run_with_checkpoints(tmp_path), data=store, out=str(tmp_path / "out"),
                            threads=1)
    paths, markdown = _run(config)
    assert len(paths) == 5  # three points, the random-init and the pixel floors
    (curve,) = learning_curves([read_report(p) for p in paths])
    assert Path(curve.run_dir).name == "run" and [p.step for p in curve.points] == [0, 40, 80]
    assert [p.cpu_minutes for p in curve.points] == [0.0, 1.0, 2.0]  # metrics.jsonl's cpu_s at each step
    assert "## Learning curve" in markdown and "| run | 40 | 1.0 |" in markdown
    assert "| random init convnextv2_atto (floor) | – | – |" in markdown and "| raw pixels (Lab) (floor) |" in markdown
    with Image.open(tmp_path / "out" / "learning_curve.png") as image:
        assert image.size[0] > image.size[1] > 200
    # One checkpoint of a run is no curve: nothing is drawn and the section is left out.
    single = write_comparison(paths[2:], str(tmp_path / "single"))[1]
    assert "Learning curve" not in single and not (tmp_path / "single" / "learning_curve.png").exists()
