"""The README's result figures against the benchmark JSON they were copied from
(``benchmarks/results/``): re-running a benchmark that changes a figure fails here until the README
says the new one, and a README edit that drifts from the measurement fails too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
RESULTS = ROOT / "benchmarks" / "results"


def result(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def table_row(first_cell: str, after: str) -> list[str]:
    """The cells, bold marks removed, of the first README table row whose first cell is
    ``first_cell`` after the text ``after``."""
    assert after in README, f"the README no longer says {after!r}"
    rows = [[cell.strip().replace("**", "") for cell in line.strip().strip("|").split("|")]
            for line in README[README.index(after):].splitlines() if line.startswith("|")]
    found = [cells[1:] for cells in rows if cells[0] == first_cell]
    assert found, f"no README row starting {first_cell!r} after {after!r}"
    return found[0]


def numbers(cell: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"\d[\d,]*(?:\.\d+)?", cell)]


def same(written: list[float], measured: list[float], places: int = 1) -> bool:
    """The README's figures are the measured ones rounded to ``places`` (either way at a half)."""
    return len(written) == len(measured) and all(
        abs(w - m) <= 0.5 * 10 ** -places + 1e-9 for w, m in zip(written, measured))


LEARNING = "Pre-training beats both floors on real video"


def test_learning_table_is_the_benchmark_json():
    report = result("learning")
    head, runs = report["headline"], report["runs"]
    jf, j, f, cost = table_row("real-cpu, mean of 3 seeds (± s.d.)", LEARNING)
    assert same(numbers(jf) + [float(j), float(f)],
                [head[key] for key in ("J&F-Mean", "J&F-std", "J-Mean", "F-Mean")])
    assert head["seeds"] == 3 and len(runs) == 3
    steps = {run["steps"] for run in runs}
    assert len(steps) == 1
    written_steps, written_minutes = numbers(cost)
    assert written_steps == steps.pop() and same([written_minutes], [head["cpu_minutes_mean"]])
    for first_cell, floor in (("random-init twin (floor)", "random-init"), ("raw pixels, Lab (floor)", "pixels")):
        scores = report["floors"][floor]
        assert same([float(x) for x in table_row(first_cell, LEARNING)[:3]],
                    [scores[key] for key in ("J&F-Mean", "J-Mean", "F-Mean")]), first_cell


def test_masking_line_is_the_benchmark_json():
    report = result("masking")
    table = {strategy: report["summary"]["table"][strategy] for strategy in report["strategies"]}
    line = " ".join(next(part for part in README.split("\n\n") if "Mask strategies on real video" in part).split())
    for strategy, scores in table.items():
        found = re.search(rf"{strategy}(?: \([^)]*\))? (\d+\.\d) ± (\d+\.\d)", line)
        assert found, f"README's masking line leaves out {strategy}"
        assert same([float(found[1]), float(found[2])], [scores["J&F"]["mean"], scores["J&F"]["std"]]), strategy


SCALE_ROWS = {
    "first `vmac ingest`": "ingest",
    "`vmac ingest`, nothing changed": "ingest_noop",
    "first `vmac validate`": "validate",
    "`vmac validate`, nothing changed": "validate_noop",
    "`vmac audit` (re-hashes everything)": "audit",
    "`vmac pretrain` to its first step": "pretrain_start",
}


@pytest.mark.parametrize("first_cell", list(SCALE_ROWS))
def test_scale_table_is_the_benchmark_json(first_cell):
    report, stage = result("scale"), SCALE_ROWS[first_cell]
    rows = {row["videos"]: row for row in report["rows"] if row["workers"] == 2}
    cells = table_row(first_cell, "Cost against the number of videos")
    for cell, videos in zip(cells[:3], (100, 1000, 10000)):
        assert same(numbers(cell), [rows[videos]["seconds"][stage]]), (first_cell, videos)
    assert same(numbers(cells[3]), [rows[10000]["per_video_ms"][stage]])
    assert same([float(cells[4])], [report["growth"]["2"][stage]], places=2)
