"""Prefect tasks of the ingest stage: plan what is new, decode it on Dask, record and summarise."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from storage_schemas.config import IngestConfig
from tasks.ingest.cluster import decode_all
from tasks.ingest.plan import IngestPlan, Outcome, plan_sources
from tasks.ingest.report import summary_markdown, summary_table, write_finished_record, write_started_record
from tasks.progress import ProgressArtifact

PROGRESS_ARTIFACT_KEY = "ingest-progress"
SUMMARY_ARTIFACT_KEY = "ingest-summary"
TABLE_ARTIFACT_KEY = "ingest-outcomes"
DASHBOARD_ARTIFACT_KEY = "dask-dashboard"


@task(name="plan_ingest")
def plan_ingest(config: IngestConfig) -> IngestPlan:
    """Expand the sources and keep those not yet stored with this decode key (hashes checked here)."""
    plan = plan_sources(config)
    get_run_logger().info("%d sources: %d to decode, %d up to date", len(plan.todo) + len(plan.up_to_date),
                          len(plan.todo), len(plan.up_to_date))
    return plan


@task(name="decode_videos")
def decode_videos(plan: IngestPlan, config: IngestConfig, run_id: str) -> list[Outcome]:
    """Decode every planned item on Dask, one unit of work per video, with a frame progress bar, the
    ``ingest-progress`` artifact (frames decoded) and a ``dask-dashboard`` link artifact."""
    if not plan.todo:
        return []
    logger = get_run_logger()

    def log_outcome(outcome: Outcome) -> None:
        if outcome.action == "failed":
            logger.warning("FAILED %s (%s): %s", outcome.video_id, outcome.uri, outcome.reason)
        else:
            logger.info("%s %s: %d frames in %.2fs", outcome.action, outcome.video_id, outcome.frames,
                        outcome.seconds)

    def link_dashboard(link: str, workers: int) -> None:
        create_link_artifact(link, link_text="Dask dashboard", key=DASHBOARD_ARTIFACT_KEY,
                             description=f"ingest into {config.store}: {len(plan.todo)} videos on {workers} "
                                         "workers; the page lives as long as the run's cluster")

    progress = ProgressArtifact(PROGRESS_ARTIFACT_KEY, f"decoding {len(plan.todo)} videos into {config.store}")
    return decode_all(plan, config, run_id, logger.info, log_outcome, progress, link_dashboard)


@task(name="record_ingest_started")
def record_ingest_started(config: IngestConfig, run_id: str, flow_run_id: str | None) -> str:
    """Append a ``started`` lineage record before any decoding."""
    return write_started_record(config, run_id, flow_run_id)


@task(name="record_ingest_lineage")
def record_ingest_lineage(config: IngestConfig, outcomes: list[Outcome], run_id: str, flow_run_id: str | None) -> str:
    """Append the run's lineage record: each source's hash in, each video group out."""
    return write_finished_record(config, outcomes, run_id, flow_run_id)


@task(name="publish_ingest_summary")
def publish_ingest_summary(store: str, outcomes: list[Outcome]) -> str:
    """The ``ingest-summary`` markdown artifact and the ``ingest-outcomes`` table (one row per
    source); the markdown's text."""
    markdown = summary_markdown(store, outcomes)
    create_markdown_artifact(markdown=markdown, key=SUMMARY_ARTIFACT_KEY, description=f"ingest into {store}")
    create_table_artifact(summary_table(outcomes), key=TABLE_ARTIFACT_KEY,
                          description=f"ingest into {store}: one row per source, failures first")
    return markdown
