"""OpenLineage run events beside the lineage records: where they go, what they are named, which
schemas they follow (pinned copies in ``storage_schemas/openlineage/``, so checks run offline).

```
<owner>/lineage/openlineage/<job>-<EVENTTYPE>-<YYYYmmdd-HHMMSS.ffffff>.json    one RunEvent per file
```

Each lineage record (storage_schemas.lineage) becomes one RunEvent (spec 2-0-2): ``started`` a
START; ``completed``, ``completed_with_failures`` and ``drift_found`` a COMPLETE; ``failed`` a FAIL.
The START and the closing event of one run share its runId (a UUID). vmac's own facets carry a
``vmac_`` prefix, as the spec asks of custom facets, and their schema is ``VMAC_FACETS_SCHEMA``.
"""

from __future__ import annotations

from pathlib import Path

EVENTS_DIR = "openlineage"
DEFAULT_JOB_NAMESPACE = "vmac"  # OPENLINEAGE_NAMESPACE overrides it, as the client's conventions have it

EVENT_TYPES = {
    "started": "START",
    # A checkpoint written mid-run: new output metadata while the run goes on.
    "checkpoint": "RUNNING",
    "completed": "COMPLETE",
    "completed_with_failures": "COMPLETE",
    "drift_found": "COMPLETE",
    "failed": "FAIL",
}

SPEC_DIR = Path(__file__).with_name("openlineage")
CORE_SCHEMA_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
CORE_SCHEMA = SPEC_DIR / "OpenLineage-2-0-2.json"
VMAC_FACETS_SCHEMA_ID = "urn:vmac:openlineage:facets:1-0-0"
VMAC_FACETS_SCHEMA = SPEC_DIR / "VmacFacets-1-0-0.json"

# Facet keys: the standard ones by their spec names, vmac's with its prefix.
PARENT_FACET = "parent"
ERROR_FACET = "errorMessage"
ENGINE_FACET = "processing_engine"
JOB_TYPE_FACET = "jobType"
VERSION_FACET = "version"
VMAC_RUN_FACET = "vmac_run"
VMAC_DATASET_FACET = "vmac_artifact"


def event_type(status: str) -> str:
    """The RunEvent eventType of a lineage record's status. Raises ValueError for an unknown status."""
    try:
        return EVENT_TYPES[status]
    except KeyError:
        raise ValueError(f"lineage status {status!r} has no OpenLineage event type; "
                         f"expected one of {', '.join(EVENT_TYPES)}") from None


def parent_job_name(kind: str) -> str:
    """The Prefect flow that runs a job of ``kind`` (flows are named ``<noun>_flow``)."""
    return f"{kind}_flow"
