"""One frame folder (DAVIS, YouTube-VOS, VIP, JHMDB or plain images) into a video group.

Frames are stored in natural name order, each as a viewer shows its file (``tasks.io.images``:
EXIF orientation, 16-bit samples scaled, CMYK and palette converted), with their file names
recorded (``frame_names``), so results written per frame can reuse them. The numbering of the
names is recorded with its gaps, and with ``--fps`` the numbers are the clock. Labels must agree
with the frames: an annotation whose size differs from its frame, keypoints for another number
of frames, or frames of mixed sizes fail the sequence with a reason naming both sides; nothing is
resampled to fit (docs/ingest.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from storage_schemas.benchmark import VIP_CLASSES
from storage_schemas.codecs import frame_codec
from storage_schemas.layout import DIMENSIONS, FRAMES, KEYPOINTS, MASKS, NOT_ANNOTATED, TIMESTAMPS
from storage_schemas.records import DecodeParams, Status, VideoRecord
from tasks.ingest.motion import write_motion
from tasks.io import frame_files
from tasks.io.ffmpeg import output_size
from tasks.io.images import ORIENTATIONS
from tasks.io.items import SourceItem
from tasks.io.shards import ENCODE_THREADS, ShardWriter


def write_frame_folder(group, base: VideoRecord, params: DecodeParams, item: SourceItem,
                       on_frames: Callable[[int], None] | None) -> VideoRecord:
    """Read ``item``'s frames, masks and keypoints into ``group``; the completed record, or
    ValueError (``LayoutError``) with a one-line reason."""
    src_w, src_h = frame_files.first_frame_size(item)
    width, height = output_size(src_w, src_h, params.short_side)
    total = len(item.frame_uris)
    writer = ShardWriter(group, FRAMES, (height, width, 3), "uint8", params.shard_frames, total,
                         codec=frame_codec(params.frame_codec), threads=ENCODE_THREADS)
    seen = frame_files.FramesSeen()
    for chunk in frame_files.read_frames(item, width, height, params.shard_frames, seen):
        writer.append(chunk)
        if on_frames:
            on_frames(len(chunk))
    count = writer.close()
    names = frame_files.frame_names(item)
    numbering = frame_files.numbering(names)
    changes: dict = dict(image_modes=sorted(seen.modes), bit_depth=seen.bit_depth, image_notes=dict(seen.notes),
                         exif_orientations=dict(sorted(seen.orientations.items())), numbering_step=numbering.step,
                         numbering_gaps=list(numbering.gaps), orphan_annotations=list(item.orphan_annotations),
                         object_categories=dict(item.object_categories), fps=params.fps)
    if any(item.mask_uris):
        rule = frame_files.label_rule(item)
        ids, first_frames = write_masks(group, item, (src_w, src_h), width, height, params, rule)
        changes.update(has_masks=True, object_ids=ids, object_first_frames=first_frames,
                       mask_semantics=item.mask_semantics or "complete", label_reading=rule.described())
    if item.keypoints_uri:
        keypoints = frame_files.read_keypoints(item, width / src_w, height / src_h, width, height)
        group.create_array(KEYPOINTS, data=keypoints, chunks=keypoints.shape, overwrite=True,
                           dimension_names=DIMENSIONS[KEYPOINTS])
        changes.update(has_keypoints=True, num_joints=int(keypoints.shape[1]))
    if params.motion:
        changes.update(write_motion(group, params.shard_frames))
    if params.fps:
        changes.update(_clock(group, count, numbering, params.fps))
    return base.model_copy(update=dict(
        status=Status.complete, codec=os.path.splitext(item.frame_uris[0])[1].lstrip(".").lower(),
        source_width=src_w, source_height=src_h, probe_frame_count=total, frame_names=names,
        frame_count=count, height=height, width=width, frames_sha256=writer.sha256.hexdigest(),
        **changes,
    ))


def _clock(group, count: int, numbering: frame_files.Numbering, fps: float) -> dict:
    """A folder has no clock of its own; --fps gives it one, with the file numbers as its ticks on
    the folder's own interval (a frame after a gap keeps its own time; numbers that wobble by
    rounding do not make the rate variable). The record's fps is then the stored frames' mean rate."""
    times = frame_files.frame_times(count, numbering, fps)
    group.create_array(TIMESTAMPS, data=times, chunks=(count,), overwrite=True,
                       dimension_names=DIMENSIONS[TIMESTAMPS])
    if numbering.gaps:
        rate = (count - 1) / float(times[-1])
    else:
        rate = fps / (numbering.interval or 1)
    return dict(has_timestamps=True, frame_rate_mode="variable" if numbering.gaps else "constant", fps=rate)


def write_masks(group, item: SourceItem, source_size: tuple[int, int], width: int, height: int,
                params: DecodeParams, rule: frame_files.LabelRule) -> tuple[list[int], dict[int, int]]:
    """Store the id masks beside the frames, grey levels read by ``rule``; (the object ids they
    hold, without 0 and 255; each id's first stored frame)."""
    masks = ShardWriter(group, MASKS, (height, width), "uint8", params.shard_frames, len(item.frame_uris))
    first_frames: dict[int, int] = {}
    start = 0
    for chunk in frame_files.read_masks(item, source_size, width, height, params.shard_frames, rule):
        masks.append(chunk)
        for offset, ids_hw in enumerate(chunk):
            present = np.flatnonzero(np.bincount(ids_hw.ravel(), minlength=256))
            for object_id in present.tolist():
                if object_id not in (0, NOT_ANNOTATED):
                    first_frames.setdefault(object_id, start + offset)
        start += len(chunk)
    masks.close()
    return sorted(first_frames), dict(sorted(first_frames.items()))


def folder_notes(record: VideoRecord) -> str | None:
    """What a stored frame folder's record says a person should know, in one line: the layout's
    notes, gaps or repeats in the numbering, orphan annotations, object ids meta.json does not
    list, VIP class ids beyond its classes, what files needed, EXIF orientations applied, deep
    samples scaled; None if nothing."""
    notes = list(record.source_notes)
    if record.numbering_gaps:
        notes.append(frame_files.describe_gaps(record.numbering_gaps))
    repeats = frame_files.numbering(record.frame_names or []).repeats
    if repeats:
        notes.append(f"frame numbers repeat ({', '.join(repeats[:4])}{' …' if len(repeats) > 4 else ''}): "
                     "stored in name order")
    if record.orphan_annotations:
        shown = ", ".join(record.orphan_annotations[:3]) + (" …" if len(record.orphan_annotations) > 3 else "")
        notes.append(f"{len(record.orphan_annotations)} annotation file(s) without a frame, not stored ({shown})")
    notes += _label_notes(record)
    if record.label_reading and not frame_files.plain_reading(record.label_reading):
        notes.append(record.label_reading)
    notes += [f"{n} file(s) {what}" for what, n in record.image_notes.items()]
    if record.exif_orientations:
        notes.append("EXIF orientation applied: " + ", ".join(
            f"{ORIENTATIONS[o]} ×{n}" for o, n in record.exif_orientations.items()))
    if (record.bit_depth or 8) > 8:
        notes.append(f"{record.bit_depth}-bit samples scaled to 8 bits (round(v × 255 / {(1 << record.bit_depth) - 1}))")
    return "; ".join(notes) or None


def _label_notes(record: VideoRecord) -> list[str]:
    """Where the stored labels and what the layout declares of them disagree: YouTube-VOS object
    ids in the masks that meta.json does not list, or listed but never in a mask; VIP class ids
    beyond its classes (evaluation lists such a video as not evaluable)."""
    ids = set(record.object_ids)
    if record.layout == "youtube-vos" and record.object_categories and record.has_masks:
        listed = set(record.object_categories)
        unlisted, absent = sorted(ids - listed), sorted(listed - ids)
        return ([f"object id(s) {', '.join(map(str, unlisted))} in the masks, not in meta.json"] if unlisted else []) + (
            [f"meta.json lists object id(s) {', '.join(map(str, absent))}, which no mask shows"] if absent else [])
    if record.layout == "vip" and ids and max(ids) >= VIP_CLASSES:
        beyond = ", ".join(str(i) for i in sorted(ids) if i >= VIP_CLASSES)
        return [f"class id(s) {beyond} beyond VIP's {VIP_CLASSES} classes (0-{VIP_CLASSES - 1})"]
    return []
