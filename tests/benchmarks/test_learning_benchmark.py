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
    args = ["--work", str(tmp_path / "work"), "--out", str(out), "--videos", "2", "--sequences", "2",
            "--frames", "8", "--seeds", "0", "1", "--curve", "0", "0.25", "1", "--eval-short-side", "64",
            "--eval-threads", "1", "--set", "max_steps=4", "--set", "batch_size=4",
            "--set", "input_size=64", "--set", "decoder_dim=32"]
    assert bench.main([*args, "--native"]) == 0
    report = json.loads(out.read_text())
    assert report["data"]["subset"] and report["data"]["frames_evaluated"] == 16
    assert report["data"]["sequences"] == ["bear", "bmx-bumps"] and report["protocol"]["eval_short_side"] == 64
    # Each half of the sequences apart, and the seeds and floors again at the stored resolution.
    assert report["halves_sequences"] == {"A": ["bear"], "B": ["bmx-bumps"]}
    assert set(report["half_margins"]) == {"A", "B"} and set(report["runs"][0]["halves"]) == {"A", "B"}
    native = report["native"]
    assert native["headline"]["seeds"] == 2 and set(native["floors"]) == {"random-init", "pixels"}
    assert native["headline"]["J&F-Mean"] != report["headline"]["J&F-Mean"]
    assert not any(f["reused_from_cache"] for f in report["floors"].values())
    # The dev set lists its sequences in ImageSets/480p/dev.txt and has no val list: all are scored.
    assert report["data"]["selection_notes"] == ["davis: no val split in this tree (its lists: dev): all 2 sequences"]
    assert [run["seed"] for run in report["runs"]] == [0, 1]
    for run in report["runs"]:
        assert run["steps"] == 4 and run["cpu_s"] > 0 and run["wall_s"] > 0 and run["threads"] >= 1
        assert run["omp_wait_policy"] == "PASSIVE" and 0 <= run["J&F-Mean"] <= 100
    assert set(report["floors"]) == {"random-init", "pixels"}
    assert [p["step"] for p in report["curve"]] == [0, 1, 4] and report["curve"][0]["cpu_minutes"] == 0
    assert set(report["goals"]) == {"beats_both_floors_by_13", "within_60_cpu_minutes", "curve_rises_over_last_quarter"}
    assert report["headline"]["seeds"] == 2 and "| random-init twin (floor) |" in report["table_markdown"]
    comparison = Path(report["comparison"])
    assert "## Learning curve" in comparison.read_text() and (comparison.parent / "learning_curve.png").exists()

    # A second run on the same data (nothing new to train) reuses the floors from the cache.
    assert bench.main(args) == 0
    again = json.loads(out.read_text())
    assert all(f["reused_from_cache"] for f in again["floors"].values())
    assert again["floors"]["pixels"]["J&F-Mean"] == report["floors"]["pixels"]["J&F-Mean"]

    # Deterministic for a seed: training seed 0 again gives the same weights, bit for bit.
    first = Path(report["runs"][0]["run_dir"])
    again = bench.pretrain("real-cpu", report["overrides"], report["data"]["train_store"], tmp_path / "again", 0,
                           report["runs"][0]["threads"], [])
    a = torch.load(first / "encoder.pt", weights_only=True)["state_dict"]
    b = torch.load(Path(again["run_dir"]) / "encoder.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
