"""Ingest one source into the store: the unit of work that Dask runs, one call per video.

Plain functions (no Prefect inside), so a Dask worker runs them without starting a Prefect API.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import datetime, timezone

from storage_schemas.layout import VIDEOS_GROUP
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from tasks.ingest.container import write_video
from tasks.ingest.folder import folder_notes, write_frame_folder
from tasks.ingest.plan import Outcome, decode_key, is_up_to_date
from tasks.io.faults import environment_reason, is_environmental, is_transient, reason_of
from tasks.io.images import LayoutError
from tasks.io.items import SourceItem
from tasks.io.lineage import code_version
from tasks.io.probe import VideoError
from tasks.io.sources import hash_source, source_fingerprint
from tasks.io.store import (
    open_store,
    read_record,
    reset_video,
    resolve_frame_codec,
    video_lock,
    write_record,
)


def ingest_video(
    item: SourceItem,
    store: str,
    params: DecodeParams,
    run_id: str | None = None,
    on_frames: Callable[[int], None] | None = None,
    retry_failed: bool = False,
) -> Outcome:
    """Decode ``item`` into ``videos/<video_id>`` unless it is already there with the same key
    (complete, or failed for good unless ``retry_failed``).

    The input's own faults (not a video, corrupt, truncated, labels that do not fit: VideoError,
    LayoutError) become a ``failed`` record with a one-line reason, which later runs skip. A fault
    of the machine (``tasks.io.faults``: no space, no permission, a remote store timing out)
    leaves no record, its partial group removed, and returns ``retry``: the next run decodes it.
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

    def finish(record: VideoRecord, action: str, frames: int = 0) -> Outcome:
        # A stored frame folder's notes (gaps, orphan annotations) go where a failure's reason would.
        note = record.reason if record.status is not Status.complete else folder_notes(record)
        return Outcome(item.video_id, item.uri, action, frames, time.perf_counter() - started, note)

    sha, size, reason, fingerprint = _hash(item)
    key = decode_key(sha, params) if sha else None
    base = replace_record(base, sha256=sha, byte_size=size, decode_key=key, source_fingerprint=fingerprint)

    with video_lock(store, item.video_id):
        root = open_store(store, frame_codec=params.frame_codec)
        path = f"{VIDEOS_GROUP}/{item.video_id}"
        existing = read_record(root[path]) if path in root else None
        if key and is_up_to_date(existing, key, retry_failed):
            if item.kind is SourceKind.frames:
                existing = _refresh_layout_facts(root[path], existing, base)
            if existing.status is Status.complete and run_id is not None and existing.ingest_run_id == run_id:
                # Stored by this run before a retry of its task: report it as this run's work.
                return finish(existing, "decoded", existing.frame_count or 0)
            return finish(existing, "skipped" if existing.status is Status.complete else "failed")
        try:
            record = _store(root, item, base, params, on_frames, reason, store)
        except Exception as exc:
            if is_environmental(exc):
                # Whatever was written is partial: remove it (space back on a full disk); a
                # removal that fails too leaves a ``writing`` group, which the next run redoes.
                with contextlib.suppress(Exception):
                    del root[VIDEOS_GROUP][item.video_id]
            raise
        if fingerprint and source_fingerprint(item) != fingerprint:
            # The bytes decoded may not be the bytes hashed: nothing of it is kept.
            with contextlib.suppress(Exception):
                del root[VIDEOS_GROUP][item.video_id]
            return Outcome(item.video_id, item.uri, "retry", 0, time.perf_counter() - started,
                           "the source changed while vmac read it; nothing was recorded, so the next run reads it again")
        return finish(record, record.status.value if record.status is Status.failed else "decoded",
                      record.frame_count or 0)


# What a dataset layout says of a source beside its bytes: its split lists and notes. They can
# change while the bytes do not (lists edited, or read better by a newer vmac).
_LAYOUT_FACTS = ("split", "splits", "dataset_splits", "source_notes")


def _refresh_layout_facts(group, existing: VideoRecord, base: VideoRecord) -> VideoRecord:
    """``existing`` (an up-to-date record) with the layout's facts as they are now, rewritten only
    when they differ: metadata, so the frames are not decoded again."""
    changes = {name: getattr(base, name) for name in _LAYOUT_FACTS if getattr(existing, name) != getattr(base, name)}
    if not changes:
        return existing
    record = replace_record(existing, **changes)
    write_record(group, record)
    return record


def _store(root, item: SourceItem, base: VideoRecord, params: DecodeParams, on_frames,
           reason: str | None, store: str) -> VideoRecord:
    """Reset the video's group and write its arrays, then its final record: ``complete``, or
    ``failed`` with ``reason`` or the input's fault."""
    if reason is not None:
        record = replace_record(base, status=Status.failed, reason=reason, written_at=_now())
        reset_video(root, item.video_id, record)
        return record
    group = reset_video(root, item.video_id, base)
    try:
        record = _write_arrays(item, group, base, params, on_frames, store)
    except (VideoError, LayoutError) as exc:
        failed = replace_record(base, status=Status.failed, reason=reason_of(exc), written_at=_now())
        reset_video(root, item.video_id, failed)
        return failed
    # The record turns complete only now, after every array is written.
    record = replace_record(record, written_at=_now())
    write_record(group, record)
    return record


def record_alias(item: SourceItem, store: str, params: DecodeParams, target: str, key: str,
                 run_id: str | None = None) -> Outcome:
    """Add ``item``'s URI to the record of ``target``, the video stored from the same bytes with
    the same decode key, instead of storing the frames twice.

    When ``target`` holds another key by now, ``item`` is ingested as itself; when it was not
    stored (its own run failed for the machine's reason), ``item`` waits for the next run too.
    """
    started = time.perf_counter()
    try:
        with video_lock(store, target):
            root = open_store(store)
            path = f"{VIDEOS_GROUP}/{target}"
            record = read_record(root[path]) if path in root else None
            if record is not None and record.decode_key == key and record.status is not Status.writing:
                if item.uri not in record.aliases:
                    write_record(root[path], replace_record(record, aliases=[*record.aliases, item.uri]))
                action = "alias" if record.status is Status.complete else "failed"
                reason = f"{item.uri} has the same bytes: recorded as an alias" + (
                    f"; the video failed: {record.reason}" if action == "failed" else "")
                return Outcome(target, item.uri, action, 0, time.perf_counter() - started, reason)
    except Exception as exc:
        if not is_environmental(exc):
            raise
        return Outcome(target, item.uri, "retry", 0, time.perf_counter() - started,
                       environment_reason(exc, f"recording {item.uri} as an alias in {store}"), transient=is_transient(exc))
    if record is None:
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
