"""What an ingest run has to do: hash every source against the catalog before any cluster starts.

A source is up to date when the store holds it, finished (``complete``, or ``failed`` for good),
under the same decode key: its content hash plus every decode parameter. Hashing here, in the
planning process, makes a run with nothing new cheap: no Dask cluster is started for it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from storage_schemas.config import IngestConfig
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from tasks.io.items import SourceItem
from tasks.io.probe import VideoError, probe
from tasks.io.sources import expand_sources, hash_source
from tasks.io.store import open_store, read_catalog
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
    """The work of one ingest run: items to decode (with frame estimates) and those up to date."""

    todo: list[SourceItem]
    expected_frames: dict[str, int]
    up_to_date: list[Outcome]


def decode_key(sha256: str, params: DecodeParams) -> str:
    """The identity of a decode: source bytes plus every parameter that shapes the arrays.

    ``motion`` joins the key only when on, so stores ingested before it existed keep their keys
    (and are not decoded again); turning it on decodes again, motion map included.
    """
    values = params.model_dump(mode="json")
    if not values["motion"]:
        del values["motion"]
    blob = json.dumps({"sha256": sha256, "params": values}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def is_up_to_date(record: VideoRecord | None, key: str) -> bool:
    """True when the stored video was finished (complete, or failed for good) with this decode key."""
    return record is not None and record.decode_key == key and record.status in (Status.complete, Status.failed)


def plan_sources(config: IngestConfig) -> IngestPlan:
    """Expand the sources and keep those whose (content hash, decode params) are not yet stored."""
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
                action = "skipped" if record.status is Status.complete else "failed"
                up_to_date.append(Outcome(item.video_id, item.uri, action, 0, 0.0, record.reason))
                continue
        todo.append(item)
        expected[item.video_id] = expected_frames(item, config.decode)
    return IngestPlan(todo, expected, up_to_date)


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
