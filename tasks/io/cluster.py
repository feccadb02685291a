"""The Dask cluster every stage fans its per-video work out on: a LocalCluster on this machine, or
the user's own scheduler (``--dask-address``).

Stages submit plain functions, not Prefect tasks: in Prefect's ephemeral mode every Dask worker
process would start its own temporary Prefect API (docs/architecture.md, "Parallelism").
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import fsspec
from fsspec.implementations.memory import MemoryFileSystem

from tasks.io.files import private_folder
from tasks.io.secrets import given, remember
from tasks.io.uris import is_url

if TYPE_CHECKING:
    from distributed import Client

# Where a LocalCluster's scheduler, workers and dashboard listen: this machine only.
LOOPBACK = "127.0.0.1"


@contextlib.contextmanager
def dask_client(store: str, address: str | None = None, workers: int | None = None) -> Iterator[Client]:
    """A client on the scheduler at ``address``, or on a LocalCluster of ``workers``
    single-threaded workers (default one per core) for work on ``store``.

    The LocalCluster uses processes, one per core by default, except for stores on an in-memory
    filesystem (``memory://`` and its subclasses), which exist only inside this process, so its
    workers are threads here, talking in-process (nothing listens but the dashboard).

    Other users of the machine must not reach it (docs/security.md, "Dask"): the scheduler, the
    nannies and the workers listen on 127.0.0.1 only and speak TLS with a key made for this
    cluster (``Security.temporary()``: in memory, handed to the worker processes at their start),
    so a client without it is refused; the dashboard (read-only pages) listens on 127.0.0.1 only.
    A cluster at ``address`` is the user's: the client takes the user's Dask security
    configuration (``distributed.comm.tls.*``), as ``dask`` tools do.
    """
    # distributed is imported here and in the functions below, not at the top: it takes 0.2-0.4 s,
    # which a command with nothing to decode (the plan found every video stored) does not need.
    from distributed import Client, LocalCluster
    from distributed.security import Security

    # Cluster start-up and shutdown chatter would bury the per-video log lines.
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if address:
        with Client(address, security=Security()) as client:
            yield client
        return
    workers = workers or os.cpu_count() or 1
    processes = not in_process_store(store)
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


def _run_batch(fn: Callable[..., Any], urls: dict[str, str], calls: list[tuple[str, tuple]]) -> list[tuple[str, Any]]:
    """Runs on a Dask worker: ``fn(*args)`` for each (key, args) of one batch, in turn, after
    remembering the URLs they may read with their secrets (``tasks.io.secrets.given``: in memory,
    never in a task's key or a log)."""
    remember(urls)
    return [(key, fn(*args)) for key, args in calls]


# Tasks per worker a fan-out aims at: enough that workers finish close together, few enough that
# Dask's cost per task (serialising, scheduling, TLS round trips: about as much as validating a
# 16-frame clip) is paid per batch of small videos, not per video.
# A batch holds at most BATCH_CALLS calls, so that a cluster that grows after the submission (one
# started empty: dask-jobqueue, the Kubernetes operator) still gets work for its new workers.
TASKS_PER_WORKER = 8
BATCH_CALLS = 32


def batches(keys: list[str], sizes: dict[str, float], workers: int,
            tasks_per_worker: int = TASKS_PER_WORKER, most: int | None = None) -> list[list[str]]:
    """``keys`` (in their order) cut into consecutive batches of about ``total / (workers ×
    tasks_per_worker)`` of ``sizes`` each (frames, say) and at most ``most`` keys (default
    ``BATCH_CALLS``); a key as large
    as that is a batch alone. So long videos stay one task each, and thousands of short ones
    become tasks of up to ``most`` videos."""
    most = most or BATCH_CALLS
    total = sum(sizes.get(key, 1) for key in keys)
    target = total / max(1, workers * tasks_per_worker)
    out: list[list[str]] = []
    current: list[str] = []
    filled = 0.0
    for key in keys:
        size = sizes.get(key, 1)
        if current and (filled + size > target or len(current) >= most):
            out.append(current)
            current, filled = [], 0.0
        current.append(key)
        filled += size
    if current:
        out.append(current)
    return out


def fan_out(store: str, address: str | None, workers: int | None, fn: Callable[..., Any],
            calls: dict[str, tuple], name: str, done: Callable[[str, Any], None] | None = None,
            sizes: dict[str, float] | None = None) -> dict[str, Any]:
    """key → ``fn(*args)`` for each ``key → args`` of ``calls`` (results in the order of ``calls``);
    ``done(key, result)`` as each finishes (a progress bar).

    With ``address`` (the user's scheduler) or ``workers`` (a LocalCluster), on the cluster
    ``dask_client(store, address, workers)`` gives: ``fn`` is then a plain function (module level,
    so that worker processes can import it), and the calls are grouped into Dask tasks by
    ``batches`` over ``sizes`` (each call's work, e.g. its frames; 1 each by default), submitted
    largest first (Dask starts tasks in submission order, so the workers finish close together).
    With neither, each call runs here, in turn. The first call to fail raises its error here."""
    if not (address or workers):
        results: dict[str, Any] = {}
        for key, args in calls.items():
            results[key] = fn(*args)
            if done is not None:
                done(key, results[key])
        return results
    from distributed import as_completed

    if not calls:
        return {}
    urls = given()
    order = sorted(calls, key=lambda key: -(sizes or {}).get(key, 1))
    with dask_client(store, address, workers) as client:
        count = len(client.scheduler_info()["workers"]) or 1
        groups = batches(order, sizes or {}, count)
        futures = [client.submit(_run_batch, fn, urls, [(key, calls[key]) for key in group],
                                 key=f"{name}-{group[0]}-{len(group)}-{uuid.uuid4().hex[:6]}", pure=False)
                   for group in groups]
        results = {}
        for future in as_completed(futures):
            for key, result in future.result():
                results[key] = result
                if done is not None:
                    done(key, result)
    return {key: results[key] for key in calls}
