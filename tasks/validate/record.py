"""What a validation leaves behind: the GE result JSON and the markdown report under
``<store>/validation`` (append-only, ``<timestamp>-<id>.json|md``), the stamp committed into the
store's catalog (``tasks.io.snapshots``), and a ``validate`` lineage record in ``<store>/lineage``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone

import pandas as pd

from storage_schemas.layout import LINEAGE_DIR
from storage_schemas.lineage import Dataset
from storage_schemas.records import Status
from storage_schemas.validation import (
    FailedVideo,
    RuleOutcome,
    Severity,
    SuiteDefinition,
    SuiteVersion,
    ValidateConfig,
    ValidationCounts,
    ValidationStamp,
    ValidationSummary,
    load_suites,
)
from tasks.io import lineage
from tasks.io.files import file_sha256
from tasks.io.lineage import code_version
from tasks.io.snapshots import commit
from tasks.io.store import open_snapshot
from tasks.validate.report import report_markdown
from tasks.validate.reuse import FRAME_STATS_SUFFIX, frame_stats_document, result_uri, write_new
from tasks.validate.suites import rule_outcomes
from tasks.validate.tables import ValidationTables


def quarantined_videos(rules: list[RuleOutcome]) -> dict[str, list[str]]:
    """video_id → each quarantine rule it broke, with what was measured ('rule: detail')."""
    marked: dict[str, list[str]] = {}
    for rule in rules:
        if rule.success or rule.severity is not Severity.quarantine:
            continue
        for video, detail in zip(rule.videos, rule.details):
            marked.setdefault(video, []).append(f"{rule.rule}: {detail.removeprefix(video).strip(' ()')}")
    return dict(sorted(marked.items()))


def validation_counts(tables: ValidationTables, rules: list[RuleOutcome]) -> ValidationCounts:
    """Videos by status (from the catalog table), failed rules by severity, videos quarantined,
    complete videos read and reused."""
    status = tables.catalog["status"]
    return ValidationCounts(
        videos=len(tables.catalog),
        complete=int((status == Status.complete.value).sum()),
        failed=int((status == Status.failed.value).sum()),
        other=int((~status.isin([Status.complete.value, Status.failed.value])).sum()),
        expectations=len(rules),
        critical_failures=sum(not r.success and r.severity is Severity.critical for r in rules),
        warnings=sum(not r.success and r.severity is Severity.warning for r in rules),
        quarantined=len(quarantined_videos(rules)),
        videos_read=tables.videos_read,
        videos_reused=tables.videos_reused,
    )


def not_complete_videos(catalog: pd.DataFrame) -> list[FailedVideo]:
    """Every video of the catalog table that is failed, writing or unreadable."""
    return [
        FailedVideo(video_id=row.video_id, status=row.status, reason=row.reason, source_uri=row.source_uri)
        for row in catalog[catalog["status"] != Status.complete.value].itertuples()
    ]


def make_stamp(config: ValidateConfig, tables: ValidationTables, suites: list[SuiteDefinition],
               rules: list[RuleOutcome], flow_run_id: str | None, frame_stats_sha256: str) -> ValidationStamp:
    """The stamp of a validation run now: passed when no critical rule failed, with the videos
    quarantine rules marked; names the result and report files it is about to be written beside,
    and the hash of the frame-statistics rows it hands on (``tasks.validate.reuse``)."""
    now = datetime.now(timezone.utc)
    validation_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    counts = validation_counts(tables, rules)
    return ValidationStamp(
        passed=counts.critical_failures == 0,
        validation_id=validation_id,
        validated_at=now.isoformat(timespec="seconds"),
        store=config.store,
        suites=[SuiteVersion(name=s.name, version=s.meta.version, sha256=s.sha256) for s in suites],
        catalog_fingerprint=tables.fingerprint,
        snapshot=tables.snapshot,
        counts=counts,
        quarantined=quarantined_videos(rules),
        result_path=result_uri(config.store, f"{validation_id}.json"),
        report_path=result_uri(config.store, f"{validation_id}.md"),
        frame_stats_sha256=frame_stats_sha256,
        config=config,
        code_version=code_version(),
        flow_run_id=flow_run_id,
    )


def record_summary(config: ValidateConfig, tables: ValidationTables, results: dict[str, dict],
                   flow_run_id: str | None = None, run_id: str | None = None) -> ValidationSummary:
    """Write the GE result JSON, the markdown report and the frame-statistics rows the next
    validation may reuse into the store, then commit the stamp into
    its catalog and append the lineage record (of run ``run_id``, the one ``record_started``
    opened; else a run of its own named by the validation id).

    The stamp goes after the files, so it only ever points at files that exist. It is committed
    onto whatever the tip is by then; it names the snapshot validated, and vouches for a later
    one only while that one's catalog fingerprint is the same. Raises FileExistsError if a
    result file of the same id exists (results are append-only).
    """
    suites = load_suites()
    rules = rule_outcomes(results, tables, suites)
    handed_on = frame_stats_document(tables.handed_on)
    stamp = make_stamp(config, tables, suites, rules, flow_run_id, hashlib.sha256(handed_on.encode()).hexdigest())
    not_complete = not_complete_videos(tables.catalog)
    markdown = report_markdown(stamp, rules, not_complete, tables)
    document = {"stamp": stamp.model_dump(mode="json"), "results": results}
    write_new(stamp.result_path, json.dumps(document, indent=1, allow_nan=False, default=str))
    write_new(stamp.report_path, markdown)
    write_new(result_uri(config.store, stamp.validation_id + FRAME_STATS_SUFFIX), handed_on)
    commit(config.store, lambda videos, _: (videos, stamp.model_dump(mode="json")), "validate",
           f"validation {stamp.validation_id} of snapshot {stamp.snapshot}: {'passed' if stamp.passed else 'failed'}",
           run_id, code_version())
    record_lineage(config, stamp, flow_run_id, run_id or stamp.validation_id)
    return ValidationSummary(stamp=stamp, rules=rules, not_complete=not_complete, report_markdown=markdown)


def record_started(config: ValidateConfig, run_id: str, flow_run_id: str | None) -> str:
    """Append the ``started`` record of validation run ``run_id`` before reading the store; its path.
    A path that is not a store fails here, as reading it would, before anything is written."""
    open_snapshot(config.store)
    inputs = [Dataset(uri=config.store, kind="store")]
    record = lineage.make_record("validate", "started", run_id, inputs, [], config.model_dump(mode="json"), flow_run_id)
    return lineage.write_record(f"{config.store.rstrip('/')}/{LINEAGE_DIR}", record)


def record_lineage(config: ValidateConfig, stamp: ValidationStamp, flow_run_id: str | None, run_id: str) -> None:
    """Append a ``validate`` lineage record: the store's catalog in, the result and report out."""
    inputs = [Dataset(uri=config.store, kind="store", facets={"catalog_fingerprint": stamp.catalog_fingerprint,
                                                              "snapshot": stamp.snapshot})]
    outputs = [Dataset(uri=stamp.result_path, kind="validation", sha256=file_sha256(stamp.result_path),
                       facets={"passed": stamp.passed, "validation_id": stamp.validation_id}),
               Dataset(uri=stamp.report_path, kind="report", sha256=file_sha256(stamp.report_path))]
    record = lineage.make_record("validate", "completed" if stamp.passed else "failed", run_id,
                                 inputs, outputs, config.model_dump(mode="json"), flow_run_id)
    lineage.write_record(f"{config.store.rstrip('/')}/{LINEAGE_DIR}", record)
