"""validate_flow: the expectation suites on a store, a stamp in it, a report beside it.

Also the ``vmac validate`` subcommand (``add_validate_parser`` / ``cmd_validate``).
"""

from __future__ import annotations

import argparse

from prefect import flow
from prefect.runtime import flow_run

from storage_schemas.validation import Severity, ValidateConfig, ValidationSummary
from tasks.validate import (
    ValidationFailedError,
    build_validation_tables,
    publish_validation_report,
    record_validation,
    run_expectation_suites,
)


@flow(name="validate_flow")
def validate_flow(config: ValidateConfig) -> ValidationSummary:
    """Tables from the store → GE suites → result JSON, report and stamp in the store → artifact.

    Critical failures fail the flow, but only after the stamp, the report and the artifact exist.
    """
    tables = build_validation_tables(config)
    results = run_expectation_suites(tables, config.thresholds)
    summary = record_validation(config, tables, results, flow_run_id=str(flow_run.id) if flow_run.id else None)
    publish_validation_report(summary)
    if not summary.passed:
        raise ValidationFailedError(summary)
    return summary


def add_validate_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``vmac validate`` to a ``parser.add_subparsers()`` object."""
    p = subparsers.add_parser(
        "validate",
        help="run the expectation suites on a store; stamp the result into it (pretraining checks the stamp)",
    )
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    p.add_argument("--sample-frames", type=int, default=None, help="frames sampled per video (default 64)")
    p.add_argument("--sample-windows", type=int, default=None, help="contiguous windows the sample is split into (default 4)")
    p.add_argument("--max-frozen-run", type=int, default=None, metavar="K", help="longest frozen run allowed (default 8)")
    p.add_argument("--fps-range", type=float, nargs=2, default=None, metavar=("MIN", "MAX"), help="accepted stored fps (default 1 240)")
    p.add_argument("--frame-count-tolerance", type=float, default=None, help="relative frame-count slack vs the probe (default 0.05)")
    p.set_defaults(func=cmd_validate)
    return p


def validate_config_from_args(args: argparse.Namespace) -> ValidateConfig:
    """The ValidateConfig for CLI arguments; unset options keep the model's defaults."""
    thresholds: dict = {}
    if args.max_frozen_run is not None:
        thresholds["max_frozen_run"] = args.max_frozen_run
    if args.fps_range is not None:
        thresholds["fps_min"], thresholds["fps_max"] = args.fps_range
    if args.frame_count_tolerance is not None:
        thresholds["frame_count_tolerance"] = args.frame_count_tolerance
    values: dict = {"store": args.store, "thresholds": thresholds}
    if args.sample_frames is not None:
        values["sample_frames_per_video"] = args.sample_frames
    if args.sample_windows is not None:
        values["sample_windows"] = args.sample_windows
    return ValidateConfig.model_validate(values)


def print_validation_summary(summary: ValidationSummary, console=None) -> None:
    """A rich table of the failing rules (critical first) and where the report is."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    stamp = summary.stamp
    counts = stamp.counts
    failing = summary.critical_failures + summary.warnings
    table = Table(title=f"validation of {stamp.store}")
    for column in ("severity", "rule", "videos", "details"):
        table.add_column(column, overflow="fold")
    for rule in failing:
        style = "red" if rule.severity is Severity.critical else "yellow"
        details = "\n".join(rule.details[:20]) + (f"\n… {len(rule.details) - 20} more" if len(rule.details) > 20 else "")
        table.add_row(rule.severity.value, rule.rule, str(len(rule.videos)), details, style=style)
    if failing:
        console.print(table)
    verdict = "[green]PASSED[/green]" if summary.passed else "[red]FAILED[/red]"
    console.print(
        f"{verdict}: {counts.expectations - len(failing)} of {counts.expectations} rules met, "
        f"{counts.critical_failures} critical failure(s), {counts.warnings} warning(s); "
        f"{counts.videos} videos ({counts.complete} complete, {counts.failed} failed, {counts.other} other)"
    )
    console.print(f"report: {stamp.report_path}\nGE result: {stamp.result_path}")


def cmd_validate(args: argparse.Namespace) -> int:
    """Run validate_flow; print the summary; 1 when a critical rule failed, 2 without a store."""
    config = validate_config_from_args(args)
    try:
        summary = validate_flow(config)
    except ValidationFailedError as exc:
        summary = exc.summary
    except FileNotFoundError as exc:
        print(f"vmac validate: {exc}")
        return 2
    print_validation_summary(summary)
    return 0 if summary.passed else 1
