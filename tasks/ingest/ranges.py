"""One long video decoded as several time ranges at once, each on its own worker.

A video of at least two ranges (``RANGE_SHARDS`` shards each) is split at shard boundaries, so
each range writes whole shards of the one frames array and no two ranges touch the same object
(the pangeo-forge rule: each parallel writer owns a chunk-aligned region). Each range is one
ffmpeg decode with an accurate seek to ``OVERLAP_FRAMES`` frames before its first frame; the
frames before it are dropped by their timestamps, which ffmpeg reports on the container's clock
(``-copyts``), the same clock the demuxer's packet times use. The stored frames and timestamps
are those of a decode from the start: tests/ingest/test_ranges.py holds that byte for byte.

A range that cannot show that it starts where it should (the seek landed after its first frame,
or it delivered another number of frames) raises RangeMismatchError, and the video is decoded
again as one range.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from storage_schemas.codecs import frame_codec
from storage_schemas.layout import FRAMES, VIDEOS_GROUP
from storage_schemas.records import DecodeParams
from tasks.io.ffmpeg import FfmpegDecode
from tasks.io.shards import ENCODE_THREADS, ShardWriter
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
    first: int
    frames: int
    timestamps: list[float]
    error_count: int
    first_error: str | None


def time_ranges(shown_times: tuple[float, ...], shard_frames: int, start_time: float) -> list[TimeRange]:
    """The ranges of a video whose shown frames have these times (seconds, display order); one
    range when it is shorter than two."""
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
        keep_from = (shown_times[first - 1] + shown_times[first]) / 2
        ranges.append(TimeRange(first, stop, max(seek - start_time, 0.0), keep_from))
    return ranges


def decode_range(path: str, store: str, video_id: str, params: DecodeParams, size: tuple[int, int],
                 stream_index: int, span: TimeRange) -> RangeResult:
    """Decode ``span`` of the video at ``path`` into the existing frames array of ``video_id``:
    the frames from ``keep_from`` on, ``stop - first`` of them, written as whole shards."""
    width, height = size
    group = open_store(store)[f"{VIDEOS_GROUP}/{video_id}"]
    writer = ShardWriter(group, FRAMES, (height, width, 3), "uint8", params.shard_frames, span.stop,
                         codec=frame_codec(params.frame_codec), threads=ENCODE_THREADS, first_frame=span.first,
                         create=False)
    decode = FfmpegDecode(path, width, height, params.shard_frames, stream_index, seek=span.seek)
    wanted, kept, skipped, started = span.stop - span.first, 0, 0, span.keep_from is None
    for chunk in decode:
        if not started:
            # Drop the overlap: frames whose time is before keep_from. The first decoded frame
            # must be one of them, or the seek may have skipped the range's first frame.
            times = decode.wait_timestamps(decode.frames)[-len(chunk):]
            drop = int(np.searchsorted(np.asarray(times), span.keep_from))
            if decode.frames == len(chunk) and drop == 0:
                raise RangeMismatchError(f"the seek for frames {span.first}-{span.stop - 1} landed after its first frame")
            skipped += drop
            chunk, started = chunk[drop:], drop < len(chunk)
        chunk = chunk[: wanted - kept]
        if len(chunk):
            writer.append(chunk)
            kept += len(chunk)
        if kept == wanted:
            break
    writer.close(trim=False)
    if kept != wanted:
        raise RangeMismatchError(f"frames {span.first}-{span.stop - 1}: the decode delivered {kept} of {wanted}")
    times = decode.wait_timestamps(skipped + wanted)[skipped:]
    if len(times) != wanted:
        raise RangeMismatchError(f"frames {span.first}-{span.stop - 1}: ffmpeg reported {len(times)} timestamps")
    return RangeResult(span.first, kept, times, decode.error_count, decode.first_error())


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
