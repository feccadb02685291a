"""benchmarks/gpu.py (``vmac bench gpu``): without CUDA it says so in one line and exits 0; its
code runs on the CPU at toy sizes (the same functions a CUDA machine runs at the paper's sizes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the one-line answer is for machines without")
def test_without_cuda_it_says_so_in_one_line_and_exits_0():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py")], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().splitlines() == [
        "vmac bench gpu: no CUDA device here (torch.cuda.is_available() is False); nothing measured"]


@pytest.mark.slow
def test_every_part_runs_on_the_cpu_at_toy_sizes(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--tiny",
                           "--work", str(tmp_path / "work"), "--out", str(out)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    [step] = report["steps"]
    assert step["masked_step_s"] > 0 and step["dense_step_s"] > 0 and step["dense_over_masked"] > 0
    assert report["loader"]["pairs_per_s_by_workers"]["0"] > 0
    assert report["evaluate"]["agree"] and report["evaluate"]["cpu_j_and_f"] > 0
    assert report["ddp"]["ok"] and report["ddp"]["processes"] == 2 and report["ddp"]["steps"] == 3, report["ddp"]
