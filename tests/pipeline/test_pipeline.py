"""pipeline_flow end to end on the small embedded sample: reuse, new data, reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from storage_schemas.config import PipelineConfig, nest_overrides

pytestmark = pytest.mark.slow

# Motion masking: the pipeline ingests the training store with --motion by itself.
TINY_PRETRAIN = {"max_steps": 2, "input_size": 64, "decoder_dim": 32, "batch_size": 4, "loader_workers": 0,
                 "checkpoint_every": 1, "preview_every": 1, "plot_every": 1, "mask_strategy": "motion"}
TINY_EVALUATION = {"features": {"short_side": 64}}


def test_pipeline_runs_reuses_and_reprocesses_new_data(prefect_harness, tmp_path, make_video, capsys):
    from cli.main import main
    from flows.pipeline import pipeline_flow
    from tasks.io.store import read_catalog

    out = tmp_path / "out"
    sets = [f"--set={k}={v}" for k, v in TINY_PRETRAIN.items()] + ["--set=evaluate.features.short_side=64"]
    # The first run goes through the CLI, as `make run` does.
    assert main(["run", "--out", str(out), "--small-sample", "--workers", "1", "--no-progress", *sets]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out}/report.md" in printed
    report = (out / "report.md").read_text()
    assert "| validate | passed |" in report and "random-init" in report and "| pretrain | new:" in report
    run_dir = out / "runs" / "tiny-cpu-001"
    assert (run_dir / "encoder.pt").exists()
    _check_report_links_and_artifacts(out, report)
    assert all(r.has_motion for r in read_catalog(str(out / "train.zarr")).values())

    # Nothing new: nothing decoded, nothing trained, nothing re-evaluated.
    config = PipelineConfig(out=str(out), sample_small=True, pretrain=nest_overrides(TINY_PRETRAIN), dask_workers=1,
                            progress=False, evaluate=TINY_EVALUATION)
    second = pipeline_flow(config)
    assert second.frames_decoded == 0 and second.pretrain_action == "reuse" and second.evaluation is None
    assert second.run_dir == str(run_dir)
    assert "| evaluate | reused (same encoder and settings) |" in (out / "report.md").read_text()
    # Other evaluation settings (vmac run --set evaluate.…) score again; the same encoder is not retrained.
    rescored = pipeline_flow(config.model_copy(update={"evaluate": {"features": {"short_side": 48}}}))
    assert rescored.pretrain_action == "reuse" and rescored.evaluation is not None
    assert "| evaluate | evaluated |" in (out / "report.md").read_text()

    # New data: only the new video is decoded; training continues from the last checkpoint in a new run.
    new_dir = tmp_path / "new"
    make_video("fresh.mp4", frames=40, height=96, width=128, folder=new_dir)
    sample_videos = out / "sample" / "videos"
    config_new = config.model_copy(update={"sources": [str(sample_videos), str(new_dir)],
                                           "eval_sources": [str(out / "sample" / n) for n in ("davis", "vip", "jhmdb")]})
    third = pipeline_flow(config_new)
    assert third.frames_decoded == 40
    assert third.pretrain_action == "continue" and third.run_dir == str(out / "runs" / "tiny-cpu-002")
    assert len(read_catalog(config.train_store())) == len(list(sample_videos.glob("*.mp4"))) + 1


def _latest_artifacts(keys: list[str]) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_latest_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    return {a.key: a for a in found}


def _check_report_links_and_artifacts(out: Path, report: str) -> None:
    """report.md links its figures relative to itself; the UI gets progress, tables, a dashboard link
    and a report without links to files it cannot reach."""
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(links) == 2 and all(not Path(link).is_absolute() and (out / link).is_file() for link in links), links
    keys = ["ingest-progress", "ingest-outcomes", "dask-dashboard", "pretrain-progress", "evaluation-comparison-table",
            "pipeline-report"]
    found = _latest_artifacts(keys)
    assert set(found) == set(keys)
    assert found["ingest-progress"].type == found["pretrain-progress"].type == "progress"
    assert found["pretrain-progress"].data == found["ingest-progress"].data == 100
    outcomes = json.loads(found["ingest-outcomes"].data)
    assert outcomes and {"video_id", "outcome", "frames", "source"} <= set(outcomes[0])
    assert re.fullmatch(r"\[Dask dashboard\]\(http://[^)]+\)", found["dask-dashboard"].data)  # Prefect's link artifact
    rows = json.loads(found["evaluation-comparison-table"].data)
    assert any(r["weights"].startswith("random init") for r in rows) and "DAVIS J&F" in rows[0]
    shown = found["pipeline-report"].data
    assert "loss curve" in shown and not re.findall(r"\]\((?!https?://)[^)]*\)", shown)  # no link to a local file
