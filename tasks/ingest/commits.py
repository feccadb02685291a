"""Committing decoded videos into the store's catalog: alone, or those that finished together.

A decode writes a version folder no reader sees (``tasks.ingest.video.store_video``); a commit
(``tasks.io.snapshots.commit``) makes it part of the catalog. The edit a commit applies is
re-applied to whatever the tip is when it lands, so concurrent ingests into one store both
succeed: each video goes in as decoded, except one that another writer stored meanwhile with
the same decode key, which stays as that writer stored it (the video is stored once; this run's
copy is deleted and its outcome becomes ``skipped``).

An ingest commits as it goes (``Committer``), so a kill loses at most the videos in flight and
those finished in the last commit interval.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from storage_schemas.records import Status, VideoRecord
from storage_schemas.snapshots import CatalogEntry
from tasks.ingest.plan import Outcome
from tasks.io.faults import environment_reason, is_environmental, is_transient
from tasks.io.lineage import code_version
from tasks.io.snapshots import commit
from tasks.io.store import parse_record, remove_version

# Commits wait at least this long after the previous one, and this many times as long as it took:
# a catalog of thousands of videos takes a while to write, and commits stay a small share of a run.
MIN_COMMIT_INTERVAL_S = 0.0
COMMIT_COST_FACTOR = 10.0


def _finished_with(record: VideoRecord | None, key: str | None) -> bool:
    return (record is not None and key is not None and record.decode_key == key
            and record.status in (Status.complete, Status.failed))


def commit_outcomes(store: str, outcomes: list[Outcome], run_id: str | None = None) -> list[Outcome]:
    """Commit every uncommitted decode of ``outcomes`` in one snapshot; the outcomes as committed.

    A video another writer stored meanwhile with the same decode key is left as stored: this
    decode's version folder is deleted and its outcome becomes ``skipped``. A commit the machine
    fails (no space, no permission, a timeout) leaves the decodes uncommitted: their folders are
    deleted and their outcomes become ``retry``. Other outcomes are returned as they are.
    """
    pending = [o for o in outcomes if o.uncommitted]
    if not pending:
        return outcomes
    redundant: set[str] = set()

    def edit(videos: dict[str, CatalogEntry], validation: dict | None):
        redundant.clear()
        for outcome in pending:
            held = videos.get(outcome.video_id)
            if held is not None and held.version != outcome.version and _finished_with(
                    parse_record(held.record), outcome.record.decode_key):
                redundant.add(outcome.video_id)
                continue
            videos[outcome.video_id] = CatalogEntry(version=outcome.version,
                                                    record=outcome.record.model_dump(mode="json"))
        return videos, validation

    stored = ", ".join(o.video_id for o in pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
    try:
        _, snapshot = commit(store, edit, "ingest", f"stored {stored}", run_id, code_version())
    except Exception as exc:
        if not is_environmental(exc):
            raise
        return [_not_committed(o, store, exc) if o.uncommitted else o for o in outcomes]
    return [_committed(o, store, snapshot.id, o.video_id in redundant) if o.uncommitted else o for o in outcomes]


def _committed(outcome: Outcome, store: str, snapshot: str, redundant: bool) -> Outcome:
    if not redundant:
        return dataclasses.replace(outcome, snapshot=snapshot)
    if outcome.version:
        remove_version(store, outcome.video_id, outcome.version)
    return dataclasses.replace(outcome, action="skipped", frames=0, record=None, version=None,
                               reason="another run stored the same decode meanwhile")


def _not_committed(outcome: Outcome, store: str, exc: Exception) -> Outcome:
    if outcome.version:
        try:
            remove_version(store, outcome.video_id, outcome.version)
        except Exception:  # noqa: BLE001 - the folder stays unreferenced; vmac gc removes it
            pass
    return dataclasses.replace(outcome, action="retry", record=None, version=None,
                               reason=environment_reason(exc, f"committing to {store}"), transient=is_transient(exc))


class Committer:
    """Commits decodes as their outcomes arrive, each alone unless commits would take more than a
    small share of the run (``COMMIT_COST_FACTOR``): then those that arrived since the last one
    go in together. ``on_committed`` sees every outcome once, as committed."""

    def __init__(self, store: str, run_id: str | None, on_committed: Callable[[Outcome], None] = lambda o: None):
        self.store, self.run_id, self.on_committed = store, run_id, on_committed
        self.pending: list[Outcome] = []
        self.done: list[Outcome] = []
        self.last = 0.0
        self.interval = MIN_COMMIT_INTERVAL_S

    def add(self, outcome: Outcome) -> None:
        if outcome.uncommitted:
            self.pending.append(outcome)
            self.tick()
        else:
            self._finish([outcome])

    def tick(self) -> None:
        """Commit what is pending when the interval since the last commit has passed."""
        if self.pending and time.monotonic() - self.last >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Commit everything pending now."""
        if not self.pending:
            return
        started = time.monotonic()
        batch, self.pending = self.pending, []
        self._finish(commit_outcomes(self.store, batch, self.run_id))
        self.last = time.monotonic()
        self.interval = max(MIN_COMMIT_INTERVAL_S, COMMIT_COST_FACTOR * (self.last - started))

    def _finish(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self.done.append(outcome)
            self.on_committed(outcome)
