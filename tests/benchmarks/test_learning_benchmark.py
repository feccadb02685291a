"""benchmarks/learning.py end to end on a few frames of the real dev set (DAVIS-2016 dev): ingest,
validate, pre-train two seeds, evaluate them, a learning curve and both floors; one JSON.

The dev set is not part of the repository: the test skips, saying where it looked, without it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_learning", ROOT / "benchmarks" / "learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_learning_benchmark_on_a_few_frames_of_the_dev_set(prefect_harness, tmp_path):
    bench = _benchmark()
    if bench.find_dev_data() is None:
        pytest.skip(f"the DAVIS-2016 dev set is absent (looked for $VMAC_DEV_DATA and {bench.DATA_NAME} above {ROOT})")
    out = tmp_path / "learning.json"
    code = bench.main(["--work", str(tmp_path / "work"), "--out", str(out), "--videos", "2", "--sequences", "1",
                       "--frames", "8", "--seeds", "0", "1", "--curve", "0", "0.25", "1", "--eval-short-side", "64",
                       "--eval-threads", "1", "--set", "max_steps=4", "--set", "batch_size=4",
                       "--set", "input_size=64", "--set", "decoder_dim=32"])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["data"]["subset"] and report["data"]["frames_evaluated"] == 8
    assert report["data"]["sequences"] == ["bear"] and report["protocol"]["eval_short_side"] == 64
    # The dev set lists its sequences in ImageSets/480p/dev.txt and has no val list: all are scored.
    assert report["data"]["selection_notes"] == ["davis: no val split in this tree (its lists: dev): all 1 sequence"]
    assert [run["seed"] for run in report["runs"]] == [0, 1]
    for run in report["runs"]:
        assert run["steps"] == 4 and run["cpu_s"] > 0 and run["wall_s"] > 0 and run["threads"] >= 1
        assert run["omp_wait_policy"] == "PASSIVE" and 0 <= run["J&F-Mean"] <= 100
    assert set(report["floors"]) == {"random-init", "pixels"}
    assert [p["step"] for p in report["curve"]] == [0, 1, 4] and report["curve"][0]["cpu_minutes"] == 0
    assert set(report["goals"]) == {"beats_both_floors_by_10", "within_60_cpu_minutes", "curve_rises"}
    assert report["headline"]["seeds"] == 2 and "| random-init twin (floor) |" in report["table_markdown"]
    comparison = Path(report["comparison"])
    assert "## Learning curve" in comparison.read_text() and (comparison.parent / "learning_curve.png").exists()

    # Deterministic for a seed: training seed 0 again gives the same weights, bit for bit.
    first = Path(report["runs"][0]["run_dir"])
    again = bench.pretrain("real-cpu", report["overrides"], report["data"]["train_store"], tmp_path / "again", 0,
                           report["runs"][0]["threads"], [])
    a = torch.load(first / "encoder.pt", weights_only=True)["state_dict"]
    b = torch.load(Path(again["run_dir"]) / "encoder.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
