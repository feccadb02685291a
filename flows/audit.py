"""lineage_flow and audit_flow: trace an artifact to its sources; re-hash a store or run against its records."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from storage_schemas.audit import AuditReport
from tasks.audit.tasks import audit_path, publish_audit_report, trace_lineage


@flow(name="lineage_flow")
def lineage_flow(path: str) -> dict:
    """The lineage tree of the artifact at ``path`` (see ``tasks.audit.tree.lineage_tree``)."""
    return trace_lineage(path)


@flow(name="audit_flow")
def audit_flow(path: str, progress: bool = True, dask_address: str | None = None,
               dask_workers: int | None = None) -> AuditReport:
    """Re-hash the store or run at ``path``, append an ``audit`` lineage record, publish the report.

    ``dask_address`` (a running scheduler) or ``dask_workers`` (a LocalCluster): re-hash each video
    as a Dask task; neither: in this process.

    Drift does not fail the flow: the report, the record and the artifact say what drifted, and
    ``vmac audit`` exits 1.
    """
    report = audit_path(path, progress, flow_run_id=str(flow_run.id) if flow_run.id else None,
                        dask_address=dask_address, dask_workers=dask_workers)
    publish_audit_report(report)
    return report
