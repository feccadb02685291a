"""evaluate_flow through the vmac evaluate command: real Prefect (test harness), real ingest_flow
on Dask, real Zarr; checks every artifact of the run."""

from __future__ import annotations

import argparse
import asyncio
import json

import pytest

from cli.args import evaluate_config_from_args
from cli.commands import cmd_evaluate
from cli.main import build_parser
from storage_schemas.benchmark import BenchmarkReport
from tasks.io.lineage import read_records
from tests.evaluate.conftest import write_davis
from tests.evaluate.test_evaluate import _save_encoder_exports

pytestmark = pytest.mark.slow


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(["evaluate", *argv])


def test_cli_arguments_build_the_config(tmp_path):
    args = _parse(["--checkpoint", "a.pt", "b.pt", "--checkpoint", "c.pt", "--data", "d", "--out", "o",
                   "--topk", "5", "--temperature", "0.1", "--stage-stride", "16", "--device", "cpu", "--save-masks"])
    assert args.func is cmd_evaluate
    config = evaluate_config_from_args(args)
    assert config.checkpoints == ["a.pt", "b.pt", "c.pt"] and config.save_masks and config.device == "cpu"
    assert (config.propagation.topk, config.propagation.temperature, config.propagation.context) == (5, 0.1, 20)
    assert config.features.stage_stride == 16 and config.features.stride == 8
    with pytest.raises(ValueError, match="at least one checkpoint"):
        evaluate_config_from_args(_parse(["--data", "d", "--out", "o"]))
    floors = evaluate_config_from_args(_parse(["--baseline", "pixels", "--baseline", "random-init", "--data", "d",
                                               "--out", "o"]))
    assert floors.pixels and floors.random_init and floors.pixel_floor and not floors.checkpoints
    alone = evaluate_config_from_args(_parse(["--baseline", "pixels", "--data", "d", "--out", "o"]))
    assert alone.pixels and not alone.random_init
    assert not evaluate_config_from_args(_parse(["--baseline", "random-init", "--no-pixel-floor", "--data", "d", "--out", "o"])
                                         ).pixel_floor


def test_evaluate_command_on_a_davis_folder(prefect_harness, tmp_path, capsys):
    from prefect.client.orchestration import get_client

    write_davis(tmp_path / "davis", {"blobs": 2, "single": 1}, frames=5)
    _, encoder_pt, _ = _save_encoder_exports(tmp_path)
    out = tmp_path / "out"
    code = cmd_evaluate(_parse(["--checkpoint", str(encoder_pt), "--data", str(tmp_path / "davis"), "--out", str(out),
                                "--save-masks", "--threads", "1", "--device", "cpu"]))
    assert code == 0
    printed = capsys.readouterr().out
    assert "| run | convnextv2_atto | encoder step 100" in printed and "| random-init-convnextv2_atto |" in printed
    assert "| pixels | pixels | raw pixels (Lab, cell mean) |" in printed  # the second floor, always there
    assert f"{out}/comparison.md" in printed

    # The folder was ingested at native size into OUT/data.zarr; the encoder and both floors were scored.
    reports = {p.name: BenchmarkReport.model_validate_json(p.read_text()) for p in out.glob("benchmark-*.json")}
    assert set(reports) == {"benchmark-run.json", "benchmark-random-init-convnextv2_atto.json", "benchmark-pixels.json"}
    assert reports["benchmark-pixels.json"].checkpoint.kind == "pixels"
    trained = reports["benchmark-run.json"]
    assert trained.data.store == str(out / "data.zarr") and trained.data.source == str(tmp_path / "davis")
    assert not trained.random_init and trained.checkpoint.step == 100 and trained.flow_run_id
    assert {s.sequence: s.stored_size for s in trained.sequences} == {"blobs": (76, 100), "single": (76, 100)}
    for name in ("run", "random-init-convnextv2_atto"):
        assert max(p.name for p in (out / "masks" / name / "blobs").iterdir()) == "00004.png"
        assert (out / "overlays" / name / "single.png").exists()

    # The comparison went out as a Prefect artifact too.
    async def artifact():
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

        async with get_client() as client:  # this run's: other tests write the same key to the same server
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["evaluation-comparison"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[trained.flow_run_id])))
            return found[0].data if found else None

    assert asyncio.run(artifact()) == (out / "comparison.md").read_text()

    # One run's lineage: started before any encoder ran; completed with weights and stored videos in,
    # benchmark files and the report out.
    started, record = read_records(str(out / "lineage"))
    assert started.status == "started" and started.run_id == record.run_id
    assert record.kind == "evaluate" and record.status == "completed" and record.flow_run_id == trained.flow_run_id
    kinds = sorted(d.kind for d in record.inputs)
    assert kinds == ["encoder", "store", "video", "video"]
    assert next(d for d in record.inputs if d.kind == "encoder").sha256 == trained.checkpoint.sha256
    assert sorted(d.kind for d in record.outputs) == ["benchmark", "benchmark", "benchmark", "report"]
    assert json.loads(json.dumps(record.parameters))["save_masks"] is True
