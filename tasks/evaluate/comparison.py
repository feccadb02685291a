"""``OUT/comparison.md``: every evaluated encoder side by side (percentages), the random-init and
raw-pixel floors included, then per-sequence headline scores and the videos left out."""

from __future__ import annotations

import math
from pathlib import Path

from storage_schemas import benchmark as bm
from storage_schemas.benchmark import BenchmarkReport
from storage_schemas.layout import LINEAGE_DIR
from tasks.evaluate.curve import curve_markdown, plot_learning_curves
from tasks.evaluate.report import read_report
from tasks.evaluate.scores import HEADLINE
from tasks.io.files import remove_own, write_atomic
from tasks.io.lineage import names_output

# Columns of the comparison: (benchmark, metric key, header).
_COLUMNS = (
    ("davis", "J&F-Mean", "DAVIS J&F"), ("davis", "J-Mean", "J"), ("davis", "F-Mean", "F"),
    ("youtube-vos", "J&F-Mean", "YouTube-VOS J&F"),
    ("vip", "mIoU", "VIP mIoU"),
    ("jhmdb", "PCK@0.1", "JHMDB PCK@0.1"), ("jhmdb", "PCK@0.2", "PCK@0.2"),
)


def _pct(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def _protocol_line(reports: list[BenchmarkReport]) -> str:
    """The data, feature and propagation settings of the first report, in one paragraph."""
    first = reports[0]
    p, f = first.protocol.propagation, first.protocol.features
    sizes = sorted({(r.benchmark, r.input_size) for rep in reports for r in rep.sequences})
    size_text = ", ".join(f"{b} {h}×{w}" for b, (h, w) in sizes) or "–"
    return (f"Data: `{first.data.source}` ({len(first.data.videos)} labelled videos). "
            f"Features: stride {f.stride} (stage stride {f.stage_stride}{', upsampled' if f.upsample else ''}), "
            f"input {'stored resolution' if f.short_side is None else f'short side {f.short_side}'} ({size_text}). "
            f"CRW propagation: context {p.context}, radius {p.radius:g}, top-k {p.topk}, temperature {p.temperature:g}. "
            "Scores in %; the random-init and raw-pixel rows are the floors (raw pixels: Lab colour averaged "
            f"over each {f.stage_stride}×{f.stage_stride} cell).{_reuse_note(reports)}")


def _reuse_note(reports: list[BenchmarkReport]) -> str:
    """A sentence naming the floors copied from the floor cache; empty when none was."""
    reused = [rep.name for rep in reports if rep.floor_cache and rep.floor_cache.reused]
    if not reused:
        return ""
    return (f" Reused from the floor cache, not run again (same data, protocol, architecture and seed): "
            f"{', '.join(reused)}.")


def _weights(rep: BenchmarkReport) -> str:
    reused = f", reused from run {rep.run_id[:8]}" if rep.floor_cache and rep.floor_cache.reused else ""
    if rep.random_init:
        return f"random init (seed {rep.checkpoint.seed}){reused}"
    if rep.checkpoint.kind == "pixels":
        return f"raw pixels (Lab, cell mean){reused}"
    step = f" step {rep.checkpoint.step}" if rep.checkpoint.step is not None else ""
    return f"{rep.checkpoint.kind}{step} `{(rep.checkpoint.sha256 or '')[:8]}`"


def _score(rep: BenchmarkReport, benchmark: str, key: str) -> float | None:
    """A benchmark mean in %, one decimal; None when not evaluated or not a number."""
    value = rep.summary[benchmark].metrics.get(key) if benchmark in rep.summary else None
    return None if value is None or math.isnan(value) else round(100 * value, 1)


def comparison_table(reports: list[BenchmarkReport]) -> list[dict]:
    """The main table of the comparison as rows (a Prefect table artifact): one per encoder."""
    return [{"model": rep.name, "encoder": rep.encoder, "weights": _weights(rep).replace("`", ""),
             **{header: _score(rep, b, k) for b, k, header in _COLUMNS},
             "s/frame": round(rep.timing.seconds_per_frame, 2)} for rep in reports]


def _encoder_rows(reports: list[BenchmarkReport]) -> list[str]:
    """The main table: one row per encoder, the benchmark means of _COLUMNS and s/frame."""
    lines = ["| model | encoder | weights | " + " | ".join(h for _, _, h in _COLUMNS) + " | s/frame |",
             "|---|---|---|" + "---:|" * (len(_COLUMNS) + 1)]
    for rep in reports:
        cells = [_pct(rep.summary[b].metrics.get(k)) if b in rep.summary else "–" for b, k, _ in _COLUMNS]
        lines.append(f"| {rep.name} | {rep.encoder} | {_weights(rep)} | " + " | ".join(cells)
                     + f" | {rep.timing.seconds_per_frame:.2f} |")
    return lines


def _sequence_rows(reports: list[BenchmarkReport]) -> list[str]:
    """"Per sequence": each sequence's headline metrics, one column per encoder; none when empty."""
    sequences = sorted({(r.benchmark, r.sequence) for rep in reports for r in rep.sequences},
                       key=lambda bs: (bm.BENCHMARKS.index(bs[0]), bs[1]))
    if not sequences:
        return []
    lines = ["", "## Per sequence", "",
             "| task | sequence | metric | " + " | ".join(rep.name for rep in reports) + " |",
             "|---|---|---|" + "---:|" * len(reports)]
    for benchmark, seq in sequences:
        for key in HEADLINE[benchmark]:
            cells = []
            for rep in reports:
                row = next((r for r in rep.sequences if (r.benchmark, r.sequence) == (benchmark, seq)), None)
                cells.append(_pct(row.metrics.get(key)) if row else "–")
            lines.append(f"| {benchmark} | {seq} | {key} | " + " | ".join(cells) + " |")
    return lines


def _split_lines(report: BenchmarkReport) -> list[str]:
    """Which splits each benchmark's mean averages, and how many sequences (never benchmarks together)."""
    if not report.summary:
        return []
    parts = [f"{b} over {', '.join(s.splits) or bm.UNLISTED_SPLIT} ({s.sequences} sequence{'s' * (s.sequences != 1)})"
             for b, s in report.summary.items()]
    notes = [f"Selection: {note}." for note in report.data.notes]
    return ["", "Each mean averages one benchmark: " + "; ".join(parts) + ".", *([""] + notes if notes else [])]


def _object_lines(report: BenchmarkReport) -> list[str]:
    """DAVIS: the object ids scored per sequence, and those frame 0 does not show; YouTube-VOS:
    each object scored and the frame its propagation started from."""
    rows = [r for r in report.sequences if r.objects_scored is not None]
    if not rows:
        return []
    lines = ["", "## Objects scored", "",
             "| benchmark | sequence | scored (youtube-vos: from its first frame) | not in frame 0 (cannot be propagated) |",
             "|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (bm.BENCHMARKS.index(r.benchmark), r.sequence)):
        missing = ", ".join(map(str, r.objects_missing_from_first_frame or [])) or "–"
        first = r.first_frames or {}
        scored = ", ".join(f"{k} (from frame {first[str(k)]})" if str(k) in first else str(k) for k in r.objects_scored)
        lines.append(f"| {r.benchmark} | {r.sequence} | {scored} | {missing} |")
    return lines


def _skipped_lines(report: BenchmarkReport) -> list[str]:
    """The videos not evaluated, grouped by reason (five ids shown per reason); none when empty."""
    by_reason: dict[str, list[str]] = {}
    for s in report.data.skipped:
        by_reason.setdefault(s.reason, []).append(s.video_id)
    if not by_reason:
        return []
    return ["", f"Not evaluated ({len(report.data.skipped)} videos):", ""] + [
        f"- {reason}: " + ", ".join(f"`{v}`" for v in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        for reason, ids in by_reason.items()]


def comparison_markdown(reports: list[BenchmarkReport]) -> str:
    """Every evaluated encoder side by side (percentages), then per-sequence headline scores."""
    if not reports:
        return "# Label propagation\n\nNothing was evaluated.\n"
    lines = ["# Label propagation", "", _protocol_line(reports), "", *_encoder_rows(reports),
             *_split_lines(reports[0]), *curve_markdown(reports), *_sequence_rows(reports), *_object_lines(reports[0]),
             *_skipped_lines(reports[0])]
    return "\n".join(lines) + "\n"


def write_comparison(report_paths: list[str], out: str) -> tuple[str, str, list[dict]]:
    """Write ``OUT/comparison.md`` from the benchmark JSONs at ``report_paths``, and
    ``OUT/learning_curve.png`` when two or more checkpoints of one run were scored; return
    (comparison path, markdown, the main table's rows)."""
    reports = [read_report(p) for p in report_paths]
    markdown = comparison_markdown(reports)
    path = Path(out) / bm.COMPARISON
    write_atomic(path, markdown)
    curve = Path(out) / bm.LEARNING_CURVE
    # An earlier evaluation's curve is not this one's: removed, but only when an earlier run's
    # lineage names it with these bytes (vmac wrote it); a file of the user's own is left alone.
    if not plot_learning_curves(reports, curve) and names_output(str(Path(out) / LINEAGE_DIR), curve):
        remove_own(curve)
    return str(path), markdown, comparison_table(reports)
