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
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator

import numpy as np

from storage_schemas.codecs import frame_codec
from storage_schemas.layout import FRAMES, TIMESTAMPS
from storage_schemas.records import DecodeParams, Status, VideoRecord
from tasks.io.ffmpeg import FfmpegDecode, output_size
from tasks.io.probe import Probe, VideoError, count_packets, probe
from tasks.io.shards import ENCODE_THREADS, ShardWriter
from tasks.io.uris import is_url, open_uri

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


def expected_frames(path: str, info: Probe) -> int:
    """The frames a decode must show: the stream's packets, minus those an edit list cuts.

    Raises VideoError when the container's index lists more frames than its data holds.
    """
    packets = count_packets(path, info.stream_index)
    if info.listed_frames and packets.delivered < info.listed_frames:
        raise VideoError(f"truncated: the container lists {info.listed_frames} frames, "
                         f"its data holds {packets.delivered}")
    return packets.frames


def write_video(group, base: VideoRecord, params: DecodeParams, uri: str,
                on_frames: Callable[[int], None] | None) -> VideoRecord:
    """Decode ``uri`` into ``group`` (frames, timestamps); the completed record, or VideoError."""
    with local_copy(uri) as path:
        info = probe(path)
        expected = expected_frames(path, info)
        width, height = output_size(*info.display_size, params.short_side)
        decode = FfmpegDecode(path, width, height, params.shard_frames, info.stream_index, fps=params.fps)
        writer = ShardWriter(group, FRAMES, (height, width, 3), "uint8", params.shard_frames, expected,
                             codec=frame_codec(params.frame_codec), threads=ENCODE_THREADS)
        for chunk in decode:
            writer.append(chunk)
            if on_frames:
                on_frames(len(chunk))
        count = writer.close()
    check_decode(decode, count, expected, params)
    timestamps = np.asarray(decode.timestamps, dtype=np.float64)
    group.create_array(TIMESTAMPS, data=timestamps, chunks=(max(len(timestamps), 1),), overwrite=True)
    mode, fps = frame_rate(timestamps, params.fps)
    return base.model_copy(update=dict(
        status=Status.complete, codec=info.codec, stream_index=info.stream_index, source_fps=info.fps,
        source_width=info.display_size[0], source_height=info.display_size[1],
        sample_aspect_ratio=f"{info.sar.numerator}:{info.sar.denominator}", rotation=info.rotation,
        duration=info.duration, container_frame_count=info.listed_frames or None, probe_frame_count=expected,
        fps=fps, frame_rate_mode=mode, has_timestamps=True, decode_errors=decode.error_count,
        decode_error=decode.first_error(), frame_count=count, height=height, width=width,
        frames_sha256=writer.sha256.hexdigest(),
    ))


def check_decode(decode: FfmpegDecode, count: int, expected: int, params: DecodeParams) -> None:
    """Fail a decode that logged errors (unless kept on purpose) or showed fewer frames than the
    stream holds; a resampled decode has no such count to meet."""
    if decode.error_count and params.on_decode_error == "fail":
        first = decode.first_error()
        kind = "truncated" if any(word in first.lower() for word in TRUNCATION_WORDS) else "damaged stream"
        raise VideoError(
            f"{kind}: ffmpeg logged {decode.error_count} error(s) reading it, first: {first} (it conceals "
            "damaged data and goes on; --on-decode-error keep stores such a video anyway)")
    # Kept on purpose, a damaged stream may also have lost frames: the record shows both counts.
    if params.fps is None and params.on_decode_error == "fail" and count < expected:
        raise VideoError(f"decoded {count} of the {expected} frames the stream holds")


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
