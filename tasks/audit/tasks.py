"""Prefect tasks of the audit stage: trace an artifact's lineage; re-hash a store or run; publish.

None is cached: each reads the files as they are now.
"""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from storage_schemas.audit import AuditReport
from tasks.audit.rehash import audit
from tasks.audit.report import audit_markdown
from tasks.audit.tree import lineage_tree


@task(name="trace_lineage", cache_policy=NO_CACHE)
def trace_lineage(path: str) -> dict:
    """The lineage tree of the artifact at ``path`` (``tasks.audit.tree.lineage_tree``)."""
    return lineage_tree(path)


@task(name="audit_path", cache_policy=NO_CACHE)
def audit_path(path: str, progress: bool = True, flow_run_id: str | None = None, dask_address: str | None = None,
               dask_workers: int | None = None) -> AuditReport:
    """Re-hash the store or run directory at ``path`` and append the audit record (``tasks.audit.rehash.audit``)."""
    return audit(path, progress=progress, flow_run_id=flow_run_id, dask_address=dask_address, dask_workers=dask_workers)


@task(name="publish_audit_report", cache_policy=NO_CACHE)
def publish_audit_report(report: AuditReport) -> str:
    """The audit as the Prefect markdown artifact ``audit-report``; returns the markdown."""
    markdown = audit_markdown(report)
    verdict = f"{len(report.drifts)} drift(s)" if report.drifts else "no drift"
    create_markdown_artifact(markdown=markdown, key="audit-report", description=f"audit of {report.target}: {verdict}")
    return markdown
