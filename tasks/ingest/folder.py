"""One frame folder (DAVIS, VIP, JHMDB or plain images) into a video group.

Frames are stored in natural name order with their file names recorded (``frame_names``), so
results written per frame can reuse them. Labels must agree with the frames: an annotation whose
size differs from its frame, keypoints for another number of frames, or frames of mixed sizes fail
the sequence with a reason naming both sides; nothing is resampled to fit (docs/ingest.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from storage_schemas.codecs import frame_codec
from storage_schemas.layout import DIMENSIONS, FRAMES, KEYPOINTS, MASKS, NOT_ANNOTATED, TIMESTAMPS
from storage_schemas.records import DecodeParams, Status, VideoRecord
from tasks.ingest.motion import write_motion
from tasks.io import layouts
from tasks.io.ffmpeg import output_size
from tasks.io.items import SourceItem
from tasks.io.shards import ENCODE_THREADS, ShardWriter


def write_frame_folder(group, base: VideoRecord, params: DecodeParams, item: SourceItem,
                       on_frames: Callable[[int], None] | None) -> VideoRecord:
    """Read ``item``'s frames, masks and keypoints into ``group``; the completed record, or
    ValueError with a one-line reason."""
    src_w, src_h = layouts.first_frame_size(item)
    width, height = output_size(src_w, src_h, params.short_side)
    total = len(item.frame_uris)
    writer = ShardWriter(group, FRAMES, (height, width, 3), "uint8", params.shard_frames, total,
                         codec=frame_codec(params.frame_codec), threads=ENCODE_THREADS)
    for chunk in layouts.read_frames(item, width, height, params.shard_frames):
        writer.append(chunk)
        if on_frames:
            on_frames(len(chunk))
    count = writer.close()
    changes: dict = {}
    if any(item.mask_uris):
        changes.update(has_masks=True, object_ids=write_masks(group, item, (src_w, src_h), width, height, params))
    if item.keypoints_uri:
        keypoints = layouts.read_keypoints(item, width / src_w, height / src_h, width, height)
        group.create_array(KEYPOINTS, data=keypoints, chunks=keypoints.shape, overwrite=True,
                           dimension_names=DIMENSIONS[KEYPOINTS])
        changes.update(has_keypoints=True, num_joints=int(keypoints.shape[1]))
    if params.motion:
        changes.update(write_motion(group, params.shard_frames))
    if params.fps:
        # A folder has no clock of its own; --fps gives it one.
        group.create_array(TIMESTAMPS, data=np.arange(count, dtype=np.float64) / params.fps, chunks=(count,),
                           overwrite=True, dimension_names=DIMENSIONS[TIMESTAMPS])
        changes.update(has_timestamps=True, frame_rate_mode="constant")
    return base.model_copy(update=dict(
        status=Status.complete, codec=os.path.splitext(item.frame_uris[0])[1].lstrip(".").lower(),
        source_width=src_w, source_height=src_h, probe_frame_count=total, frame_names=layouts.frame_names(item),
        fps=params.fps, frame_count=count, height=height, width=width, frames_sha256=writer.sha256.hexdigest(),
        **changes,
    ))


def write_masks(group, item: SourceItem, source_size: tuple[int, int], width: int, height: int,
                params: DecodeParams) -> list[int]:
    """Store the id masks beside the frames; the object ids they hold (without 0 and 255)."""
    masks = ShardWriter(group, MASKS, (height, width), "uint8", params.shard_frames, len(item.frame_uris))
    seen = np.zeros(256, bool)
    for chunk in layouts.read_masks(item, source_size, width, height, params.shard_frames):
        masks.append(chunk)
        seen |= np.bincount(chunk.ravel(), minlength=256) > 0
    masks.close()
    return sorted(set(np.flatnonzero(seen).tolist()) - {0, NOT_ANNOTATED})
