"""Prefect tasks of the ingest stage: plan what is new, fan decoding out over Dask, summarise.

Decoding runs as plain functions on a Dask client from one Prefect task, not as Prefect tasks on
Dask workers: in ephemeral mode each Dask worker would start its own temporary Prefect API
(17–21 s, STACK.md). Each video's outcome still reaches Prefect, as a log line and a row of
the summary artifact.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from storage_schemas.config import IngestConfig
from storage_schemas.records import DecodeParams, SourceKind
from tasks.ingest.video import Outcome, decode_key, ingest_video, is_up_to_date
from tasks.io.ffmpeg import VideoError, probe
from tasks.io.items import SourceItem
from tasks.io.sources import expand_sources, hash_source
from tasks.io.store import open_store, read_catalog
from tasks.io.uris import is_url


@dataclass(frozen=True)
class IngestPlan:
    """The work of one ingest run: items to decode (with frame estimates) and those up to date."""

    todo: list[SourceItem]
    expected_frames: dict[str, int]
    up_to_date: list[Outcome]


@task(name="plan_ingest")
def plan_ingest(config: IngestConfig) -> IngestPlan:
    """Expand the sources and keep those whose (content hash, decode params) are not yet stored.

    Hashing here, before any cluster starts, makes a run with nothing new cheap.
    """
    logger = get_run_logger()
    items = expand_sources(config.sources)
    catalog = read_catalog(open_store(config.store))
    todo: list[SourceItem] = []
    up_to_date: list[Outcome] = []
    expected: dict[str, int] = {}
    for item in items:
        record = catalog.get(item.video_id)
        if item.error is None and record is not None:
            try:
                sha, _ = hash_source(item)
            except (OSError, ValueError):
                sha = None
            if sha and is_up_to_date(record, decode_key(sha, config.decode)):
                action = "skipped" if record.status.value == "complete" else "failed"
                up_to_date.append(Outcome(item.video_id, item.uri, action, 0, 0.0, record.reason))
                continue
        todo.append(item)
        expected[item.video_id] = _expected_frames(item, config.decode)
    logger.info("%d sources: %d to decode, %d up to date", len(items), len(todo), len(up_to_date))
    return IngestPlan(todo, expected, up_to_date)


def _expected_frames(item: SourceItem, params: DecodeParams) -> int:
    """A frame estimate for the progress bar (0 when unknown or unreadable)."""
    if item.error:
        return 0
    if item.kind is SourceKind.frames:
        return len(item.frame_uris)
    if is_url(item.uri):
        return 0
    try:
        info = probe(item.uri)
    except (VideoError, OSError):
        return 0
    return int(round(info.duration * params.fps)) if params.fps else info.frame_count


@contextlib.contextmanager
def dask_client(config: IngestConfig) -> Iterator:
    """A client on ``config.dask_address``, or on a LocalCluster of single-threaded workers.

    The LocalCluster uses processes, one per core by default, except for ``memory://`` stores,
    which exist only inside this process, so its workers are threads here.
    """
    import logging

    from distributed import Client, LocalCluster

    # Cluster start-up and shutdown chatter would bury the per-video log lines.
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if config.dask_address:
        with Client(config.dask_address) as client:
            yield client
        return
    workers = config.workers or os.cpu_count() or 1
    processes = not config.store.startswith("memory://")
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=processes,
        dashboard_address=":0",
        silence_logs=40,
    ) as cluster, Client(cluster) as client:
        yield client


def _decode_on_worker(item: SourceItem, store: str, params: DecodeParams, run_id: str, queue_name: str) -> Outcome:
    """Runs on a Dask worker: ingest one video, reporting decoded frames through a Dask queue."""
    from distributed import Queue

    queue = Queue(queue_name)
    return ingest_video(item, store, params, run_id, on_frames=queue.put)


@task(name="decode_videos")
def decode_videos(plan: IngestPlan, config: IngestConfig, run_id: str) -> list[Outcome]:
    """Decode every planned item on Dask, one unit of work per video, with a frame progress bar."""
    logger = get_run_logger()
    if not plan.todo:
        return []
    from distributed import Queue, as_completed

    total = sum(plan.expected_frames.values())
    outcomes: list[Outcome] = []
    with dask_client(config) as client:
        logger.info("Dask dashboard: %s (%d workers)", client.dashboard_link, len(client.scheduler_info()["workers"]))
        queue_name = f"vmac-progress-{uuid.uuid4().hex}"
        queue = Queue(queue_name, client=client)
        futures = [
            client.submit(_decode_on_worker, item, config.store, config.decode, run_id, queue_name,
                          key=f"ingest-{item.video_id}-{uuid.uuid4().hex[:6]}", pure=False)
            for item in plan.todo
        ]
        with _progress(config.progress, total) as advance:
            pending = as_completed(futures)
            while not pending.is_empty():
                advance(_drain(queue))
                for future in pending.next_batch(block=False) if pending.has_ready() else []:
                    outcome = future.result()
                    outcomes.append(outcome)
                    _log_outcome(logger, outcome)
                time.sleep(0.05)
            advance(_drain(queue))
    return outcomes


def _drain(queue) -> int:
    try:
        return sum(queue.get(timeout=0.01, batch=True) or [])
    except Exception:  # an empty Dask queue times out; progress is best effort
        return 0


@contextlib.contextmanager
def _progress(enabled: bool, total: int):
    if not enabled:
        yield lambda n: None
        return
    columns = (TextColumn("decoding"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        bar = progress.add_task("decode", total=total or None)
        yield lambda n: progress.advance(bar, n) if n else None


def _log_outcome(logger, outcome: Outcome) -> None:
    if outcome.action == "failed":
        logger.warning("FAILED %s (%s): %s", outcome.video_id, outcome.uri, outcome.reason)
    else:
        logger.info("%s %s: %d frames in %.2fs", outcome.action, outcome.video_id, outcome.frames, outcome.seconds)


def summary_markdown(store: str, outcomes: list[Outcome]) -> str:
    """A markdown table of every source's outcome in this run."""
    counts = {a: sum(o.action == a for o in outcomes) for a in ("decoded", "skipped", "failed")}
    lines = [
        f"# Ingest into `{store}`",
        "",
        f"{counts['decoded']} decoded, {counts['skipped']} up to date, {counts['failed']} failed.",
        "",
        "| video_id | outcome | frames | seconds | source | reason |",
        "|---|---|---:|---:|---|---|",
    ]
    for o in sorted(outcomes, key=lambda o: (o.action != "failed", o.video_id)):
        reason = (o.reason or "").replace("|", "\\|")
        source = o.uri.replace("|", "\\|")
        lines.append(f"| {o.video_id} | {o.action} | {o.frames} | {o.seconds:.2f} | {source} | {reason} |")
    return "\n".join(lines)


@task(name="record_ingest_started")
def record_ingest_started(config: IngestConfig, run_id: str, flow_run_id: str | None) -> str:
    """Append a ``started`` record before any decoding, so a killed run leaves a trace that says so."""
    from storage_schemas.layout import LINEAGE_DIR
    from storage_schemas.lineage import Dataset
    from tasks.io import lineage

    open_store(config.store)
    inputs = [Dataset(uri=source, kind="source") for source in config.sources]
    made = lineage.make_record("ingest", "started", run_id, inputs, [], config.model_dump(mode="json"), flow_run_id)
    return lineage.write_record(f"{config.store.rstrip('/')}/{LINEAGE_DIR}", made)


@task(name="record_ingest_lineage")
def record_ingest_lineage(config: IngestConfig, outcomes: list[Outcome], run_id: str, flow_run_id: str | None) -> str:
    """Append a lineage record to ``<store>/lineage/``: each source's hash in, each video group out."""
    from storage_schemas.layout import LINEAGE_DIR, VIDEOS_GROUP
    from storage_schemas.lineage import Dataset
    from tasks.io import lineage

    catalog = read_catalog(config.store)
    inputs, outputs = [], []
    for outcome in outcomes:
        record = catalog.get(outcome.video_id)
        inputs.append(Dataset(uri=outcome.uri, kind="source", sha256=record.sha256 if record else None,
                              facets={"video_id": outcome.video_id}))
        if record is not None:
            outputs.append(Dataset(
                uri=f"{config.store.rstrip('/')}/{VIDEOS_GROUP}/{outcome.video_id}", kind="video",
                sha256=record.frames_sha256,
                facets={"status": record.status.value, "action": outcome.action, "decode_key": record.decode_key,
                        "source_sha256": record.sha256, "reason": record.reason},
            ))
    status = "completed" if not any(o.action == "failed" for o in outcomes) else "completed_with_failures"
    made = lineage.make_record("ingest", status, run_id, inputs, outputs, config.model_dump(mode="json"), flow_run_id)
    return lineage.write_record(f"{config.store.rstrip('/')}/{LINEAGE_DIR}", made)


@task(name="publish_ingest_summary")
def publish_ingest_summary(store: str, outcomes: list[Outcome]) -> str:
    markdown = summary_markdown(store, outcomes)
    create_markdown_artifact(markdown=markdown, key="ingest-summary", description=f"ingest into {store}")
    return markdown
