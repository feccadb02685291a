"""The markdown report a person opens: verdict, failing rules with their videos, then every video."""

from __future__ import annotations

import numpy as np

from storage_schemas.records import Status
from storage_schemas.validation import FailedVideo, RuleOutcome, Severity, ValidationStamp
from tasks.validate.tables import ValidationTables

LISTED_DETAILS = 20  # offending videos shown per rule; the rest are counted


def cell_text(value) -> str:
    """One table value as a person reads it: "–" for missing, 4 significant digits, ≤ 80 characters."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _md(value, limit: bool = True) -> str:
    text = cell_text(value) if limit else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def report_markdown(stamp: ValidationStamp, rules: list[RuleOutcome], not_complete: list[FailedVideo],
                    tables: ValidationTables) -> str:
    """The report: the stamp's facts, every rule (failures first), videos not complete, complete videos."""
    lines = [
        *_header_lines(stamp),
        *_rule_lines(rules),
        *_quarantine_lines(stamp),
        *_not_complete_lines(not_complete),
        *_complete_video_lines(tables),
    ]
    return "\n".join(lines) + "\n"


def _header_lines(stamp: ValidationStamp) -> list[str]:
    """Title, verdict, and a table of what was validated, with which suites, thresholds and sampling."""
    counts = stamp.counts
    t = stamp.config.thresholds
    marked = f", {counts.quarantined} video(s) quarantined (pre-training skips them)" if counts.quarantined else ""
    verdict = (
        f"**PASSED**: all critical expectations met{marked}, {counts.warnings} warning(s)."
        if stamp.passed
        else f"**FAILED**: {counts.critical_failures} critical rule(s) failed{marked}, {counts.warnings} warning(s)."
    )
    suites = ", ".join(f"{s.name} v{s.version} (`{s.sha256[:12]}`)" for s in stamp.suites)
    return [
        f"# Validation of `{stamp.store}`",
        "",
        verdict,
        "",
        "| | |",
        "|---|---|",
        f"| validated at | {stamp.validated_at} |",
        f"| validation id | `{stamp.validation_id}` |",
        f"| videos | {counts.videos}: {counts.complete} complete, {counts.failed} failed, {counts.other} other |",
        f"| frames read | {counts.videos_read} complete video(s) read and re-hashed, {counts.videos_reused} reused "
        f"from the last validation (same version folder, record and sampling; `--full` reads all) |",
        f"| catalog fingerprint | `{stamp.catalog_fingerprint[:16]}` |",
        f"| suites | {suites} |",
        f"| full GE result | `{stamp.result_path}` |",
        f"| thresholds | fps {t.fps_min:g}–{t.fps_max:g}; height {t.height_min}–{t.height_max}; "
        f"width {t.width_min}–{t.width_max}; frame-count tolerance {t.frame_count_tolerance:g}; "
        f"frozen run ≤ {t.max_frozen_run} frames (same picture: within {t.frozen_level_max:g} levels); "
        f"black ≤ {t.max_black_frame_fraction:g}, constant ≤ {t.max_constant_frame_fraction:g} of sampled frames |",
        f"| sampling | {stamp.config.sample_windows} window(s) of {stamp.config.window_frames} frames "
        f"(whole video up to {stamp.config.sample_frames_per_video} frames) |",
    ]


def _rule_lines(rules: list[RuleOutcome]) -> list[str]:
    """One row per rule: critical failures, then warnings, then passes."""
    lines = [
        "",
        "## Rules",
        "",
        "| result | severity | rule | what it checks | offending videos |",
        "|---|---|---|---|---|",
    ]
    order = {Severity.critical: 0, Severity.quarantine: 1, Severity.warning: 2}
    shown_as = {Severity.critical: "**FAIL**", Severity.quarantine: "marks", Severity.warning: "warn"}
    for rule in sorted(rules, key=lambda r: (r.success, order[r.severity])):
        result = "pass" if rule.success else shown_as[rule.severity]
        shown = "<br>".join(_md(d, limit=False) for d in rule.details[:LISTED_DETAILS])
        if len(rule.details) > LISTED_DETAILS:
            shown += f"<br>… {len(rule.details) - LISTED_DETAILS} more"
        lines.append(f"| {result} | {rule.severity.value} | `{rule.rule}` | {_md(rule.description, limit=False)} | {shown} |")
    return lines


def _quarantine_lines(stamp: ValidationStamp) -> list[str]:
    """The videos quarantine rules marked, each with what it broke; nothing when there are none."""
    if not stamp.quarantined:
        return []
    lines = ["", "## Quarantined videos", "",
             "Pre-training skips these videos and names them; the store passes.", "",
             "| video_id | rules broken |", "|---|---|"]
    for video, broken in stamp.quarantined.items():
        lines.append(f"| {_md(video)} | {_md('; '.join(broken), limit=False)} |")
    return lines


def _not_complete_lines(not_complete: list[FailedVideo]) -> list[str]:
    """Failed, interrupted and unreadable videos with their reasons; nothing when there are none."""
    if not not_complete:
        return []
    lines = ["", "## Videos that are not complete", "", "| video_id | status | reason | source |", "|---|---|---|---|"]
    for video in not_complete:
        lines.append(f"| {_md(video.video_id)} | {video.status} | {_md(video.reason, limit=False)} | {_md(video.source_uri)} |")
    return lines


def _complete_video_lines(tables: ValidationTables) -> list[str]:
    """One row per complete video: its catalog shape and rate beside its sampled frame statistics."""
    stats = tables.frame_stats.set_index("video_id", drop=False)
    lines = [
        "",
        "## Complete videos",
        "",
        "| video_id | frames | fps | height×width | sampled | mean | std | black | constant | longest frozen run | mask ids |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in tables.catalog[tables.catalog["status"] == Status.complete.value].itertuples():
        s = stats.loc[row.video_id] if row.video_id in stats.index else {}  # a Series, or nothing sampled
        lines.append(
            f"| {_md(row.video_id)} | {_md(row.frame_count)} | {_md(row.fps)} | {_md(row.height)}×{_md(row.width)} "
            f"| {_md(s.get('sampled_windows'))} | {_md(s.get('sample_mean'))} | {_md(s.get('sample_std'))} "
            f"| {_md(s.get('black_frame_fraction'))} | {_md(s.get('constant_frame_fraction'))} "
            f"| {_md(s.get('longest_frozen_run'))} | {_md(s.get('mask_ids'))} |"
        )
    return lines
