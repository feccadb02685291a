"""One video file into a video group, under the decoder contract (docs/ingest.md).

What is stored is what the decoded stream shows, or the video fails with the reason:
- the stream ffmpeg itself would decode (``tasks.io.probe.choose_stream``), every video stream
  listed in the record with why this one;
- every frame once, in presentation order, with a strictly increasing clock: a variable frame rate
  stays variable unless ``fps`` asks for resampling; where the container's clock jumps back (two
  recordings joined) the stored clock goes on one frame later and the jump is recorded;
- one picture shape: every frame at the first frame's display geometry (coded size stretched by
  the sample aspect ratio, then rotated), or scaled from it; a frame whose picture changes shape
  fails the video naming it (``tasks.ingest.timeline.check_geometry``);
- interlaced pictures deinterlaced frame for frame, HDR tone-mapped to BT.709, both named in the
  record; frames before a cut file's first keyframe (which cannot be decoded) counted, not stored;
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
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import numpy as np

from storage_schemas.codecs import frame_codec
from storage_schemas.layout import DIMENSIONS, FRAMES, TIMESTAMPS
from storage_schemas.records import DecodeParams, Status, StreamRecord, VideoRecord
from tasks.ingest.motion import write_motion
from tasks.ingest.plan import ExpectedFrames
from tasks.ingest.ranges import RangeMismatchError, TimeRange, decode_range, keep_span, run_ranges, time_ranges
from tasks.ingest.timeline import check_geometry, continuous_clock, frame_rate
from tasks.io.ffmpeg import DEINTERLACE, TONEMAP, Filter, Geometry, describe_filters, has_filters, output_size
from tasks.io.probe import PacketCount, Probe, VideoError, count_packets, probe
from tasks.io.shards import ENCODE_THREADS, MAX_SHARD_BYTES, ShardWriter, create_sharded, frames_per
from tasks.io.store import frames_sha256
from tasks.io.uris import is_url, open_uri

LOG = logging.getLogger(__name__)

# How ffmpeg's demuxers say a file stops before its end.
TRUNCATION_WORDS = ("ended prematurely", "partial file", "end of file", "truncat")
@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path for ffmpeg: the file itself, or a streamed temporary copy of a remote URL."""
    if not is_url(uri):
        yield uri
        return
    suffix = os.path.splitext(urlsplit(uri).path)[1]  # not the query (a signed URL's)
    with tempfile.TemporaryDirectory(prefix="vmac-src-") as tmp:
        path = os.path.join(tmp, f"source{suffix}")
        with open_uri(uri) as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield path


def checked_packets(path: str, info: Probe) -> PacketCount:
    """The stream's packets; ``frames`` is what a decode must show: the packets minus those an
    edit list cuts. Raises VideoError when the container's index lists more frames than its data
    holds and the data ends before the stream's duration: a file cut short. An index that lists
    empty entries (an AVI's dropped frames, the placeholders of packed B-frames) over data that
    reaches the end is no truncation."""
    packets = count_packets(path, info.stream_index, info.demuxer)
    if info.listed_frames and packets.delivered < info.listed_frames:
        frame = info.duration / info.listed_frames if info.duration else 0.0
        reaches_end = (packets.end_time is not None and info.duration
                       and packets.end_time >= info.start_time + info.duration - 1.5 * frame)
        if not reaches_end:
            raise VideoError(f"truncated: the container lists {info.listed_frames} frames, "
                             f"its data holds {packets.delivered}")
    return packets


@dataclass(frozen=True)
class DecodePlan:
    """How one video is decoded: the stored size, the filters before the scale, where keeping
    starts, how many frames it must show, and what the record says of the filters."""

    width: int
    height: int
    shard_frames: int
    filters: tuple[Filter, ...] = ()
    keep_from: float | None = None
    expected: int = 0
    record: dict = field(default_factory=dict)


def plan_decode(info: Probe, packets: PacketCount, params: DecodeParams, deinterlace: bool = False) -> DecodePlan:
    """The decode of a probed video; raises VideoError for HDR this ffmpeg cannot tone-map."""
    width, height = output_size(*info.display_size, params.short_side)
    filters: tuple[Filter, ...] = ()
    record: dict = {"deinterlace": None, "tone_mapping": None}
    if deinterlace or info.interlaced:
        filters += DEINTERLACE
        record["deinterlace"] = describe_filters(DEINTERLACE)
    if info.hdr:
        if not has_filters("zscale", "tonemap"):
            raise VideoError(f"HDR video ({info.color_transfer} transfer, {info.color_primaries} primaries): this "
                             "ffmpeg has no zscale filter (libzimg) to tone-map it to the stored 8-bit BT.709")
        filters += TONEMAP
        record["tone_mapping"] = describe_filters(TONEMAP)
    # Frames before a cut file's first keyframe reference pictures it does not hold: not kept.
    keep_from = packets.first_key_time - 1e-6 if packets.leading else None
    return DecodePlan(width, height, frames_per(MAX_SHARD_BYTES, width * height * 3, params.shard_frames), filters,
                      keep_from, packets.frames - packets.leading, record)


@dataclass(frozen=True)
class Decoded:
    """What a decode stored: frames, their timestamps (container clock), the pictures the decoder
    delivered, the errors ffmpeg logged, and the hash of the frames as they read back."""

    frames: int
    timestamps_t: np.ndarray
    error_count: int
    first_error: str | None
    frames_sha256: str
    geometry: list[Geometry]
    interlaced_frames: int = 0


def write_video(group, base: VideoRecord, params: DecodeParams, uri: str,
                on_frames: Callable[[int], None] | None, store: str | None = None) -> VideoRecord:
    """Decode ``uri`` into ``group`` (frames, timestamps, and the motion map when
    ``params.motion``); the completed record, or VideoError.

    A local video long enough for two time ranges (``tasks.ingest.ranges``) of a store given by
    URL is decoded range by range, on as many Dask workers as are free. A stream that turns out
    interlaced without saying so in its header is decoded again, deinterlaced."""
    with local_copy(uri) as path:
        info = probe(path)
        packets = checked_packets(path, info)
        plan = plan_decode(info, packets, params)
        if on_frames:
            on_frames(ExpectedFrames(plan.expected))
        decoded = _decode(group, store, uri, path, info, packets, params, plan, on_frames)
        if decoded.interlaced_frames and not plan.filters[:1] == DEINTERLACE:
            plan = plan_decode(info, packets, params, deinterlace=True)
            decoded = _write_whole(group, path, info, params, plan, None)
        if packets.demux_error_count > decoded.error_count:
            # The demuxer's errors, read in-process (a file that ends early): ffmpeg's log may have lost them.
            decoded = replace(decoded, error_count=packets.demux_error_count,
                              first_error=decoded.first_error or packets.demux_errors[0])
        changes = check_geometry(decoded.geometry, plan.width, plan.height)
        check_decode(decoded, plan.expected, params)
        motion = {}
        if params.motion:
            # Codec motion vectors line up with the stored frames only when every decoded picture is stored as is.
            plain = not changes and not packets.leading and not plan.filters and params.fps is None
            motion = write_motion(group, plan.shard_frames, path if plain else None, info)
    timestamps, jumps = continuous_clock(decoded.timestamps_t)
    group.create_array(TIMESTAMPS, data=timestamps, chunks=(max(len(timestamps), 1),), overwrite=True,
                       dimension_names=DIMENSIONS[TIMESTAMPS])
    mode, fps = frame_rate(timestamps, params.fps)
    return base.model_copy(update=dict(
        status=Status.complete, codec=info.codec, container_format=info.container_format,
        stream_index=info.stream_index, video_streams=[_stream_record(s) for s in info.streams],
        stream_choice=info.stream_choice, source_fps=info.fps, source_width=info.display_size[0],
        source_height=info.display_size[1], sample_aspect_ratio=f"{info.sar.numerator}:{info.sar.denominator}",
        rotation=info.rotation, mirrored=info.mirrored, pix_fmt=info.pix_fmt, color_range=info.color_range,
        color_primaries=info.color_primaries, color_transfer=info.color_transfer, color_space=info.color_space,
        field_order=info.field_order, **plan.record, geometry_changes=changes, timestamp_discontinuities=jumps,
        leading_frames_dropped=packets.leading, duration=info.duration,
        container_frame_count=info.listed_frames or None, probe_frame_count=plan.expected, fps=fps,
        frame_rate_mode=mode, has_timestamps=True, decode_errors=decoded.error_count,
        decode_error=decoded.first_error or _shortfall(decoded, plan.expected, params), frame_count=decoded.frames, height=plan.height, width=plan.width,
        frames_sha256=decoded.frames_sha256, **motion,
    ))


def _stream_record(stream) -> StreamRecord:
    return StreamRecord(index=stream.index, codec=stream.codec, width=stream.width, height=stream.height,
                        sample_aspect_ratio=f"{stream.sar.numerator}:{stream.sar.denominator}", pix_fmt=stream.pix_fmt,
                        fps=stream.fps or None, default=stream.default, attached_pic=stream.attached_pic)


def _decode(group, store: str | None, uri: str, path: str, info: Probe, packets: PacketCount,
            params: DecodeParams, plan: DecodePlan, on_frames) -> Decoded:
    """In time ranges on the cluster where the video is long enough and its clock is one timeline;
    else (or when a range cannot show it starts where it should) in one decode."""
    spans: list[TimeRange] = []
    if (store is not None and not is_url(uri) and params.fps is None and not packets.leading
            and len(packets.shown_times) == plan.expected):
        spans = time_ranges(packets.shown_times, plan.shard_frames, info.start_time, packets.key_times)
    if len(spans) > 1:
        try:
            decoded = _write_ranges(group, store, path, info, params, plan, spans)
        except RangeMismatchError as exc:
            LOG.warning("%s: decoding it from the start instead of in time ranges: %s", uri, exc)
        else:
            if on_frames:
                on_frames(decoded.frames)
            return decoded
    return _write_whole(group, path, info, params, plan, on_frames)


def _write_whole(group, path: str, info: Probe, params: DecodeParams, plan: DecodePlan,
                 on_frames: Callable[[int], None] | None) -> Decoded:
    """One ffmpeg decode from the start, written shard by shard as it arrives."""
    writer = ShardWriter(group, FRAMES, (plan.height, plan.width, 3), "uint8", plan.shard_frames, plan.expected,
                         codec=frame_codec(params.frame_codec), threads=ENCODE_THREADS)
    span = TimeRange(0, plan.expected, None, plan.keep_from)
    result, decode = keep_span(path, info, params, plan, span, writer, on_frames, whole=True)
    count = writer.close()
    # ffmpeg's own count of decode errors covers every frame decoded: trusted when all of them are kept.
    errors = max(decode.error_count, decode.reported_decode_errors if plan.keep_from is None else 0)
    return Decoded(count, np.asarray(result.timestamps, dtype=np.float64), errors, decode.first_error(),
                   writer.sha256.hexdigest(), decode.geometry, decode.interlaced_frames)


def _write_ranges(group, store: str, path: str, info: Probe, params: DecodeParams,
                  plan: DecodePlan, spans: list[TimeRange]) -> Decoded:
    """The frames array at its final length, then each time range into its own shards on the
    cluster (each range worker opens the version folder ``group`` by its path, which no reader
    sees before the video's commit); the frames hash from reading them back (a sha256 cannot be
    joined from parts)."""
    create_sharded(group, FRAMES, spans[-1].stop, (plan.height, plan.width, 3), "uint8", plan.shard_frames,
                   frame_codec(params.frame_codec))
    job = functools.partial(decode_range, path, store, group.path, info, params, plan)
    results = sorted(run_ranges(job, spans), key=lambda result: result.first)
    mismatch = next((r.mismatch for r in results if r.mismatch), None)
    if mismatch:
        raise RangeMismatchError(mismatch)
    errors = [result.first_error for result in results if result.first_error]
    geometry = [g for result in results for g in result.geometry]
    return Decoded(sum(r.frames for r in results), np.concatenate([r.timestamps for r in results]).astype(np.float64),
                   sum(r.error_count for r in results), errors[0] if errors else None,
                   frames_sha256(group[FRAMES]), _merge_geometry(geometry), sum(r.interlaced_frames for r in results))


def _merge_geometry(geometry: list[Geometry]) -> list[Geometry]:
    """The ranges' pictures in time order, a change only where the picture differs from the one before."""
    out: list[Geometry] = []
    for found in geometry:
        if not out or (found.width, found.height, found.sar, found.pix_fmt) != (
                out[-1].width, out[-1].height, out[-1].sar, out[-1].pix_fmt):
            out.append(found)
    return out


def _shortfall(decoded: Decoded, expected: int, params: DecodeParams) -> str | None:
    """What a decode kept on purpose (``on_decode_error=keep``) lacks, for the record."""
    if params.fps is None and decoded.frames < expected:
        return f"decoded {decoded.frames} of the {expected} frames the stream holds (kept: on_decode_error=keep)"
    return None


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
        change = (f" (the picture changes size at decoded frame {decoded.geometry[1].frame}: decoders may lose a "
                  "picture held back at such a change)") if len(decoded.geometry) > 1 else ""
        raise VideoError(f"decoded {decoded.frames} of the {expected} frames the stream holds{change}")
