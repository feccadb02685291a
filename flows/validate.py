"""validate_flow: the expectation suites on a store, a stamp in it, a report beside it."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from storage_schemas.validation import ValidateConfig, ValidationSummary
from tasks.io.lineage import run_id as new_run_id
from tasks.validate.tasks import (
    build_validation_tables,
    publish_validation_report,
    record_validation,
    record_validation_started,
    run_expectation_suites,
)


class ValidationFailedError(RuntimeError):
    """Critical expectations failed; ``summary`` says which rules and which videos."""

    def __init__(self, summary: ValidationSummary):
        self.summary = summary
        stamp = summary.stamp
        super().__init__(
            f"validation of {stamp.store} failed: {len(summary.critical_failures)} critical rule(s)\n"
            f"{summary.failure_text()}\nreport: {stamp.report_path}"
        )

    def __reduce__(self):
        # Exceptions pickle as cls(*args); ours is built from the summary, not the message.
        return (ValidationFailedError, (self.summary,))


@flow(name="validate_flow")
def validate_flow(config: ValidateConfig) -> ValidationSummary:
    """Tables from the store → GE suites → result JSON, report and stamp in the store → artifact.

    Critical failures raise ValidationFailedError, but only after the stamp, the report and the
    artifact exist.
    """
    run_id, parent = new_run_id(), str(flow_run.id) if flow_run.id else None
    record_validation_started(config, run_id, parent)
    tables = build_validation_tables(config)
    results = run_expectation_suites(tables, config.thresholds)
    summary = record_validation(config, tables, results, flow_run_id=parent, run_id=run_id)
    publish_validation_report(summary)
    if not summary.passed:
        raise ValidationFailedError(summary)
    return summary
