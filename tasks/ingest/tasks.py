"""Prefect tasks of the ingest stage: plan what is new, decode it on Dask, record and summarise.

Tasks that read or write the store retry a transient fault (a timeout, a dropped connection:
``tasks.io.faults.is_transient``) with exponential backoff, so a remote store that stalls for a
moment does not fail a night's run; every other failure is final at once.
"""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.runtime import task_run
from prefect.tasks import exponential_backoff

from storage_schemas.config import IngestConfig
from tasks.ingest.cluster import decode_all
from tasks.ingest.commits import Committer
from tasks.ingest.plan import IngestPlan, Outcome, plan_sources
from tasks.ingest.report import summary_markdown, summary_table, write_finished_record, write_started_record
from tasks.ingest.video import record_alias
from tasks.io.faults import is_transient
from tasks.io.sources import describe_skipped
from tasks.progress import ProgressArtifact

PROGRESS_ARTIFACT_KEY = "ingest-progress"
SUMMARY_ARTIFACT_KEY = "ingest-summary"
TABLE_ARTIFACT_KEY = "ingest-outcomes"
DASHBOARD_ARTIFACT_KEY = "dask-dashboard"

# Retries of a transient store fault, STORE_BACKOFF_SECONDS × 1, 2, 4 … apart.
STORE_RETRIES = 3
STORE_BACKOFF_SECONDS = 2.0


class StoreTimeoutError(TimeoutError):
    """Videos hit a transient store fault; raised while retries remain, so Prefect retries the task."""


def retry_transient(task, task_run, state) -> bool:
    """Prefect's ``retry_condition_fn``: retry only a transient fault."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)


STORE_RETRY = dict(retries=STORE_RETRIES, retry_delay_seconds=exponential_backoff(STORE_BACKOFF_SECONDS),
                   retry_condition_fn=retry_transient)


@task(name="plan_ingest", **STORE_RETRY)
def plan_ingest(config: IngestConfig) -> IngestPlan:
    """Expand the sources and keep those not yet stored with this decode key (hashes checked here);
    warn about every entry the walk skipped."""
    plan = plan_sources(config)
    logger = get_run_logger()
    if plan.skipped:
        logger.warning("skipped %s", describe_skipped(plan.skipped))
    logger.info("%d sources: %d to decode, %d up to date, %d aliases of stored videos",
                len(plan.todo) + len(plan.up_to_date) + len(plan.aliases), len(plan.todo), len(plan.up_to_date),
                len(plan.aliases))
    return plan


@task(name="decode_videos", **STORE_RETRY)
def decode_videos(plan: IngestPlan, config: IngestConfig, run_id: str) -> list[Outcome]:
    """Decode every planned item on Dask, one unit of work per video, with a frame progress bar, the
    ``ingest-progress`` artifact (frames decoded) and a ``dask-dashboard`` link artifact, committing
    the videos as they finish (``tasks.ingest.commits.Committer``); then record the aliases.

    Videos that hit a transient fault make the task raise while retries remain; a retry skips
    what this run already stored. On the last attempt their ``retry`` outcomes are returned.
    """
    logger = get_run_logger()

    def log_outcome(outcome: Outcome) -> None:
        if outcome.action in ("failed", "retry"):
            label = "FAILED" if outcome.action == "failed" else "NOT STORED (retried next run)"
            logger.warning("%s %s (%s): %s", label, outcome.video_id, outcome.uri, outcome.reason)
        else:
            logger.info("%s %s: %d frames in %.2fs%s", outcome.action, outcome.video_id, outcome.frames,
                        outcome.seconds, f" ({outcome.reason})" if outcome.reason else "")

    def link_dashboard(link: str, workers: int) -> None:
        create_link_artifact(link, link_text="Dask dashboard", key=DASHBOARD_ARTIFACT_KEY,
                             description=f"ingest into {config.store}: {len(plan.todo)} videos on {workers} "
                                         "workers; the page lives as long as the run's cluster")

    committer = Committer(config.store, run_id, log_outcome)
    if plan.todo:
        progress = ProgressArtifact(PROGRESS_ARTIFACT_KEY, f"decoding {len(plan.todo)} videos into {config.store}")

        def on_progress(done: int, total: int, note: str) -> None:
            progress(done, total, note)
            committer.tick()

        try:
            decode_all(plan, config, run_id, logger.info, committer.add, on_progress, link_dashboard)
        finally:
            committer.flush()  # what finished before a failure is kept
    outcomes = committer.done
    for alias in plan.aliases:
        outcomes.append(record_alias(alias.item, config.store, plan.decode or config.decode, alias.target, alias.key, run_id))
        log_outcome(outcomes[-1])
    transient = [o for o in outcomes if o.action == "retry" and o.transient]
    if transient and task_run.run_count <= STORE_RETRIES:
        raise StoreTimeoutError(f"{len(transient)} video(s) hit a transient store fault, first: {transient[0].reason}")
    return outcomes


@task(name="record_ingest_started", **STORE_RETRY)
def record_ingest_started(config: IngestConfig, run_id: str, flow_run_id: str | None) -> str:
    """Append a ``started`` lineage record before any decoding."""
    return write_started_record(config, run_id, flow_run_id)


@task(name="record_ingest_lineage", **STORE_RETRY)
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
