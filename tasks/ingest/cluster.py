"""Decoding fanned out over Dask: one unit of work per video, progress through a Dask queue.

Plain functions run on the workers (``tasks.ingest.video.store_video``), not Prefect tasks: in
Prefect's ephemeral mode every Dask worker process would start its own temporary Prefect API,
17–21 s each before its first task (docs/architecture.md, "Parallelism"). Each video's outcome
still reaches Prefect through the calling task, as a log line and a row of the summary artifact.
Workers write version folders; the calling process commits them (``tasks.ingest.commits``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import fsspec
from fsspec.implementations.memory import MemoryFileSystem

from storage_schemas.config import IngestConfig
from storage_schemas.records import DecodeParams
from tasks.ingest.plan import ExpectedFrames, IngestPlan, Outcome
from tasks.ingest.video import store_video
from tasks.io.files import private_folder
from tasks.io.items import SourceItem
from tasks.io.secrets import given, remember
from tasks.io.uris import is_url
from tasks.progress import progress_bar

if TYPE_CHECKING:
    from distributed import Client, Queue

# Where a LocalCluster's scheduler, workers and dashboard listen: this machine only.
LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def dask_client(config: IngestConfig) -> Iterator[Client]:
    """A client on ``config.dask_address``, or on a LocalCluster of single-threaded workers.

    The LocalCluster uses processes, one per core by default, except for stores on an in-memory
    filesystem (``memory://`` and its subclasses), which exist only inside this process, so its
    workers are threads here, talking in-process (nothing listens but the dashboard).

    Other users of the machine must not reach it (docs/security.md, "Dask"): the scheduler, the
    nannies and the workers listen on 127.0.0.1 only and speak TLS with a key made for this
    cluster (``Security.temporary()``: in memory, handed to the worker processes at their start),
    so a client without it is refused; the dashboard (read-only pages) listens on 127.0.0.1 only.
    A cluster at ``dask_address`` is the user's: the client takes the user's Dask security
    configuration (``distributed.comm.tls.*``), as ``dask`` tools do.
    """
    # distributed is imported here and in the functions below, not at the top: it takes 0.2-0.4 s,
    # which a command with nothing to decode (the plan found every video stored) does not need.
    from distributed import Client, LocalCluster
    from distributed.security import Security

    # Cluster start-up and shutdown chatter would bury the per-video log lines.
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if config.dask_address:
        with Client(config.dask_address, security=Security()) as client:
            yield client
        return
    workers = config.dask_workers or os.cpu_count() or 1
    processes = not in_process_store(config.store)
    # Threads talk in-process; processes over TLS on loopback with this cluster's own key.
    network = dict(host=LOOPBACK, protocol="tls://", security=Security.temporary()) if processes else dict(
        protocol="inproc://")
    levels: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        # Exits run last in, first out: quieten, close the client, close the cluster, restore.
        stack.callback(_restore_levels, levels)
        cluster = stack.enter_context(LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=f"{LOOPBACK}:0",
            # Workers' scratch (spilled data, their lock files) in the user's private folder, not
            # the shared /tmp/dask-scratch-space another user could make first or fill with links.
            local_directory=str(private_folder("dask-scratch")),
            silence_logs=40,
            **network,
        ))
        client = stack.enter_context(Client(cluster))  # takes the cluster's security
        stack.callback(_quieten, levels)
        yield client


# Loggers that report the races of a cluster closing (a stream closed under a pending message, an
# RPC cancelled): noise once every result is in, silenced while the cluster closes.
SHUTDOWN_LOGGERS = ("distributed", "tornado", "asyncio")


def _quieten(levels: dict[str, int]) -> None:
    """Raise the shutdown loggers to CRITICAL, keeping their levels in ``levels``."""
    for name in SHUTDOWN_LOGGERS:
        levels[name] = logging.getLogger(name).level
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _restore_levels(levels: dict[str, int]) -> None:
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def in_process_store(store: str) -> bool:
    """True when ``store`` lives in this process's memory (fsspec's MemoryFileSystem or a subclass)."""
    if not is_url(store):
        return False
    return isinstance(fsspec.core.url_to_fs(store)[0], MemoryFileSystem)


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
