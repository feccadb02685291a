"""What an ingest run has to do: hash every source against the catalog before any cluster starts.

A source is up to date when the store holds it, finished (``complete``, or ``failed`` for good),
under the same decode key: its content hash plus every decode parameter. Hashing here, in the
planning process, makes a run with nothing new cheap: no Dask cluster is started for it.

A new source whose decode key another video already has (the same clip reached through a
symlinked folder, or a copy) is an *alias*: its URI is added to that video's record instead of
storing the frames twice. Among new sources with the same bytes, the first by URI is decoded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace

from storage_schemas.codecs import frame_codec
from storage_schemas.config import IngestConfig
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from tasks.io.items import SourceItem, video_id_for
from tasks.io.sources import (
    NothingToIngestError,
    Skipped,
    describe_skipped,
    hash_source,
    scan_sources,
    source_fingerprint,
)
from tasks.io.store import read_catalog, resolve_frame_codec


@dataclass(frozen=True)
class Outcome:
    """What one unit of work did. ``action``:

    - ``decoded``; ``skipped`` (up to date); ``failed`` (the input's fault, recorded for good);
      ``reason`` says why a video failed, or what a stored frame folder's record notes (gaps in its
      numbering, annotations without a frame, EXIF orientations applied);
    - ``alias`` (the same bytes are stored as ``video_id``; this URI was added to its record);
    - ``retry``: the machine failed (no space, no permission, a timeout; ``tasks.io.faults``),
      nothing was recorded and the next run tries again. ``transient``: a timeout or dropped
      connection, worth retrying within the run.
    - ``left_out``: a folder walk passed over an entry that may have been meant as a video (audio
      only, a playlist, not a regular file, a link it does not follow): it counts as a failure;
      ``ignored``: one that is not (hidden, a still image, text): listed only.

    A decode's outcome carries what it stored until a commit makes it part of the catalog
    (``tasks.ingest.commits``): ``record`` (to commit), ``version`` (its folder; None when the
    video failed and stored nothing); ``snapshot`` is the commit's snapshot once committed.
    """

    video_id: str
    uri: str
    action: str
    frames: int = 0
    seconds: float = 0.0
    reason: str | None = None
    transient: bool = False
    record: VideoRecord | None = None
    version: str | None = None
    snapshot: str | None = None

    @property
    def uncommitted(self) -> bool:
        """True for a decode whose record no commit has taken into the catalog yet."""
        return self.record is not None and self.snapshot is None


@dataclass(frozen=True)
class Alias:
    """A new source with the same bytes and decode parameters as the stored (or planned) ``target``."""

    item: SourceItem
    target: str
    key: str


@dataclass(frozen=True)
class IngestPlan:
    """The work of one ingest run: items to decode (with frame estimates), those up to date,
    aliases to record, and the entries the source walk skipped.

    ``retry``: the items of ``todo`` the store already holds, video_id → why they are decoded again
    (interrupted, changed source or parameters, unreadable record); the others are new.
    """

    todo: list[SourceItem]
    expected_frames: dict[str, int]
    up_to_date: list[Outcome]
    aliases: list[Alias] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    retry: dict[str, str] = field(default_factory=dict)
    decode: DecodeParams | None = None  # the config's, with the store's frame codec resolved


def left_out(skipped: list[Skipped]) -> list[Outcome]:
    """The entries a source walk passed over, as outcomes (``left_out`` or ``ignored``)."""
    return [Outcome(video_id_for(os.path.basename(entry.uri.rstrip("/")) or entry.uri, entry.uri), entry.uri,
                    "left_out" if entry.counts else "ignored", reason=entry.reason) for entry in skipped]


def decode_key(sha256: str, params: DecodeParams) -> str:
    """The identity of a decode: source bytes plus every parameter that shapes the arrays.

    ``motion`` joins the key only when on, so stores ingested before it existed keep their keys
    (and are not decoded again); turning it on decodes again, motion map included. A lossless
    frame codec changes how the bytes are kept, not what they are: it is left out, so stores
    written before codecs were recorded keep their keys. A lossy codec is part of the key.
    """
    values = params.model_dump(mode="json", exclude={"frame_codec"})
    if not values["motion"]:
        del values["motion"]
    if params.frame_codec is not None and not frame_codec(params.frame_codec).lossless:
        values["frame_codec"] = params.frame_codec
    blob = json.dumps({"sha256": sha256, "params": values}, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def is_up_to_date(record: VideoRecord | None, key: str, retry_failed: bool = False) -> bool:
    """True when the stored video was finished (complete, or failed for good unless
    ``retry_failed``) with this decode key."""
    finished = (Status.complete,) if retry_failed else (Status.complete, Status.failed)
    return record is not None and record.decode_key == key and record.status in finished


def stored_catalog(store: str) -> dict[str, VideoRecord | None]:
    """The store's catalog, read only; empty when there is no store yet (planning creates nothing)."""
    try:
        return read_catalog(store)
    except FileNotFoundError:
        return {}


def plan_sources(config: IngestConfig) -> IngestPlan:
    """Expand the sources; keep those whose (content hash, decode params) are not yet stored, and
    turn new sources with bytes already stored (or planned) into aliases.

    Reads the sources (hashes, probes) and the store's catalog; writes nothing (a store that does
    not exist stays so). Raises NothingToIngestError when the sources hold nothing to ingest.
    """
    scan = scan_sources(config.sources)
    if not scan.items:
        skipped = f"; skipped {describe_skipped(scan.skipped)}" if scan.skipped else ""
        raise NothingToIngestError(
            f"nothing to ingest in {', '.join(config.sources)}: no video files or frame folders{skipped}")
    catalog = stored_catalog(config.store)
    params = resolve_frame_codec(config.store, config.decode)
    # decode key → the video holding it, first by video_id; planned decodes join as they are met.
    holders: dict[str, str] = {}
    for video_id, record in catalog.items():
        if record is not None and record.decode_key and record.status in (Status.complete, Status.failed):
            holders.setdefault(record.decode_key, video_id)
    plan = IngestPlan([], {}, [], [], scan.skipped, decode=params)
    for item in scan.items:
        record = catalog.get(item.video_id)
        item, key = known_source(item, params, record, config.rehash)
        if key and is_up_to_date(record, key, config.retry_failed):
            plan.up_to_date.append(Outcome(item.video_id, item.uri, _finished(record), 0, 0.0, record.reason))
            continue
        holder = holders.get(key) if key and item.video_id not in catalog else None
        if holder is not None:
            twin = catalog.get(holder)
            if twin is not None and item.uri in twin.aliases:
                plan.up_to_date.append(Outcome(holder, item.uri, _finished(twin), 0, 0.0, f"{item.uri} is an alias of it"))
            else:
                plan.aliases.append(Alias(item, holder, key))
            continue
        if key and item.video_id not in catalog:
            holders[key] = item.video_id
        if item.video_id in catalog:
            plan.retry[item.video_id] = item.error or retry_reason(record)
        plan.todo.append(item)
        plan.expected_frames[item.video_id] = expected_frames(item, params)
    return plan


def known_source(item: SourceItem, params: DecodeParams, record: VideoRecord | None = None,
                 rehash: bool = False) -> tuple[SourceItem, str | None]:
    """(the item with its content hash, size and stat fingerprint; its decode key), the key None
    when it cannot be read here (the worker records why). An item whose fingerprint is the one its
    record was hashed at is not read again (unless ``rehash``): a no-op run costs a stat per file."""
    if item.error is not None:
        return item, None
    fingerprint = source_fingerprint(item)
    if (not rehash and fingerprint and record is not None and record.source_fingerprint == fingerprint
            and record.sha256 and record.byte_size is not None):
        sha, size = record.sha256, record.byte_size
    else:
        try:
            sha, size = hash_source(item)
        except (OSError, ValueError):
            return item, None
    # An empty file has a key too: it fails for good like any other bad input, not at every run.
    return replace(item, sha256=sha, byte_size=size, fingerprint=fingerprint), decode_key(sha, params)



def _finished(record: VideoRecord) -> str:
    return "skipped" if record.status is Status.complete else "failed"


def retry_reason(record: VideoRecord | None) -> str:
    """Why a video the store holds is decoded again."""
    if record is None:
        return "its record is unreadable"
    if record.status is Status.writing:
        return "a run was interrupted while writing it"
    return f"{record.status.value} with another source content or decode parameters"


class ExpectedFrames(int):
    """What a worker reports through its frame callback once it has counted a video's packets: how
    many frames it expects, not frames decoded (the progress bar's total grows by it)."""


def expected_frames(item: SourceItem, params: DecodeParams) -> int:
    """The frames a frame folder holds; 0 for a video, whose worker reports its count
    (``ExpectedFrames``) once it has read the packets: the plan opens no video, so its cost does
    not grow with a probe per video."""
    if item.error or item.kind is not SourceKind.frames:
        return 0
    return len(item.frame_uris)
