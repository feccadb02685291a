"""Decoding fanned out over Dask: one unit of work per video, progress through a Dask queue.

Plain functions run on the workers (``tasks.ingest.video.store_video``), not Prefect tasks: in
Prefect's ephemeral mode every Dask worker process would start its own temporary Prefect API,
17–21 s each before its first task (docs/architecture.md, "Parallelism"). Each video's outcome
still reaches Prefect through the calling task, as a log line and a row of the summary artifact.
Workers write version folders; the calling process commits them (``tasks.ingest.commits``).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from storage_schemas.config import IngestConfig
from storage_schemas.records import DecodeParams
from tasks.ingest.plan import ExpectedFrames, IngestPlan, Outcome
from tasks.ingest.video import store_video
from tasks.io import cluster
from tasks.io.items import SourceItem
from tasks.io.secrets import given, remember
from tasks.progress import progress_bar

if TYPE_CHECKING:
    from distributed import Client, Queue


@contextlib.contextmanager
def dask_client(config: IngestConfig) -> Iterator[Client]:
    """``tasks.io.cluster.dask_client`` for an ingest: ``config.dask_address``, else a LocalCluster
    of ``config.dask_workers`` workers."""
    with cluster.dask_client(config.store, config.dask_address, config.dask_workers) as client:
        yield client


def decode_on_worker(item: SourceItem, store: str, params: DecodeParams, run_id: str, queue_name: str,
                     urls: dict[str, str], retry_failed: bool = False) -> Outcome:
    """Runs on a Dask worker: decode one video into a version folder (committed by the caller of
    ``decode_all``), reporting decoded frames through a Dask queue. ``urls``: the source URLs as
    given, by their redacted form (``tasks.io.secrets.given``), held in the worker's memory only."""
    from distributed import Queue

    remember(urls)
    queue = Queue(queue_name)
    return store_video(item, store, params, run_id, on_frames=queue.put, retry_failed=retry_failed)


def decode_all(plan: IngestPlan, config: IngestConfig, run_id: str, log: Callable[[str], None],
               on_outcome: Callable[[Outcome], None], on_progress: Callable[[int, int, str], None] | None = None,
               on_dashboard: Callable[[str, int], None] | None = None) -> list[Outcome]:
    """Decode every planned item on Dask, with a frame progress bar; outcomes in completion order,
    not committed (``on_outcome`` commits them: ``tasks.ingest.commits.Committer``).
    ``on_progress(frames, total, note)`` follows the bar; ``on_dashboard(link, workers)`` gets the
    Dask dashboard's address while the cluster runs (the Prefect task publishes both)."""
    from distributed import Queue, as_completed

    total = sum(plan.expected_frames.values())
    outcomes: list[Outcome] = []
    done = 0
    with dask_client(config) as client:
        workers = len(client.scheduler_info()["workers"])
        log(f"Dask dashboard: {client.dashboard_link} ({workers} workers)")
        if on_dashboard and client.dashboard_link:
            on_dashboard(client.dashboard_link, workers)
        queue_name = f"vmac-progress-{uuid.uuid4().hex}"
        queue = Queue(queue_name, client=client)
        futures = [
            client.submit(decode_on_worker, item, config.store, plan.decode or config.decode, run_id, queue_name,
                          given(), config.retry_failed, key=f"ingest-{item.video_id}-{uuid.uuid4().hex[:6]}",
                          pure=False)
            for item in longest_first(plan.todo, plan.expected_frames)
        ]
        with progress_bar("decoding", total, "frames", config.progress) as advance:
            pending = as_completed(futures)
            while not pending.is_empty():
                frames, expected = drain(queue)
                total += expected
                advance(frames, total=total)
                done += frames
                for future in pending.next_batch(block=False) if pending.has_ready() else []:
                    outcome = future.result()
                    outcomes.append(outcome)
                    on_outcome(outcome)
                if on_progress:
                    on_progress(done, total, f"{len(outcomes)}/{len(futures)} videos")
                time.sleep(0.05)
            advance(drain(queue)[0])
    if on_progress:
        on_progress(total, total, f"{len(outcomes)} videos")
    return outcomes


def longest_first(items: list[SourceItem], frames: dict[str, int]) -> list[SourceItem]:
    """``items`` by expected frames (frame folders), then by bytes (videos, which the plan does not
    open), most first; ties keep their order. Dask starts tasks in the order they are submitted,
    so the last to start are short and the workers finish close together instead of one decoding
    the longest video alone at the end."""
    return sorted(items, key=lambda item: (-frames.get(item.video_id, 0), -(item.byte_size or 0)))


def drain(queue: Queue) -> tuple[int, int]:
    """(frames decoded, frames newly expected) reported so far and not yet counted."""
    try:
        got = queue.get(timeout=0.01, batch=True) or []
    except Exception:  # noqa: BLE001 - an empty Dask queue times out; progress is best effort
        return 0, 0
    expected = sum(n for n in got if isinstance(n, ExpectedFrames))
    return sum(got) - expected, expected
