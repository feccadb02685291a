"""Prefect tasks of the validation stage: tables from the store, GE suites on them, the record.

None is cached: the store changes under us, and a validation says what it is now.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from storage_schemas.validation import Severity, ValidateConfig, ValidationSummary, ValidationThresholds
from tasks.validate.record import record_started, record_summary
from tasks.validate.suites import run_suites
from tasks.validate.tables import ValidationTables, build_tables


@task(name="record_validation_started", cache_policy=NO_CACHE)
def record_validation_started(config: ValidateConfig, run_id: str, flow_run_id: str | None = None) -> str:
    """Append the run's ``started`` lineage record before the store is read."""
    return record_started(config, run_id, flow_run_id)


@task(name="build_validation_tables", cache_policy=NO_CACHE)
def build_validation_tables(config: ValidateConfig) -> ValidationTables:
    """Read the catalog and sample every complete video."""
    return build_tables(config)


@task(name="run_expectation_suites", cache_policy=NO_CACHE)
def run_expectation_suites(tables: ValidationTables, thresholds: ValidationThresholds) -> dict[str, dict]:
    """Every suite's GE result JSON by suite name; logs how many expectations each met."""
    logger = get_run_logger()
    results = run_suites(tables, thresholds)
    for name, result in results.items():
        stats = result.get("statistics", {})
        logger.info("%s: %s of %s expectations met", name, stats.get("successful_expectations"),
                    stats.get("evaluated_expectations"))
    return results


@task(name="record_validation", cache_policy=NO_CACHE)
def record_validation(config: ValidateConfig, tables: ValidationTables, results: dict[str, dict],
                      flow_run_id: str | None = None, run_id: str | None = None) -> ValidationSummary:
    """Result files, stamp and lineage record (``record_summary``); logs every failed rule."""
    summary = record_summary(config, tables, results, flow_run_id, run_id)
    logger = get_run_logger()
    logger.info("validation %s of %s: %s; report %s", summary.stamp.validation_id, config.store,
                "passed" if summary.passed else "FAILED", summary.stamp.report_path)
    if summary.stamp.quarantined:
        logger.warning("quarantined (pre-training skips them): %s", ", ".join(summary.stamp.quarantined))
    for rule in summary.critical_failures + summary.quarantines + summary.warnings:
        log = logger.error if rule.severity is Severity.critical else logger.warning
        log("[%s] %s: %s", rule.severity.value, rule.rule, "; ".join(rule.details))
    return summary


@task(name="publish_validation_report", cache_policy=NO_CACHE)
def publish_validation_report(summary: ValidationSummary) -> None:
    """The report as the Prefect markdown artifact ``validation-report``."""
    verdict = "passed" if summary.passed else "FAILED"
    create_markdown_artifact(
        key="validation-report",
        markdown=summary.report_markdown,
        description=f"validation of {summary.stamp.store}: {verdict}",
    )
