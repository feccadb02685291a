"""Real stores, a tiny real pre-training run and a real evaluation, built once per session.

Ingest runs without Prefect (``ingest_video`` per item, then the ingest lineage task's function),
as ``vmac ingest`` does on Dask, so every store carries the lineage record ``audit`` reads.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import moving_frames

TINY = {
    "encoder": "convnextv2_atto", "input_size": 32, "decoder_dim": 32, "batch_size": 4, "loader_workers": 0,
    "warmup_epochs": 0, "base_lr": 1e-3, "checkpoint_every": 4, "preview_every": 1000, "plot_every": 1000,
    "log_every": 1000, "progress": False, "skip_validation_check": True,
}


def ingest(sources: list[Path], store: Path, short_side: int = 32, shard_frames: int = 8) -> str:
    """Ingest ``sources`` into ``store`` and append the ingest lineage record; return the store."""
    from storage_schemas.config import IngestConfig
    from storage_schemas.records import DecodeParams
    from tasks.ingest.tasks import record_ingest_lineage
    from tasks.ingest.video import ingest_video
    from tasks.io.sources import expand_sources

    config = IngestConfig(sources=[str(s) for s in sources], store=str(store),
                          decode=DecodeParams(short_side=short_side, shard_frames=shard_frames), progress=False)
    outcomes = [ingest_video(item, config.store, config.decode) for item in expand_sources(config.sources)]
    assert all(o.action == "decoded" for o in outcomes), outcomes
    record_ingest_lineage.fn(config, outcomes, "test-ingest", None)
    return config.store


def write_videos(folder: Path, count: int, frames: int = 12) -> list[Path]:
    """``count`` small H.264 clips (frames x 40 x 56) of different seeded textures."""
    from tasks.io.ffmpeg import encode_video

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"clip{i}.mp4" for i in range(count)]
    for i, path in enumerate(paths):
        encode_video(moving_frames(frames, 40, 56, seed=i), str(path), 12)
    return paths


def train_tiny(store: str, out: Path, log=lambda message: None, **extra):
    """A 2-step convnextv2_atto run on ``store`` into ``out`` (``extra`` overrides the config)."""
    from storage_schemas.config import build_pretrain_config, nest_overrides
    from tasks.pretrain.train import train

    values = {**TINY, "stores": [store], "out": str(out), "max_steps": 2, **extra}
    config = build_pretrain_config(None, nest_overrides(values))
    return train(config, log=log)


@dataclass(frozen=True)
class Pipeline:
    store: str          # 2 clips, validated
    davis_store: str    # one DAVIS sequence at native size
    run_dir: Path
    encoder: Path
    checkpoint: Path
    eval_out: Path
    benchmark: Path


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Pipeline:
    """ingest → validate → pretrain (2 steps) → evaluate (one DAVIS sequence), all with lineage."""
    from storage_schemas.benchmark import EvaluateConfig
    from tasks.evaluate import tasks as evaluate_tasks
    from tasks.evaluate.comparison import write_comparison
    from tests.evaluate.conftest import write_davis
    from tests.validate.conftest import validate

    root = tmp_path_factory.mktemp("audit-pipeline")
    write_videos(root / "videos", 2)
    store = ingest([root / "videos"], root / "train.zarr")
    assert validate(store).passed
    result = train_tiny(store, root / "run")
    write_davis(root / "davis", {"blobs": 1}, frames=4, size=(40, 48))
    davis_store = ingest([root / "davis"], root / "davis.zarr", short_side=0)
    config = EvaluateConfig.model_validate({"checkpoints": [result.encoder], "data": davis_store,
                                            "out": str(root / "eval"), "threads": 1})
    plan = evaluate_tasks.plan_evaluation.fn(config, config.data)
    reports = [evaluate_tasks.evaluate_encoder.fn(spec, plan, config, "test-evaluate") for spec in plan.encoders]
    write_comparison(reports, config.out)
    evaluate_tasks.record_evaluation_lineage.fn(config, plan, reports, "test-evaluate", None)
    benchmark = next(Path(p) for p in reports if Path(p).name == "benchmark-run.json")
    return Pipeline(store, davis_store, root / "run", Path(result.encoder), Path(result.checkpoint), root / "eval",
                    benchmark)


@pytest.fixture
def restore_after(request):
    """restore_after(folder): snapshot ``folder`` now and put it back byte for byte after the test."""
    saved: list[tuple[Path, Path]] = []

    def _snapshot(folder: Path) -> None:
        copy = Path(request.getfixturevalue("tmp_path")) / f"snapshot-{len(saved)}"
        shutil.copytree(folder, copy)
        saved.append((folder, copy))

    yield _snapshot
    for folder, copy in saved:
        shutil.rmtree(folder)
        shutil.copytree(copy, folder)
