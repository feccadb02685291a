"""ingest_flow: raw videos and frame folders into a Zarr v3 frame store."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow
from prefect.runtime import flow_run

from storage_schemas.config import IngestConfig
from tasks.ingest.plan import Outcome
from tasks.ingest.tasks import (
    decode_videos,
    plan_ingest,
    publish_ingest_summary,
    record_ingest_lineage,
    record_ingest_started,
)
from tasks.io.lineage import run_id as new_run_id


@dataclass(frozen=True)
class IngestResult:
    store: str
    outcomes: list[Outcome]
    summary_markdown: str

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.action == "failed"]

    @property
    def frames_decoded(self) -> int:
        return sum(o.frames for o in self.outcomes if o.action == "decoded")


@flow(name="ingest_flow")
def ingest_flow(config: IngestConfig) -> IngestResult:
    """Plan (hash sources against the catalog), decode what is new on Dask, publish a summary."""
    run_id, parent = new_run_id(), str(flow_run.id) if flow_run.id else None
    record_ingest_started(config, run_id, parent)
    plan = plan_ingest(config)
    decoded = decode_videos(plan, config, run_id=run_id)
    outcomes = plan.up_to_date + decoded
    record_ingest_lineage(config, outcomes, run_id, parent)
    summary = publish_ingest_summary(config.store, outcomes)
    return IngestResult(config.store, outcomes, summary)
