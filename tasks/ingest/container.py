"""One video file into a video group: the stream the file shows, at its display geometry.

What is stored is what the decoded stream shows (docs/ingest.md):
- every frame once, in presentation order, with its presentation timestamp; a variable frame
  rate stays variable unless ``fps`` asks for resampling;
- the first video stream that is not an attached picture (cover art);
- the display geometry: the coded size stretched by the sample aspect ratio, then rotated;
- the frames the demuxer delivers and the edit list keeps, all of them: a file whose index lists
  frames its data does not hold is truncated, and a decode that logged errors (ffmpeg conceals
  them and still exits 0) fails unless ``on_decode_error`` is ``keep``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from storage_schemas.codecs import frame_codec
from storage_schemas.layout import FRAMES, TIMESTAMPS
from storage_schemas.records import DecodeParams, Status, VideoRecord
from tasks.ingest.motion import write_motion
from tasks.ingest.ranges import RangeMismatchError, TimeRange, decode_range, run_ranges, time_ranges
from tasks.io.ffmpeg import FfmpegDecode, output_size
from tasks.io.probe import PacketCount, Probe, VideoError, count_packets, probe
from tasks.io.shards import ENCODE_THREADS, ShardWriter, create_sharded
from tasks.io.store import frames_sha256
from tasks.io.uris import is_url, open_uri

LOG = logging.getLogger(__name__)

# A stream is variable-rate when its frame intervals spread by more than this fraction of the
# median interval (timestamp rounding in a 1/1000 time base stays far below it).
VARIABLE_RATE_SPREAD = 0.5
# How ffmpeg's demuxers say a file stops before its end.
TRUNCATION_WORDS = ("ended prematurely", "partial file", "end of file", "truncat")


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path for ffmpeg: the file itself, or a streamed temporary copy of a remote URL."""
    if not is_url(uri):
        yield uri
        return
    suffix = os.path.splitext(uri)[1]
    with tempfile.TemporaryDirectory(prefix="vmac-src-") as tmp:
        path = os.path.join(tmp, f"source{suffix}")
        with open_uri(uri) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield path


def checked_packets(path: str, info: Probe) -> PacketCount:
    """The stream's packets; ``frames`` is what a decode must show: the packets minus those an
    edit list cuts. Raises VideoError when the container's index lists more frames than its data
    holds."""
    packets = count_packets(path, info.stream_index)
    if info.listed_frames and packets.delivered < info.listed_frames:
        raise VideoError(f"truncated: the container lists {info.listed_frames} frames, "
                         f"its data holds {packets.delivered}")
    return packets


@dataclass(frozen=True)
class Decoded:
    """What a decode stored: frames, their timestamps (container clock), the errors ffmpeg
    logged, and the hash of the frames as they read back."""

    frames: int
    timestamps_t: np.ndarray
    error_count: int
    first_error: str | None
    frames_sha256: str


def write_video(group, base: VideoRecord, params: DecodeParams, uri: str,
                on_frames: Callable[[int], None] | None, store: str | None = None) -> VideoRecord:
    """Decode ``uri`` into ``group`` (frames, timestamps, and the motion map when
    ``params.motion``); the completed record, or VideoError.

    A local video long enough for two time ranges (``tasks.ingest.ranges``) of a store given by
    URL is decoded range by range, on as many Dask workers as are free."""
    with local_copy(uri) as path:
        info = probe(path)
        packets = checked_packets(path, info)
        expected = packets.frames
        size = output_size(*info.display_size, params.short_side)
        spans = []
        if store is not None and not is_url(uri) and params.fps is None and len(packets.shown_times) == expected:
            spans = time_ranges(packets.shown_times, params.shard_frames, info.start_time)
        decoded = None
        if len(spans) > 1:
            try:
                decoded = _write_ranges(group, store, base.video_id, path, params, size, info.stream_index, spans)
            except RangeMismatchError as exc:
                LOG.warning("%s: decoding it from the start instead of in time ranges: %s", uri, exc)
            else:
                if on_frames:
                    on_frames(decoded.frames)
        if decoded is None:
            decoded = _write_whole(group, path, params, size, info.stream_index, expected, on_frames)
        check_decode(decoded, expected, params)
        motion = write_motion(group, params.shard_frames, path, info, params.fps is not None) if params.motion else {}
    # Seconds from the first shown frame.
    timestamps = decoded.timestamps_t - decoded.timestamps_t[0]
    group.create_array(TIMESTAMPS, data=timestamps, chunks=(max(len(timestamps), 1),), overwrite=True)
    mode, fps = frame_rate(timestamps, params.fps)
    width, height = size
    return base.model_copy(update=dict(
        status=Status.complete, codec=info.codec, stream_index=info.stream_index, source_fps=info.fps,
        source_width=info.display_size[0], source_height=info.display_size[1],
        sample_aspect_ratio=f"{info.sar.numerator}:{info.sar.denominator}", rotation=info.rotation,
        duration=info.duration, container_frame_count=info.listed_frames or None, probe_frame_count=expected,
        fps=fps, frame_rate_mode=mode, has_timestamps=True, decode_errors=decoded.error_count,
        decode_error=decoded.first_error, frame_count=decoded.frames, height=height, width=width,
        frames_sha256=decoded.frames_sha256, **motion,
    ))


def _write_whole(group, path: str, params: DecodeParams, size: tuple[int, int], stream_index: int, expected: int,
                 on_frames: Callable[[int], None] | None) -> Decoded:
    """One ffmpeg decode from the start, written shard by shard as it arrives."""
    width, height = size
    decode = FfmpegDecode(path, width, height, params.shard_frames, stream_index, fps=params.fps)
    writer = ShardWriter(group, FRAMES, (height, width, 3), "uint8", params.shard_frames, expected,
                         codec=frame_codec(params.frame_codec), threads=ENCODE_THREADS)
    for chunk in decode:
        writer.append(chunk)
        if on_frames:
            on_frames(len(chunk))
    count = writer.close()
    return Decoded(count, np.asarray(decode.timestamps, dtype=np.float64), decode.error_count, decode.first_error(),
                   writer.sha256.hexdigest())


def _write_ranges(group, store: str, video_id: str, path: str, params: DecodeParams, size: tuple[int, int],
                  stream_index: int, spans: list[TimeRange]) -> Decoded:
    """The frames array at its final length, then each time range into its own shards on the
    cluster; the frames hash from reading them back (a sha256 cannot be joined from parts)."""
    width, height = size
    create_sharded(group, FRAMES, spans[-1].stop, (height, width, 3), "uint8", params.shard_frames,
                   frame_codec(params.frame_codec))
    job = functools.partial(decode_range, path, store, video_id, params, size, stream_index)
    results = sorted(run_ranges(job, spans), key=lambda result: result.first)
    errors = [result.first_error for result in results if result.first_error]
    return Decoded(sum(r.frames for r in results), np.concatenate([r.timestamps for r in results]).astype(np.float64),
                   sum(r.error_count for r in results), errors[0] if errors else None,
                   frames_sha256(group[FRAMES]))


def check_decode(decoded: Decoded, expected: int, params: DecodeParams) -> None:
    """Fail a decode that logged errors (unless kept on purpose) or showed fewer frames than the
    stream holds; a resampled decode has no such count to meet."""
    if decoded.error_count and params.on_decode_error == "fail":
        first = decoded.first_error
        kind = "truncated" if any(word in first.lower() for word in TRUNCATION_WORDS) else "damaged stream"
        raise VideoError(
            f"{kind}: ffmpeg logged {decoded.error_count} error(s) reading it, first: {first} (it conceals "
            "damaged data and goes on; --on-decode-error keep stores such a video anyway)")
    # Kept on purpose, a damaged stream may also have lost frames: the record shows both counts.
    if params.fps is None and params.on_decode_error == "fail" and decoded.frames < expected:
        raise VideoError(f"decoded {decoded.frames} of the {expected} frames the stream holds")


def frame_rate(timestamps_t: np.ndarray, resampled_to: float | None) -> tuple[str, float | None]:
    """(frame_rate_mode, fps) of decoded timestamps: resampled to a given rate, or constant or
    variable as decoded, with the mean rate over the stored span."""
    if resampled_to:
        return "resampled", resampled_to
    if len(timestamps_t) < 2 or timestamps_t[-1] <= timestamps_t[0]:
        return "constant", None
    gaps = np.diff(timestamps_t)
    mean_rate = (len(timestamps_t) - 1) / float(timestamps_t[-1] - timestamps_t[0])
    spread = (gaps.max() - gaps.min()) / max(float(np.median(gaps)), 1e-9)
    # Rounded to a millisecond of a frame per second: the time base's rounding is not information.
    return ("variable" if spread > VARIABLE_RATE_SPREAD else "constant"), round(mean_rate, 3)
