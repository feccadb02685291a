"""Lineage records: append-only JSON next to every output, shaped after OpenLineage run events.

A record names its job (kind), its run (id, time, host, Prefect flow-run id, status), its
inputs and outputs as datasets (a URI plus facets such as sha256), the parameters (a config dump)
and the code version. ``id`` is the sha256 of the record's canonical JSON without ``id``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Statuses that report progress and close nothing: a run whose records stop at one of them was
# interrupted. ``checkpoint``: a pre-training run wrote the checkpoint its outputs name.
PROGRESS_STATUSES = ("started", "checkpoint")


class Dataset(BaseModel):
    """An input or output: a URI (path, store or store/videos/<id>) plus identifying facets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    kind: str = Field(description="source, store, video, validation, checkpoint, encoder, benchmark, report, run")
    sha256: str | None = None
    facets: dict = Field(default_factory=dict)


class LineageRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = ""
    schema_version: int = 1
    kind: str = Field(description="the job: ingest, validate, pretrain, evaluate")
    status: str = Field(description="started, checkpoint (progress); completed, completed_with_failures, failed, "
                        "drift_found (final)")
    run_id: str
    flow_run_id: str | None = None
    time: str
    host: str
    code_version: str
    git_sha: str | None = None
    inputs: list[Dataset] = Field(default_factory=list)
    outputs: list[Dataset] = Field(default_factory=list)
    parameters: dict = Field(default_factory=dict)
    error: str | None = None
