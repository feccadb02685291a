"""benchmarks/scale.py (``vmac bench scale``) at toy sizes (3 clips of 16 frames at least: 45 frame
pairs, more than tiny-cpu's batch of 32): every stage runs through the ``vmac`` command and is
timed, the growth of each stage's per-video time is computed, the in-process overhead over
ffmpeg's own decode is measured, and ``--add-to`` keeps an earlier report's rows and sections."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("ingest", "ingest_noop", "validate", "validate_noop", "audit", "pretrain_start")


@pytest.mark.slow
def test_stages_growth_overhead_and_an_earlier_report_kept(tmp_path):
    # An earlier report: a row of another worker count, which the new run does not measure, and a section.
    earlier_row = {"videos": 9, "workers": 2, "seconds": dict.fromkeys(STAGES, 9.0),
                   "per_video_ms": dict.fromkeys(STAGES, 1000.0)}
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"rows": [earlier_row], "noop_with_big_files": {"ratio": 1.5}}))
    out, png = tmp_path / "scale.json", tmp_path / "scale.png"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--workers", "1", "--sizes", "3", "5",
                           "--add-to", str(earlier), "--out", str(out), "--plot", str(png)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [(r["videos"], r["workers"]) for r in report["rows"]] == [(3, 1), (5, 1), (9, 2)]
    for row in report["rows"][:2]:
        assert set(row["seconds"]) == set(STAGES) and all(v > 0 for v in row["seconds"].values())
        assert row["per_video_ms"]["ingest"] == pytest.approx(1000 * row["seconds"]["ingest"] / row["videos"], rel=0.01)
    small, large = report["rows"][:2]
    assert report["growth"]["1"]["audit"] == pytest.approx(
        large["per_video_ms"]["audit"] / small["per_video_ms"]["audit"], abs=0.01)
    assert report["growth"]["2"] == {} and report["noop_with_big_files"] == {"ratio": 1.5}
    overhead = report["per_video_overhead"]
    assert overhead["ffmpeg_decode_ms"] > 0 and overhead["overhead_ms"] == pytest.approx(
        overhead["store_video_ms"] - overhead["ffmpeg_decode_ms"], abs=0.2)
    assert png.stat().st_size > 10_000
