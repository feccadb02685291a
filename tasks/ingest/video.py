"""Ingest one source into the store: the unit of work that Dask runs, one call per video.

Plain functions (no Prefect inside), so a Dask worker runs them without starting a Prefect API.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timezone

from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from storage_schemas.snapshots import CatalogEntry
from tasks.ingest.commits import commit_outcomes
from tasks.ingest.container import write_video
from tasks.ingest.folder import folder_notes, write_frame_folder
from tasks.ingest.plan import Outcome, decode_key, is_up_to_date
from tasks.io.faults import environment_reason, is_environmental, is_transient, reason_of
from tasks.io.images import LayoutError
from tasks.io.items import SourceItem
from tasks.io.lineage import code_version
from tasks.io.probe import VideoError
from tasks.io.snapshots import commit, resolve
from tasks.io.sources import hash_source, source_fingerprint
from tasks.io.store import (
    new_version,
    open_store,
    parse_record,
    remove_version,
    resolve_frame_codec,
    write_record,
)
from tasks.io.uris import normalize


def ingest_video(item: SourceItem, store: str, params: DecodeParams, run_id: str | None = None,
                 on_frames: Callable[[int], None] | None = None, retry_failed: bool = False) -> Outcome:
    """Decode ``item`` into the store and commit it alone (``store_video``, then
    ``tasks.ingest.commits.commit_outcomes``); the outcome as committed."""
    outcome = store_video(item, store, params, run_id, on_frames, retry_failed)
    return commit_outcomes(store, [outcome], run_id)[0]


def store_video(
    item: SourceItem,
    store: str,
    params: DecodeParams,
    run_id: str | None = None,
    on_frames: Callable[[int], None] | None = None,
    retry_failed: bool = False,
) -> Outcome:
    """Decode ``item`` into a new version folder unless the store's tip holds it with the same key
    (complete, or failed for good unless ``retry_failed``); nothing is committed here (the outcome
    carries the record to commit).

    The input's own faults (not a video, corrupt, truncated, labels that do not fit: VideoError,
    LayoutError) become a ``failed`` record with a one-line reason, which later runs skip. A fault
    of the machine (``tasks.io.faults``: no space, no permission, a remote store timing out)
    leaves no record, its version folder removed, and returns ``retry``: the next run decodes it.
    Anything else is a defect in vmac and propagates.
    """
    started = time.perf_counter()
    try:
        if params.frame_codec is None:
            params = resolve_frame_codec(store, params)
        return _ingest(item, store, params, run_id, on_frames, started, retry_failed)
    except Exception as exc:
        if not is_environmental(exc):
            raise
        return Outcome(item.video_id, item.uri, "retry", 0, time.perf_counter() - started,
                       environment_reason(exc, f"ingesting {item.uri} into {store}"), transient=is_transient(exc))


def _ingest(item: SourceItem, store: str, params: DecodeParams, run_id: str | None,
            on_frames: Callable[[int], None] | None, started: float, retry_failed: bool = False) -> Outcome:
    base = VideoRecord(
        video_id=item.video_id,
        source_uri=item.uri,
        source_kind=item.kind,
        layout=item.layout,
        status=Status.writing,
        decode_params=params,
        split=item.split,
        splits=list(item.splits),
        dataset_splits=list(item.dataset_splits),
        source_notes=list(item.notes),
        ingest_run_id=run_id,
        code_version=code_version(),
    )

    def finish(record: VideoRecord, action: str, frames: int = 0, version: str | None = None,
               pending: bool = False) -> Outcome:
        # A stored frame folder's notes (gaps, orphan annotations) go where a failure's reason would.
        note = record.reason if record.status is not Status.complete else folder_notes(record)
        return Outcome(item.video_id, item.uri, action, frames, time.perf_counter() - started, note,
                       record=record if pending else None, version=version)

    sha, size, reason, fingerprint = _hash(item)
    key = decode_key(sha, params) if sha else None
    base = replace_record(base, sha256=sha, byte_size=size, decode_key=key, source_fingerprint=fingerprint)
    root = open_store(store, frame_codec=params.frame_codec)
    existing = read_catalog_entry(store, item.video_id)
    if key and is_up_to_date(existing, key, retry_failed):
        if item.kind is SourceKind.frames:
            existing = _refresh_layout_facts(store, existing, base, run_id)
        if existing.status is Status.complete and run_id is not None and existing.ingest_run_id == run_id:
            # Stored by this run before a retry of its task: report it as this run's work.
            return finish(existing, "decoded", existing.frame_count or 0)
        return finish(existing, "skipped" if existing.status is Status.complete else "failed")
    if reason is not None:
        return finish(replace_record(base, status=Status.failed, reason=reason, written_at=_now()), "failed",
                      pending=True)
    group = new_version(root, item.video_id)
    version = group.basename
    try:
        record = _store(group, item, base, params, on_frames, store)
    except Exception:
        # Whatever was written is partial: remove it (space back on a full disk); a removal that
        # fails too leaves a folder no snapshot names, which vmac gc removes.
        with contextlib.suppress(Exception):
            remove_version(store, item.video_id, version)
        raise
    if fingerprint and source_fingerprint(item) != fingerprint:
        # The bytes decoded may not be the bytes hashed: nothing of it is kept.
        with contextlib.suppress(Exception):
            remove_version(store, item.video_id, version)
        return Outcome(item.video_id, item.uri, "retry", 0, time.perf_counter() - started,
                       "the source changed while vmac read it; nothing was recorded, so the next run reads it again")
    if record.status is Status.failed:
        remove_version(store, item.video_id, version)  # a failed video stores nothing
        return finish(record, "failed", pending=True)
    return finish(record, "decoded", record.frame_count or 0, version, pending=True)


# What a dataset layout says of a source beside its bytes: its split lists and notes. They can
# change while the bytes do not (lists edited, or read better by a newer vmac).
_LAYOUT_FACTS = ("split", "splits", "dataset_splits", "source_notes")


def _refresh_layout_facts(store: str, existing: VideoRecord, base: VideoRecord, run_id: str | None) -> VideoRecord:
    """``existing`` (an up-to-date record) with the layout's facts as they are now, committed (the
    same version folder, a new record) only when they differ: metadata, so the frames are not
    decoded again."""
    changes = {name: getattr(base, name) for name in _LAYOUT_FACTS if getattr(existing, name) != getattr(base, name)}
    if not changes:
        return existing
    record = replace_record(existing, **changes)

    def edit(videos: dict[str, CatalogEntry], validation: dict | None):
        entry = videos.get(record.video_id)
        held = parse_record(entry.record) if entry is not None else None
        if held is not None and held.decode_key == record.decode_key:
            videos[record.video_id] = CatalogEntry(version=entry.version,
                                                   record=replace_record(held, **changes).model_dump(mode="json"))
        return videos, validation

    commit(store, edit, "ingest", f"layout facts of {record.video_id} ({', '.join(changes)})", run_id, code_version())
    return record


def read_catalog_entry(store: str, video_id: str) -> VideoRecord | None:
    """The record of ``video_id`` at the tip of a store this process has opened for writing (None
    when it holds none, or an unreadable one)."""
    entry = resolve(normalize(store)).videos.get(video_id)
    return parse_record(entry.record) if entry is not None else None


def _store(group, item: SourceItem, base: VideoRecord, params: DecodeParams, on_frames, store: str) -> VideoRecord:
    """Write the video's arrays into its version folder ``group``, then its final record:
    ``complete``, or ``failed`` with the input's fault (VideoError, LayoutError)."""
    write_record(group, base)
    try:
        record = _write_arrays(item, group, base, params, on_frames, store)
    except (VideoError, LayoutError) as exc:
        return replace_record(base, status=Status.failed, reason=reason_of(exc), written_at=_now())
    # The record turns complete only now, after every array is written.
    record = replace_record(record, written_at=_now())
    write_record(group, record)
    return record


def record_alias(item: SourceItem, store: str, params: DecodeParams, target: str, key: str,
                 run_id: str | None = None) -> Outcome:
    """Add ``item``'s URI to the record of ``target``, the video stored from the same bytes with
    the same decode key, instead of storing the frames twice (one commit).

    When ``target`` holds another key by now, ``item`` is ingested as itself; when it was not
    stored (its own run failed for the machine's reason), ``item`` waits for the next run too.
    """
    started = time.perf_counter()
    found: list[VideoRecord] = []

    def edit(videos: dict[str, CatalogEntry], validation: dict | None):
        found.clear()
        entry = videos.get(target)
        record = parse_record(entry.record) if entry is not None else None
        if record is not None and record.decode_key == key and record.status is not Status.writing:
            found.append(record)
            if item.uri not in record.aliases:
                aliased = replace_record(record, aliases=[*record.aliases, item.uri])
                videos[target] = CatalogEntry(version=entry.version, record=aliased.model_dump(mode="json"))
        return videos, validation

    try:
        commit(store, edit, "alias", f"{item.uri} is an alias of {target}", run_id, code_version())
    except Exception as exc:
        if not is_environmental(exc):
            raise
        return Outcome(target, item.uri, "retry", 0, time.perf_counter() - started,
                       environment_reason(exc, f"recording {item.uri} as an alias in {store}"), transient=is_transient(exc))
    if found:
        record = found[0]
        action = "alias" if record.status is Status.complete else "failed"
        reason = f"{item.uri} has the same bytes: recorded as an alias" + (
            f"; the video failed: {record.reason}" if action == "failed" else "")
        return Outcome(target, item.uri, action, 0, time.perf_counter() - started, reason)
    if read_catalog_entry(store, target) is None:
        return Outcome(item.video_id, item.uri, "retry", 0, time.perf_counter() - started,
                       f"the same bytes as {target}, which was not stored in this run")
    return ingest_video(item, store, params, run_id)


def _hash(item: SourceItem) -> tuple[str | None, int | None, str | None, str | None]:
    """(sha256, bytes, None or the reason it fails, stat fingerprint), or (None, None, reason, None)
    for a source that cannot be read. The plan's hash is taken when the source's fingerprint is still
    the one it was hashed at; else the source is read here.

    A read that fails for the machine's reason (permission, I/O, a timeout) propagates."""
    if item.error is not None:
        return None, None, item.error, None
    fingerprint = source_fingerprint(item)
    if item.sha256 is not None and item.byte_size is not None and fingerprint and fingerprint == item.fingerprint:
        sha, size = item.sha256, item.byte_size
    else:
        try:
            sha, size = hash_source(item)
        except (OSError, ValueError) as exc:
            if is_environmental(exc):
                raise
            return None, None, f"unreadable: {reason_of(exc)}", None
    return sha, size, "empty file (0 bytes)" if size == 0 else None, fingerprint


def replace_record(record: VideoRecord, **changes) -> VideoRecord:
    """A copy with ``changes``; records are frozen, so every state change makes a new one."""
    return record.model_copy(update=changes)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _write_arrays(item: SourceItem, group, base: VideoRecord, params: DecodeParams, on_frames,
                  store: str) -> VideoRecord:
    if item.kind is SourceKind.video:
        return write_video(group, base, params, item.uri, on_frames, store)
    return write_frame_folder(group, base, params, item, on_frames)
