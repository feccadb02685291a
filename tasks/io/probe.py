"""What a container holds, read with PyAV: its video streams, which one is decoded, its packets.

Containers say things about their video that the decoded stream contradicts: an average frame rate
for a variable-rate phone clip, a duration that includes a longer audio track, a frame count that
includes samples an edit list cuts away, a first "video" stream that is really an album cover.
vmac takes from the container only what it cannot get elsewhere (the streams, the stream to decode,
its sample aspect ratio, rotation, colour and field order) and counts frames from the packets the
demuxer actually delivers (``count_packets``); the decode itself then has the last word, frame by
frame (``tasks.io.ffmpeg``; docs/ingest.md, "The decoder contract").

Only regular files are opened, only through the ``file`` protocol, and only with demuxers that read
the one file named: a playlist or a concat list would decode bytes vmac never hashed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction

import av
import av.logging

from tasks.io.containers import (
    VideoError,
    check_format,
    check_still,
    list_kind,
    mp4_without_index,
    one_line,
    open_container,
    refuse_lists,
)

# A frame larger than this (pixels) is refused before anything is allocated for it (16K × 16K):
# a damaged or crafted header may claim any size.
MAX_FRAME_PIXELS = 1 << 28

# ffmpeg's names of the AVColorRange / AVColorPrimaries / AVColorTransferCharacteristic /
# AVColorSpace / AVFieldOrder values PyAV reports as integers (libavutil/pixdesc.c, avcodec.h).
COLOR_RANGES = {1: "tv", 2: "pc"}
COLOR_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
                   10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
COLOR_TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear", 9: "log100",
                   10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10",
                   15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
COLOR_SPACES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
                9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc", 13: "chroma-derived-c",
                14: "ictcp"}
FIELD_ORDERS = {0: "unknown", 1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
# Transfers of high-dynamic-range video: PQ (HDR10, Dolby Vision) and HLG (broadcast, phones).
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})


@dataclass(frozen=True)
class StreamInfo:
    """One video stream as the container describes it."""

    index: int
    codec: str
    width: int
    height: int
    sar: Fraction
    pix_fmt: str | None
    fps: float
    default: bool
    attached_pic: bool


def choose_stream(streams: list[StreamInfo]) -> tuple[StreamInfo, str]:
    """The stream ffmpeg itself decodes when told nothing, and why (fftools ``map_auto_video``):
    the largest picture, with 5,000,000 pixels' worth of preference for the stream the container
    marks default; an attached picture (cover art) only when nothing else is there. Ties go to the
    lowest index. Raises VideoError when there is no video stream, or only cover art."""
    if not streams:
        raise VideoError("container has no video stream")

    def score(stream: StreamInfo) -> int:
        return 1 if stream.attached_pic else stream.width * stream.height + 5_000_000 * stream.default

    best = max(streams, key=lambda s: (score(s), -s.index))
    if best.attached_pic:
        raise VideoError("the only video stream is an attached picture (cover art), not a video")
    if len(streams) == 1:
        return best, "the only video stream"
    others = [s for s in streams if s is not best and not s.attached_pic]
    if not others:
        return best, "the only video stream that is not an attached picture (cover art)"
    why = "marked default, " if best.default and not all(s.default for s in others) else ""
    return best, (f"ffmpeg's choice among {len(others) + 1} video streams: {why}largest picture first "
                  f"({best.width}×{best.height}); the others are listed in video_streams")


@dataclass(frozen=True)
class Probe:
    """What the container says about the video stream vmac decodes.

    ``stream_index``: the stream chosen by ``choose_stream``; ``streams``: every video stream.
    ``width``/``height``/``sar``/``pix_fmt``: the first decoded frame's (the geometry every stored
    frame is held to). ``rotation``: the display-matrix rotation in degrees (0, 90, 180, 270) a
    player applies. ``fps``: the container's average rate, for the record only. ``duration``:
    seconds of the video stream (of the container when the stream has none). ``listed_frames``:
    the frame count in the container's index (MP4 sample tables), 0 when it keeps none.
    ``container_format``: the demuxer's name; every later open of the file uses it and no other.
    Colour and ``field_order`` use ffmpeg's names (None when the stream does not say).
    """

    codec: str
    stream_index: int
    width: int
    height: int
    sar: Fraction
    fps: float
    duration: float
    listed_frames: int
    rotation: int
    start_time: float = 0.0  # seconds: the container's start, which ffmpeg's -ss counts from
    container_format: str = ""
    streams: tuple[StreamInfo, ...] = ()
    stream_choice: str = ""
    pix_fmt: str | None = None
    color_range: str | None = None
    color_primaries: str | None = None
    color_transfer: str | None = None
    color_space: str | None = None
    field_order: str | None = None
    interlaced: bool = False  # the first frame is coded interlaced, or the stream's field order says so
    mirrored: bool = False  # the display matrix flips the picture (besides rotating it)

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as a player shows it: the width stretched by the SAR, then rotated."""
        width = max(1, int(round(self.width * self.sar))) if self.sar != 1 else self.width
        if self.rotation % 180 == 90:
            return self.height, width
        return width, self.height

    @property
    def hdr(self) -> bool:
        return self.color_transfer in HDR_TRANSFERS

    @property
    def demuxer(self) -> str:
        """The demuxer's name as ffmpeg's ``-f`` takes it (the first of a list such as 'mov,mp4,...')."""
        return self.container_format.split(",")[0]


@dataclass(frozen=True)
class PacketCount:
    """The video stream's packets as the demuxer delivers them (no decoding).

    ``delivered``: packets with data; ``discarded``: of those, the ones an edit list cuts away
    (decoded only as references, never shown). ``frames``: delivered minus discarded, the frames
    a decode shows. ``leading``: shown packets before the first keyframe of a file that does not
    start with one (cut mid-GOP): they reference pictures the file does not hold. ``first_key_time``:
    that keyframe's presentation time (seconds, container clock). ``jumps_back``: the presentation
    times go back by more than any frame reordering does (two recordings joined, a clock reset):
    they are not one timeline, and time ranges cannot be cut from them.
    """

    delivered: int
    discarded: int
    # Presentation time (seconds, the container's clock) of every shown frame, in display order.
    shown_times: tuple[float, ...] = ()
    leading: int = 0
    first_key_time: float | None = None
    jumps_back: bool = False
    key_times: tuple[float, ...] = ()  # presentation times of the keyframes, sorted (seconds)
    end_time: float | None = None  # where the last shown packet ends: its time plus its duration (seconds)
    # Errors the demuxer itself logged while reading (a file that ends early, a broken structure), first
    # few, and how many: read in-process, so none is lost to ffmpeg's interleaved log lines.
    demux_errors: tuple[str, ...] = ()
    demux_error_count: int = 0

    @property
    def frames(self) -> int:
        return self.delivered - self.discarded


@dataclass(frozen=True)
class Sniffed:
    """What a file's content is, from a bounded read: a ``video`` to ingest, or the ``reason`` it
    is not. ``counts``: media a person may have meant as video (audio only, cover art alone, a
    playlist), which a folder walk counts as a failure; a still image, text or unknown bytes is
    listed, not counted."""

    video: bool
    reason: str | None = None
    counts: bool = False


# Bytes a content sniff may read: enough for any container's header and first packets.
SNIFF_BYTES = 1 << 20


def sniff(handle, path: str | None = None) -> Sniffed:
    """Whether the open binary ``handle`` holds a video vmac takes (it is closed here). Reads at most
    about ``SNIFF_BYTES`` besides the container's own header structures. ``path``: the local file
    it reads, so an animation PyAV takes for a still image is told apart (``check_still``)."""
    head = b""
    try:
        head = handle.read(4096)
        kind = list_kind(head)
        if kind:
            return Sniffed(False, f"{kind}: it reads other files (ingest the media files it names)", True)
        handle.seek(0)
        with open_container("", probesize=SNIFF_BYTES, handle=handle) as container:
            try:
                check_still(path, container.format.name) if path else check_format(container.format.name)
            except VideoError as exc:
                return Sniffed(False, str(exc), "still image" not in str(exc) and "text rendered" not in str(exc))
            streams = [_stream_info(s) for s in container.streams.video]
            if not streams:
                kinds = sorted({s.type for s in container.streams}) or ["no streams"]
                return Sniffed(False, f"no video stream ({container.format.name}: {', '.join(kinds)})", True)
            if all(s.attached_pic for s in streams):
                return Sniffed(False, "the only video stream is an attached picture (cover art)", True)
            return Sniffed(True)
    except (av.error.FFmpegError, OSError, ValueError):
        return Sniffed(False, "text, not a video" if _is_text(head) else
                       "not a video: no container format recognises its bytes")
    finally:
        handle.close()


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = head[: exc.start].decode("utf-8") if exc.start > len(head) - 4 else ""
    return bool(text) and all(c.isprintable() or c in "\t\r\n\f" for c in text)


def _stream_info(stream) -> StreamInfo:
    ctx = stream.codec_context
    sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    disposition = stream.disposition
    return StreamInfo(
        index=stream.index, codec=ctx.name or "unknown", width=int(ctx.width or 0), height=int(ctx.height or 0),
        sar=Fraction(sar) if sar and sar > 0 else Fraction(1), pix_fmt=ctx.pix_fmt, fps=float(rate) if rate else 0.0,
        default=bool(disposition & av.stream.Disposition.default),
        attached_pic=bool(disposition & av.stream.Disposition.attached_pic))


def probe(path: str) -> Probe:
    """Probe a local video file with PyAV; raises VideoError with a one-line reason."""
    try:
        refuse_lists(path)
        with open_container(path) as container:
            check_still(path, container.format.name)
            streams = [_stream_info(s) for s in container.streams.video]
            chosen, why = choose_stream(streams)
            stream = container.streams[chosen.index]
            if chosen.width <= 0 or chosen.height <= 0:
                raise VideoError("video stream has no frame size: its parameter sets are missing (a stream cut before "
                                 "its first keyframe?)")
            if chosen.width * chosen.height > MAX_FRAME_PIXELS:
                raise VideoError(f"the header claims {chosen.width}×{chosen.height} frames, more than vmac decodes "
                                 f"({MAX_FRAME_PIXELS} pixels)")
            # The display matrix and the frame's own geometry reach PyAV through decoded frames;
            # decoding the first one also rejects files whose header parses but whose stream does not.
            first = next(container.decode(stream), None)
            if first is None:
                raise VideoError("video stream has no decodable frame")
            return _probe_of(container, stream, chosen, streams, why, first)
    except VideoError:
        raise
    except av.error.FFmpegError as exc:
        if mp4_without_index(path):
            raise VideoError("truncated: an MP4/MOV whose index (moov atom) is missing, as a recording cut off before "
                             "it was finalised leaves it") from exc
        raise VideoError(f"not a readable video: {exc.strerror or one_line(exc)}") from exc
    except (OSError, ValueError) as exc:
        raise VideoError(f"cannot open as video: {one_line(exc)}") from exc


def _probe_of(container, stream, chosen: StreamInfo, streams: list[StreamInfo], why: str, first) -> Probe:
    ctx = stream.codec_context
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = container.duration / av.time_base if container.duration is not None else 0.0
    frame_sar = getattr(first, "sample_aspect_ratio", None)
    sar = Fraction(frame_sar) if frame_sar and frame_sar > 0 else chosen.sar
    field_order = FIELD_ORDERS.get(int(ctx.field_order or 0), "unknown")
    return Probe(
        codec=chosen.codec, stream_index=chosen.index, width=int(first.width or chosen.width),
        height=int(first.height or chosen.height), sar=sar, fps=chosen.fps, duration=duration,
        listed_frames=int(stream.frames or 0), rotation=int(round(getattr(first, "rotation", 0) or 0)) % 360,
        start_time=container.start_time / av.time_base if container.start_time is not None else 0.0,
        container_format=container.format.name, streams=tuple(streams), stream_choice=why,
        pix_fmt=first.format.name if first.format else chosen.pix_fmt,
        color_range=COLOR_RANGES.get(int(first.color_range or ctx.color_range or 0)),
        color_primaries=COLOR_PRIMARIES.get(int(first.color_primaries or ctx.color_primaries or 2)),
        color_transfer=COLOR_TRANSFERS.get(int(first.color_trc or ctx.color_trc or 2)),
        color_space=COLOR_SPACES.get(int(first.colorspace or ctx.colorspace or 2)),
        field_order=field_order, interlaced=bool(first.interlaced_frame) or field_order in ("tt", "bb", "tb", "bt"),
        mirrored=_mirrored(first),
    )


def _mirrored(frame) -> bool:
    """True when the frame's display matrix (9 little-endian int32, the 2×2 part in 16.16 fixed
    point) has a negative determinant: players show it flipped. ffmpeg's autorotate applies the
    flip as it applies the rotation; ``rotation`` alone does not say it."""
    for data in getattr(frame, "side_data", ()):
        if getattr(data, "type", None) == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            a, b, _, c, d = struct.unpack("<5i", bytes(data)[:20])
            return a * d - b * c < 0
    return False


# Presentation times that go back by more than this are a new timeline, not frame reordering (B-frames
# reorder a few frames: a fraction of a second).
JUMP_BACK_SECONDS = 1.0


def count_packets(path: str, stream_index: int, container_format: str | None = None) -> PacketCount:
    """Demux (without decoding) every packet of stream ``stream_index``; raises VideoError when the
    container breaks before its end. ``shown_times`` is empty when a shown packet has no pts or
    the times are not one timeline."""
    delivered = discarded = 0
    shown: list[int] = []
    keys: list[int] = []  # presentation times of keyframes, in decode order (edit-list cuts included)
    jumps_back, latest, end = False, None, None
    previous_level, previous_skip = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # the same error of another file, earlier in this process, counts again
    try:
        with av.logging.Capture() as logged, open_container(path, container_format) as container:
            demuxer = container.format.name
            stream = container.streams[stream_index]
            base = stream.time_base
            back = int(JUMP_BACK_SECONDS / base) if base else 0
            for packet in container.demux(stream):
                if not packet.size:
                    continue
                delivered += 1
                discarded += bool(packet.is_discard)
                if packet.is_keyframe and packet.pts is not None:
                    keys.append(packet.pts)
                if not packet.is_discard and packet.pts is not None:
                    shown.append(packet.pts)
                    jumps_back |= latest is not None and packet.pts < latest - back
                    latest = packet.pts if latest is None else max(latest, packet.pts)
                    end = max(end or packet.pts, packet.pts + (packet.duration or 0))
    except av.error.FFmpegError as exc:
        raise VideoError(f"container breaks after {delivered} video packets: {exc.strerror or one_line(exc)}") from exc
    finally:
        av.logging.set_level(previous_level)
        av.logging.set_skip_repeated(previous_skip)
    # The demuxer's own messages (a codec parser's, about pictures, are the decode's to judge), which
    # it logs under its full name ("matroska,webm") however it was asked for.
    names = set(demuxer.split(","))
    errors = [message.strip() for level, name, message in logged
              if level <= av.logging.ERROR and names & set(name.split(","))]
    leading, first_key = _leading(shown, keys)
    times = () if jumps_back or len(shown) != delivered - discarded else tuple(float(p * base) for p in sorted(shown))
    end_time = float(end * base) if end is not None and not jumps_back else None
    return PacketCount(delivered, discarded, times, leading, float(first_key * base) if first_key is not None else None,
                       jumps_back, tuple(float(p * base) for p in sorted(keys)) if times else (), end_time,
                       tuple(errors[:5]), len(errors))


def _leading(shown: list[int], keys: list[int]) -> tuple[int, int | None]:
    """(shown packets before the first keyframe's time, that time), or (0, None) when there are
    none. They reference pictures the file does not hold: the frames of a GOP a cut went into
    (the file starts before its first keyframe), or the leading pictures of an open GOP whose
    keyframe the file starts with (HEVC RASL, H.264 pictures before a recovery point), which
    decoders drop. When no packet is marked a keyframe (a demuxer that does not say) the decode
    decides."""
    if not keys or not shown:
        return 0, None
    first_key = keys[0]
    leading = sum(pts < first_key for pts in shown)
    return (leading, first_key) if leading else (0, None)


