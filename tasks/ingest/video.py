"""Ingest one source into the store: the unit of work that Dask runs, one call per video.

Plain functions (no Prefect inside), so a Dask worker runs them without starting a Prefect API.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

from storage_schemas.layout import VIDEOS_GROUP
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from tasks.ingest.container import write_video
from tasks.ingest.folder import write_frame_folder
from tasks.ingest.plan import Outcome, decode_key, is_up_to_date
from tasks.io.items import SourceItem
from tasks.io.lineage import code_version
from tasks.io.probe import VideoError
from tasks.io.sources import hash_source
from tasks.io.store import (
    open_store,
    read_record,
    reset_video,
    video_lock,
    write_record,
)


def ingest_video(
    item: SourceItem,
    store: str,
    params: DecodeParams,
    run_id: str | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> Outcome:
    """Decode ``item`` into ``videos/<video_id>`` unless it is already there with the same key.

    Never raises for bad input: every failure becomes a ``failed`` record with a one-line reason.
    """
    started = time.perf_counter()
    base = VideoRecord(
        video_id=item.video_id,
        source_uri=item.uri,
        source_kind=item.kind,
        layout=item.layout,
        status=Status.writing,
        decode_params=params,
        split=item.split,
        ingest_run_id=run_id,
        code_version=code_version(),
    )

    def finish(record: VideoRecord, action: str, frames: int = 0) -> Outcome:
        return Outcome(item.video_id, item.uri, action, frames, time.perf_counter() - started, record.reason)

    sha, size, reason = _hash(item)
    key = decode_key(sha, params) if sha else None
    base = replace_record(base, sha256=sha, byte_size=size, decode_key=key)

    with video_lock(store, item.video_id):
        root = open_store(store)
        path = f"{VIDEOS_GROUP}/{item.video_id}"
        existing = read_record(root[path]) if path in root else None
        if key and is_up_to_date(existing, key):
            return finish(existing, "skipped" if existing.status is Status.complete else "failed")
        if reason is not None:
            record = replace_record(base, status=Status.failed, reason=reason, written_at=_now())
            reset_video(root, item.video_id, record)
            return finish(record, "failed")
        group = reset_video(root, item.video_id, base)
        try:
            record = _write_arrays(item, group, base, params, on_frames)
        except (VideoError, OSError, ValueError, RuntimeError) as exc:
            failed = replace_record(base, status=Status.failed, reason=_reason(exc), written_at=_now())
            reset_video(root, item.video_id, failed)
            return finish(failed, "failed")
        # The record turns complete only now, after every array is written.
        record = replace_record(record, written_at=_now())
        write_record(group, record)
        return finish(record, "decoded", record.frame_count or 0)


def _hash(item: SourceItem) -> tuple[str | None, int | None, str | None]:
    """(sha256, bytes, None), or (None, None, reason) for a source that cannot be read or is empty."""
    if item.error is not None:
        return None, None, item.error
    try:
        sha, size = hash_source(item)
    except (OSError, ValueError) as exc:
        return None, None, f"unreadable: {exc.__class__.__name__}: {exc}".splitlines()[0][:300]
    return (sha, size, "empty file (0 bytes)") if size == 0 else (sha, size, None)


def replace_record(record: VideoRecord, **changes) -> VideoRecord:
    """A copy with ``changes``; records are frozen, so every state change makes a new one."""
    return record.model_copy(update=changes)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _reason(exc: Exception) -> str:
    """One line for the catalog: the message, or the exception's class when it has none."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else exc.__class__.__name__
    return line[:300]


def _write_arrays(item: SourceItem, group, base: VideoRecord, params: DecodeParams, on_frames) -> VideoRecord:
    if item.kind is SourceKind.video:
        return write_video(group, base, params, item.uri, on_frames)
    return write_frame_folder(group, base, params, item, on_frames)
