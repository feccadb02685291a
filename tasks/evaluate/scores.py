"""The benchmark JSON's metrics from ``vmac_core.metrics``: keys per benchmark, and the means over
sequences pooled as each benchmark defines them (``storage_schemas.benchmark.BenchmarkSummary``)."""

from __future__ import annotations

import numpy as np

from storage_schemas import benchmark as bm
from storage_schemas.benchmark import BenchmarkSummary, SequenceResult
from vmac_core import metrics

# vmac_core.metrics' DAVIS keys -> the report's (davis2017-evaluation's CSV columns).
DAVIS_KEYS = {"J_mean": "J-Mean", "J_recall": "J-Recall", "J_decay": "J-Decay",
              "F_mean": "F-Mean", "F_recall": "F-Recall", "F_decay": "F-Decay"}

# The metrics a log line or a per-sequence table shows for each benchmark.
HEADLINE = {"davis": ("J&F-Mean",), "youtube-vos": ("J&F-Mean",), "vip": ("mIoU",), "jhmdb": ("PCK@0.1", "PCK@0.2")}


def davis_metrics(objects: list[dict[str, float]]) -> dict[str, float]:
    """Means over objects (report keys in, report keys out), J&F-Mean first, via davis_summary."""
    summary = metrics.davis_summary([{"objects": {i: {k: o[n] for k, n in DAVIS_KEYS.items()}
                                                  for i, o in enumerate(objects)}}])
    return {"J&F-Mean": float(summary["JF_mean"]), **{n: float(summary[k]) for k, n in DAVIS_KEYS.items()}}


def pck_metrics(scores: dict, thresholds) -> dict[str, float]:
    """``PCK@<alpha>`` for each threshold, from ``metrics.pck`` or ``metrics.pck_summary`` output."""
    return {f"PCK@{a:g}": float(scores[f"pck@{a:g}"]) for a in thresholds}


def joint_counts(scores: dict) -> dict[str, list[int]]:
    """The per-joint counts of ``metrics.pck`` output (``total``, ``correct@<alpha>``) as lists."""
    return {k: [int(x) for x in v] for k, v in scores.items() if k == "total" or k.startswith("correct@")}


def summarise(results: list[SequenceResult], pck_thresholds=(0.1, 0.2),
              splits: dict[str, str | None] | None = None) -> dict[str, BenchmarkSummary]:
    """Benchmark -> mean metrics, pooled as each benchmark does: davis and youtube-vos over all
    objects of all sequences, vip from the summed confusion matrix, jhmdb from per-joint counts
    summed over clips; with the splits (``splits``: video_id -> split) the sequences came from.
    Benchmarks are never averaged together."""
    out: dict[str, BenchmarkSummary] = {}
    splits = splits or {}
    for benchmark in bm.BENCHMARKS:
        rows = [r for r in results if r.benchmark == benchmark]
        if not rows:
            continue
        if benchmark in ("davis", "youtube-vos"):
            values = davis_metrics([o for r in rows for o in r.per_object.values()])
        elif benchmark == "vip":
            confusion = np.sum([np.asarray(r.confusion_matrix, np.int64) for r in rows], axis=0)
            values = {"mIoU": metrics.miou(confusion)}
        else:
            values = pck_metrics(metrics.pck_summary([r.joint_counts for r in rows], pck_thresholds), pck_thresholds)
        averaged = sorted({splits.get(r.video_id) or bm.UNLISTED_SPLIT for r in rows})
        out[benchmark] = BenchmarkSummary(benchmark=benchmark, sequences=len(rows), splits=averaged,
                                          metrics={k: float(v) for k, v in values.items()})
    return out
