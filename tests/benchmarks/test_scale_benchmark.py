"""benchmarks/scale.py (``vmac bench scale``) at toy sizes: every stage runs through the ``vmac``
command and is timed, the growth of each stage's per-video time is computed, the in-process
overhead over ffmpeg's own decode is measured, and ``--add-to`` keeps an earlier report's rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = {"ingest", "ingest_noop", "validate", "validate_noop", "audit", "pretrain_start"}


@pytest.mark.slow
def test_stages_growth_overhead_and_added_rows(tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--workers", "1"]
    done = subprocess.run([*command, "--sizes", "2", "4", "--out", str(first)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(first.read_text())
    assert [(r["videos"], r["workers"]) for r in report["rows"]] == [(2, 1), (4, 1)]
    for row in report["rows"]:
        assert set(row["seconds"]) == STAGES and all(v > 0 for v in row["seconds"].values())
        assert row["per_video_ms"]["ingest"] == pytest.approx(1000 * row["seconds"]["ingest"] / row["videos"], rel=0.01)
    assert set(report["growth"]["1"]) == STAGES
    overhead = report["per_video_overhead"]
    assert overhead["ffmpeg_decode_ms"] > 0 and overhead["overhead_ms"] == pytest.approx(
        overhead["store_video_ms"] - overhead["ffmpeg_decode_ms"], abs=0.2)

    done = subprocess.run([*command, "--sizes", "3", "--add-to", str(first), "--out", str(second),
                           "--plot", str(tmp_path / "scale.png")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    merged = json.loads(second.read_text())
    assert [r["videos"] for r in merged["rows"]] == [2, 3, 4] and merged["rows"][0] == report["rows"][0]
    assert (tmp_path / "scale.png").stat().st_size > 10_000
