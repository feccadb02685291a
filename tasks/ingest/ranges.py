"""One long video decoded as several time ranges at once, each on its own worker.

A video of at least two ranges (``RANGE_SHARDS`` shards each) is split at shard boundaries, so
each range writes whole shards of the one frames array and no two ranges touch the same object
(the pangeo-forge rule: each parallel writer owns a chunk-aligned region). Each range is one
ffmpeg decode with an accurate seek to ``OVERLAP_FRAMES`` frames before its first frame; the
frames before it are dropped by their timestamps, which ffmpeg reports on the container's clock
(``-copyts``), the same clock the demuxer's packet times use. The stored frames and timestamps
are those of a decode from the start: tests/ingest/test_ranges.py holds that byte for byte.

A range that cannot show that it starts where it should (the seek landed after its first frame,
or it delivered another number of frames) comes back with ``mismatch`` set, the caller raises
RangeMismatchError, and the video is decoded again as one range. ``keep_span`` is also the whole
decode's loop: a file cut mid-GOP keeps its frames from its first keyframe on the same way.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from storage_schemas.codecs import frame_codec
from storage_schemas.layout import FRAMES
from storage_schemas.records import DecodeParams
from tasks.io.ffmpeg import FfmpegDecode, Geometry
from tasks.io.probe import Probe
from tasks.io.shards import ENCODE_THREADS, READ_BUFFER_BYTES, ShardWriter, frames_per
from tasks.io.store import open_store

# Shards per time range: 8 × 64 frames, about 20 s of 25 fps video per worker task.
RANGE_SHARDS = 8
# Frames decoded before a range's first frame and dropped: a seek that lands a frame late shows.
OVERLAP_FRAMES = 3


class RangeMismatchError(RuntimeError):
    """A range's decode did not start at its first frame or did not deliver its frames."""


@dataclass(frozen=True)
class TimeRange:
    """Frames [first, stop) of a video; ``seek`` (seconds after the container's start time) and
    ``keep_from`` (the first kept frame's time lies at or after it, container clock)."""

    first: int
    stop: int
    seek: float | None
    keep_from: float | None


@dataclass(frozen=True)
class RangeResult:
    """What one span's decode kept. ``mismatch``: why the span could not show it starts where it
    should (the caller decodes the video from the start instead); returned, not raised, so a Dask
    worker logs no traceback for an expected outcome."""

    first: int
    frames: int
    timestamps: list[float]
    error_count: int
    first_error: str | None
    geometry: list[Geometry] = field(default_factory=list)
    interlaced_frames: int = 0
    mismatch: str | None = None


def time_ranges(shown_times: tuple[float, ...], shard_frames: int, start_time: float,
                key_times: tuple[float, ...] = ()) -> list[TimeRange]:
    """The ranges of a video whose shown frames have these times (seconds, display order); one
    range when it is shorter than two.

    With ``key_times`` (the keyframes' presentation times), each range seeks to just before the
    keyframe at or before its lead frame: a container without an index (MPEG-TS, MPEG-PS) seeks
    to a packet near the time, not to a keyframe, and the decode would start at the next keyframe,
    after the range's first frame. With an index the seek lands on that keyframe anyway."""
    size = RANGE_SHARDS * shard_frames
    total = len(shown_times)
    if total < 2 * size:
        return [TimeRange(0, total, None, None)]
    ranges = []
    for first in range(0, total, size):
        stop = min(first + size, total)
        if first == 0:
            ranges.append(TimeRange(0, stop, None, None))
            continue
        lead = first - OVERLAP_FRAMES
        # Half a frame before the lead frame, and the boundary half-way between two frames: no
        # rounding of a time puts a frame on the wrong side.
        seek = (shown_times[lead - 1] + shown_times[lead]) / 2 if lead > 0 else shown_times[0]
        key = bisect.bisect_right(key_times, shown_times[max(lead, 0)]) - 1
        if key >= 0:
            half_frame = (shown_times[first] - shown_times[first - 1]) / 2
            seek = min(seek, key_times[key] - half_frame)
        keep_from = (shown_times[first - 1] + shown_times[first]) / 2
        ranges.append(TimeRange(first, stop, max(seek - start_time, 0.0), keep_from))
    return ranges


def decode_range(path: str, store: str, group_path: str, info: Probe, params: DecodeParams, plan, span: TimeRange
                 ) -> RangeResult:
    """Decode ``span`` of the video at ``path`` into the existing frames array of the version folder
    ``group_path`` (``plan``: a ``tasks.ingest.container.DecodePlan``): the frames from ``keep_from``
    on, ``stop - first`` of them, written as whole shards."""
    group = open_store(store)[group_path]
    writer = ShardWriter(group, FRAMES, (plan.height, plan.width, 3), "uint8", plan.shard_frames, span.stop,
                         codec=frame_codec(params.frame_codec), threads=ENCODE_THREADS, first_frame=span.first,
                         create=False)
    result, _ = keep_span(path, info, params, plan, span, writer)
    if result.mismatch is None:
        writer.close(trim=False)
    return result


def keep_span(path: str, info: Probe, params: DecodeParams, plan, span: TimeRange, writer: ShardWriter,
              on_frames: Callable[[int], None] | None = None, whole: bool = False) -> tuple[RangeResult, FfmpegDecode]:
    """One ffmpeg decode from ``span.seek``, its frames before ``span.keep_from`` dropped, the rest
    appended to ``writer``: all of them (``whole``), or ``stop - first``. A span decode whose first
    frame is already one to keep (the seek may have skipped some) or that delivers another count
    comes back with ``mismatch`` set."""
    chunk_frames = frames_per(READ_BUFFER_BYTES, plan.width * plan.height * 3, plan.shard_frames)
    decode = FfmpegDecode(path, plan.width, plan.height, chunk_frames, info.stream_index, fps=params.fps,
                          seek=span.seek, container_format=info.demuxer, filters=plan.filters, keep_from=span.keep_from)
    wanted = None if whole else span.stop - span.first
    kept, skipped, started = 0, 0, span.keep_from is None
    where = f"frames {span.first}-{span.stop - 1}"
    for chunk in decode:
        if not started:
            # Drop the overlap: frames whose time is before keep_from. In a span, the first decoded
            # frame must be one of them, or the seek may have skipped the span's first frame.
            times = decode.wait_timestamps(decode.frames)[-len(chunk):]
            drop = int(np.searchsorted(np.asarray(times), span.keep_from))
            if not whole and decode.frames == len(chunk) and drop == 0:
                return _mismatch(span, f"the seek for {where} landed after its first frame"), decode
            skipped += drop
            chunk, started = chunk[drop:], drop < len(chunk)
        if wanted is not None:
            chunk = chunk[: wanted - kept]
        if len(chunk):
            writer.append(chunk)
            kept += len(chunk)
            if on_frames:
                on_frames(len(chunk))
        if kept == wanted:
            break
    if wanted is not None and kept != wanted:
        return _mismatch(span, f"{where}: the decode delivered {kept} of {wanted}"), decode
    times = decode.wait_timestamps(skipped + kept)[skipped:]
    if len(times) != kept:
        return _mismatch(span, f"{where}: ffmpeg reported {len(times)} timestamps for {kept} frames"), decode
    return RangeResult(span.first, kept, times, decode.error_count, decode.first_error(), list(decode.geometry),
                       decode.interlaced_frames), decode


def _mismatch(span: TimeRange, why: str) -> RangeResult:
    return RangeResult(span.first, 0, [], 0, None, mismatch=why)


def run_ranges(job: Callable[[TimeRange], RangeResult], spans: list[TimeRange]) -> list[RangeResult]:
    """``job`` over ``spans``: on the Dask cluster this runs in (the calling task steps aside
    while its ranges run, so they may use its worker too), else one after the other here."""
    # A process that never loaded distributed is no Dask worker: decode here, without importing it
    # (0.2-0.4 s and about 35 MB, which a command with nothing to decode does not need either).
    if "distributed" not in sys.modules:
        return [job(span) for span in spans]
    from distributed import get_worker, worker_client

    try:
        get_worker()
    except ValueError:
        return [job(span) for span in spans]
    with worker_client() as client:
        return client.gather(client.map(job, spans, pure=False))
