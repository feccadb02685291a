"""What an ingest run has to do: hash every source against the catalog before any cluster starts.

A source is up to date when the store holds it, finished (``complete``, or ``failed`` for good),
under the same decode key: its content hash plus every decode parameter. Hashing here, in the
planning process, makes a run with nothing new cheap: no Dask cluster is started for it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from storage_schemas.config import IngestConfig
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from tasks.io.items import SourceItem
from tasks.io.probe import VideoError, probe
from tasks.io.sources import expand_sources, hash_source
from tasks.io.store import read_catalog
from tasks.io.uris import is_url


@dataclass(frozen=True)
class Outcome:
    """What one unit of work did. ``action``: decoded, skipped (up to date) or failed."""

    video_id: str
    uri: str
    action: str
    frames: int = 0
    seconds: float = 0.0
    reason: str | None = None


@dataclass(frozen=True)
class IngestPlan:
    """The work of one ingest run: items to decode (with frame estimates) and those up to date.

    ``retry``: the items of ``todo`` the store already holds, video_id → why they are decoded again
    (interrupted, changed source or parameters, unreadable record); the others are new.
    """

    todo: list[SourceItem]
    expected_frames: dict[str, int]
    up_to_date: list[Outcome]
    retry: dict[str, str] = field(default_factory=dict)


def decode_key(sha256: str, params: DecodeParams) -> str:
    """The identity of a decode: source bytes plus every parameter that shapes the arrays."""
    blob = json.dumps({"sha256": sha256, "params": params.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def is_up_to_date(record: VideoRecord | None, key: str) -> bool:
    """True when the stored video was finished (complete, or failed for good) with this decode key."""
    return record is not None and record.decode_key == key and record.status in (Status.complete, Status.failed)


def stored_catalog(store: str) -> dict[str, VideoRecord | None]:
    """The store's catalog, read only; empty when there is no store yet (planning creates nothing)."""
    try:
        return read_catalog(store)
    except FileNotFoundError:
        return {}


def plan_sources(config: IngestConfig) -> IngestPlan:
    """Expand the sources and keep those whose (content hash, decode params) are not yet stored.

    Reads the sources (hashes, probes) and the store's catalog; writes nothing.
    """
    items = expand_sources(config.sources)
    catalog = stored_catalog(config.store)
    todo: list[SourceItem] = []
    up_to_date: list[Outcome] = []
    expected: dict[str, int] = {}
    retry: dict[str, str] = {}
    for item in items:
        video_id = item.video_id
        if video_id in catalog:
            record = catalog[video_id]
            sha = _content_hash(item) if item.error is None and record is not None else None
            if sha and is_up_to_date(record, decode_key(sha, config.decode)):
                action = "skipped" if record.status is Status.complete else "failed"
                up_to_date.append(Outcome(video_id, item.uri, action, 0, 0.0, record.reason))
                continue
            retry[video_id] = item.error or retry_reason(record)
        todo.append(item)
        expected[video_id] = expected_frames(item, config.decode)
    return IngestPlan(todo, expected, up_to_date, retry)


def _content_hash(item: SourceItem) -> str | None:
    try:
        return hash_source(item)[0]
    except (OSError, ValueError):
        return None


def retry_reason(record: VideoRecord | None) -> str:
    """Why a video the store holds is decoded again."""
    if record is None:
        return "its record is unreadable"
    if record.status is Status.writing:
        return "a run was interrupted while writing it"
    return f"{record.status.value} with another source content or decode parameters"


def expected_frames(item: SourceItem, params: DecodeParams) -> int:
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
    # The container's index (or duration × rate) is only an estimate here: the decode counts.
    return int(round(info.duration * (params.fps or info.fps)))
