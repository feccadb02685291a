"""Ingest one source into the store: the unit of work that Dask runs, one call per video.

Plain functions (no Prefect inside), so a Dask worker runs them without starting a Prefect API.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import fsspec
import numpy as np

from storage_schemas.layout import FRAMES, KEYPOINTS, MASKS, NOT_ANNOTATED, VIDEOS_GROUP
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from tasks.ingest.plan import Outcome, decode_key, is_up_to_date
from tasks.io import layouts
from tasks.io.ffmpeg import VideoError, decode_chunks, output_size, probe
from tasks.io.items import SourceItem
from tasks.io.lineage import code_version
from tasks.io.shards import ShardWriter
from tasks.io.sources import hash_source
from tasks.io.store import (
    open_store,
    read_record,
    reset_video,
    video_lock,
    write_record,
)
from tasks.io.uris import is_url


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

    reason = item.error
    sha = size = None
    if reason is None:
        try:
            sha, size = hash_source(item)
        except (OSError, ValueError) as exc:
            reason = f"unreadable: {exc.__class__.__name__}: {exc}".splitlines()[0][:300]
        else:
            if size == 0:
                reason = "empty file (0 bytes)"
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
        write_record(group, record)
        return finish(record, "decoded", record.frame_count or 0)


def replace_record(record: VideoRecord, **changes) -> VideoRecord:
    """A copy with ``changes``; records are frozen, so every state change makes a new one."""
    return record.model_copy(update=changes)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else exc.__class__.__name__
    return line[:300]


def _write_arrays(item, group, base: VideoRecord, params: DecodeParams, on_frames) -> VideoRecord:
    if item.kind is SourceKind.video:
        return _write_video(item, group, base, params, on_frames)
    return _write_frame_folder(item, group, base, params, on_frames)


@contextlib.contextmanager
def _local_copy(uri: str) -> Iterator[str]:
    """A local path for ffmpeg: the file itself, or a streamed temporary copy of a remote URL."""
    if not is_url(uri):
        yield uri
        return
    suffix = os.path.splitext(uri)[1]
    with tempfile.TemporaryDirectory(prefix="vmac-src-") as tmp:
        path = os.path.join(tmp, f"source{suffix}")
        with fsspec.open(uri, "rb") as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield path


def _write_video(item, group, base, params, on_frames) -> VideoRecord:
    with _local_copy(item.uri) as path:
        info = probe(path)
        width, height = output_size(*info.display_size, params.short_side)
        fps = params.fps or info.fps
        expected = int(round(info.duration * fps)) if params.fps else info.frame_count
        writer = ShardWriter(group, FRAMES, (height, width, 3), "uint8", params.shard_frames, expected)
        for chunk in decode_chunks(path, width, height, params.shard_frames, fps=params.fps):
            writer.append(chunk)
            if on_frames:
                on_frames(len(chunk))
        count = writer.close()
    _check_complete(count, expected, exact=info.frame_count_exact and not params.fps)
    return replace_record(
        base,
        status=Status.complete,
        codec=info.codec,
        source_fps=info.fps,
        source_width=info.display_size[0],
        source_height=info.display_size[1],
        rotation=info.rotation,
        duration=info.duration,
        probe_frame_count=info.frame_count,
        fps=fps,
        frame_count=count,
        height=height,
        width=width,
        frames_sha256=writer.sha256.hexdigest(),
        written_at=_now(),
    )


def _check_complete(decoded: int, expected: int, exact: bool) -> None:
    """Fail a video that decodes to fewer frames than its container promises (a truncated file).

    ffmpeg stops at the break of a truncated MP4 and still exits 0. With an exact count from the
    container every frame must arrive; an estimate from duration × fps gets 5% slack.
    """
    floor = expected if exact else int(expected * 0.95) - 1
    if expected and decoded < floor:
        raise VideoError(f"truncated: decoded {decoded} of {expected} frames")


def _write_frame_folder(item, group, base, params, on_frames) -> VideoRecord:
    src_w, src_h = layouts.first_frame_size(item)
    width, height = output_size(src_w, src_h, params.short_side)
    total = len(item.frame_uris)
    writer = ShardWriter(group, FRAMES, (height, width, 3), "uint8", params.shard_frames, total)
    for chunk in layouts.read_frames(item, width, height, params.shard_frames):
        writer.append(chunk)
        if on_frames:
            on_frames(len(chunk))
    count = writer.close()
    changes: dict = {}
    if any(item.mask_uris):
        masks = ShardWriter(group, MASKS, (height, width), "uint8", params.shard_frames, total)
        ids: set[int] = set()
        for chunk in layouts.read_masks(item, width, height, params.shard_frames):
            masks.append(chunk)
            ids.update(int(v) for v in np.unique(chunk))
        masks.close()
        ids -= {0, NOT_ANNOTATED}
        changes.update(has_masks=True, object_ids=sorted(ids))
    if item.keypoints_uri:
        keypoints = layouts.read_keypoints(item, width / src_w, height / src_h, width, height)
        group.create_array(KEYPOINTS, data=keypoints, chunks=keypoints.shape, overwrite=True)
        changes.update(has_keypoints=True, num_joints=int(keypoints.shape[1]))
    return replace_record(
        base,
        status=Status.complete,
        codec=os.path.splitext(item.frame_uris[0])[1].lstrip(".").lower(),
        source_width=src_w,
        source_height=src_h,
        probe_frame_count=total,
        fps=params.fps,
        frame_count=count,
        height=height,
        width=width,
        frames_sha256=writer.sha256.hexdigest(),
        written_at=_now(),
        **changes,
    )
