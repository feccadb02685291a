"""ingest_flow: raw videos and frame folders into a Zarr v3 frame store."""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow
from prefect.runtime import flow_run

from storage_schemas.config import IngestConfig
from tasks.ingest.plan import Outcome, left_out
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
    def left_out(self) -> list[Outcome]:
        """Entries a folder walk passed over that may have been meant as videos (they count as failures)."""
        return [o for o in self.outcomes if o.action == "left_out"]

    @property
    def frames_decoded(self) -> int:
        return sum(o.frames for o in self.outcomes if o.action == "decoded")

    @property
    def not_stored(self) -> list[Outcome]:
        """Videos the machine failed (``retry``): nothing recorded, the next run tries them again."""
        return [o for o in self.outcomes if o.action == "retry"]


class IngestIncompleteError(RuntimeError):
    """Some videos were not stored for the machine's reason (no space, no permission, a timeout);
    ``result`` has every outcome. Nothing was recorded for them: a re-run retries them."""

    def __init__(self, result: IngestResult):
        self.result = result
        missing = result.not_stored
        super().__init__(
            f"{len(missing)} video(s) not stored: {missing[0].reason}; nothing was recorded for them, "
            "so the next run retries them")

    def __reduce__(self):
        # Exceptions pickle as cls(*args); ours is built from the result, not the message.
        return (IngestIncompleteError, (self.result,))


@flow(name="ingest_flow")
def ingest_flow(config: IngestConfig) -> IngestResult:
    """Plan (hash sources against the catalog), decode what is new on Dask, publish a summary.

    Plans before the ``started`` record, so sources that hold nothing (NothingToIngestError)
    leave no store behind. Raises IngestIncompleteError, after the lineage record and the
    summary, when the machine failed some videos.
    """
    run_id, parent = new_run_id(), str(flow_run.id) if flow_run.id else None
    plan = plan_ingest(config)
    record_ingest_started(config, run_id, parent)
    decoded = decode_videos(plan, config, run_id=run_id)
    outcomes = plan.up_to_date + decoded + left_out(plan.skipped)
    record_ingest_lineage(config, outcomes, run_id, parent)
    result = IngestResult(config.store, outcomes, publish_ingest_summary(config.store, outcomes))
    if result.not_stored:
        raise IngestIncompleteError(result)
    return result
