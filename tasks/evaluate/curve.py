"""Learning curves: the checkpoints of one pre-training run, scored along its steps and CPU time,
against the floors (``OUT/learning_curve.png`` and a section of comparison.md).

A run's checkpoints are grouped by their run directory (``RUN/checkpoints/ckpt-*.pt`` and
``RUN/encoder.pt``); a run with two or more scored steps is a curve. Its CPU minutes come from
the run's ``metrics.jsonl`` (``cpu_s`` of the row at that step, written by pre-training; step 0
is 0): the evaluate stage reads the file, it does not import the pretrain stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from storage_schemas import benchmark as bm
from storage_schemas.benchmark import BenchmarkReport
from storage_schemas.run import CHECKPOINTS_DIR, ENCODER, METRICS
from tasks.io.files import atomic_path
from tasks.io.metrics_file import metric_rows

# The metric a curve shows for each benchmark, the first benchmark present in the reports.
CURVE_METRIC = {"davis": "J&F-Mean", "youtube-vos": "J&F-Mean", "vip": "mIoU", "jhmdb": "PCK@0.1"}


@dataclass
class CurvePoint:
    step: int
    cpu_minutes: float | None  # None when the run's metrics do not say
    value: float  # the metric, a fraction
    name: str  # the report's encoder name


@dataclass
class Curve:
    run_dir: str
    points: list[CurvePoint] = field(default_factory=list)


def run_dir_of(path: str) -> Path | None:
    """The run directory of a checkpoint or encoder export; None for any other file."""
    p = Path(path)
    if p.parent.name == CHECKPOINTS_DIR:
        return p.parent.parent
    if p.name == ENCODER:
        return p.parent
    return None


def curve_benchmark(reports: list[BenchmarkReport]) -> str | None:
    """The benchmark a curve is drawn for: the first of davis, vip, jhmdb that the reports score."""
    present = {b for rep in reports for b in rep.summary}
    return next((b for b in bm.BENCHMARKS if b in present), None)


def _cpu_minutes_by_step(run_dir: Path) -> dict[int, float]:
    rows = metric_rows(run_dir / METRICS)
    return {0: 0.0, **{int(r["step"]): r["cpu_s"] / 60.0 for r in rows if "cpu_s" in r}}


def learning_curves(reports: list[BenchmarkReport]) -> list[Curve]:
    """One curve per run directory with two or more distinct scored steps, points in step order."""
    benchmark = curve_benchmark(reports)
    if benchmark is None:
        return []
    metric = CURVE_METRIC[benchmark]
    runs: dict[Path, dict[int, CurvePoint]] = {}
    for rep in reports:
        info = rep.checkpoint
        run_dir = run_dir_of(info.path) if info.path else None
        if run_dir is None or info.step is None or benchmark not in rep.summary:
            continue
        cpu = _cpu_minutes_by_step(run_dir).get(info.step)
        value = rep.summary[benchmark].metrics.get(metric, math.nan)
        runs.setdefault(run_dir, {}).setdefault(info.step, CurvePoint(info.step, cpu, value, rep.name))
    return [Curve(str(run_dir), [points[s] for s in sorted(points)]) for run_dir, points in runs.items()
            if len(points) >= 2]


def floors(reports: list[BenchmarkReport], benchmark: str) -> list[tuple[str, float]]:
    """(label, value) of each floor report: random-init per architecture, raw pixels."""
    metric = CURVE_METRIC[benchmark]
    out = []
    for rep in reports:
        if (rep.random_init or rep.checkpoint.kind == "pixels") and benchmark in rep.summary:
            label = f"random init {rep.encoder}" if rep.random_init else "raw pixels (Lab)"
            out.append((label, rep.summary[benchmark].metrics.get(metric, math.nan)))
    return out


def curve_markdown(reports: list[BenchmarkReport]) -> list[str]:
    """comparison.md's "Learning curve" section: one row per point of each curve; none without curves."""
    curves = learning_curves(reports)
    if not curves:
        return []
    benchmark = curve_benchmark(reports)
    metric = CURVE_METRIC[benchmark]
    lines = ["", "## Learning curve", "", f"`{bm.LEARNING_CURVE}`: {benchmark} {metric} against pre-training steps "
             "and CPU minutes (the run's `metrics.jsonl`), the floors as horizontal lines.", "",
             f"| run | step | CPU min | {benchmark} {metric} |", "|---|---:|---:|---:|"]
    for curve in curves:
        for p in curve.points:
            cpu = "–" if p.cpu_minutes is None else f"{p.cpu_minutes:.1f}"
            lines.append(f"| {Path(curve.run_dir).name} | {p.step} | {cpu} | {100 * p.value:.1f} |")
    for label, value in floors(reports, benchmark):
        lines.append(f"| {label} (floor) | – | – | {100 * value:.1f} |")
    return lines


def plot_learning_curves(reports: list[BenchmarkReport], path: Path) -> bool:
    """Draw ``path``: the metric against steps (left) and CPU minutes (right) for every curve, the
    floors as horizontal lines. Returns False (nothing drawn) when there is no curve."""
    curves = learning_curves(reports)
    if not curves:
        return False
    benchmark = curve_benchmark(reports)
    # matplotlib costs a second or more to import; most evaluations draw no curve.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_steps, ax_cpu) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for curve in curves:
        label = Path(curve.run_dir).name
        pts = curve.points
        ax_steps.plot([p.step for p in pts], [100 * p.value for p in pts], "o-", label=label)
        timed = [p for p in pts if p.cpu_minutes is not None]
        if timed:
            ax_cpu.plot([p.cpu_minutes for p in timed], [100 * p.value for p in timed], "o-", label=label)
    for (label, value), style in zip(floors(reports, benchmark), ("--", ":", "-.", (0, (1, 4)))):
        for ax in (ax_steps, ax_cpu):
            ax.axhline(100 * value, color="gray", linestyle=style, label=f"{label} (floor)")
    ax_steps.set_xlabel("pre-training steps")
    ax_cpu.set_xlabel("pre-training CPU minutes (process + loader workers)")
    ax_steps.set_ylabel(f"{benchmark} {CURVE_METRIC[benchmark]} (%)")
    for ax in (ax_steps, ax_cpu):
        ax.grid(alpha=0.3)
        ax.yaxis.get_major_formatter().set_useOffset(False)  # plain percentages, never "+7.5e1"
    # At least 2 points of the metric on the axis: a change of 0.01 must not look like a climb.
    low, high = ax_steps.get_ylim()
    if high - low < 2.0:
        middle = (high + low) / 2
        ax_steps.set_ylim(middle - 1.0, middle + 1.0)
    ax_cpu.legend(loc="best", fontsize=8)
    fig.suptitle("Learning curve: label propagation along pre-training")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return True
