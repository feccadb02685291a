"""What a container holds, read with PyAV: which stream is the video, its geometry, its packets.

Containers say things about their video that the decoded stream contradicts: an average frame rate
for a variable-rate phone clip, a duration that includes a longer audio track, a frame count that
includes samples an edit list cuts away, a first "video" stream that is really an album cover.
vmac takes from the container only what it cannot get elsewhere (the stream to decode, its sample
aspect ratio and rotation) and counts frames from the packets the demuxer actually delivers
(``count_packets``); the decode itself then has the last word (docs/ingest.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av


class VideoError(RuntimeError):
    """A source that cannot be decoded; the message is the one-line reason stored in the catalog."""


@dataclass(frozen=True)
class Probe:
    """What the container says about the video stream vmac decodes.

    ``stream_index``: the container's index of the first video stream that is not an attached
    picture (cover art). ``width``/``height``: the coded size in pixels. ``sar``: the sample
    (pixel) aspect ratio, 1 when the file says nothing. ``rotation``: the display-matrix rotation
    in degrees (0, 90, 180, 270) a player applies. ``fps``: the container's average rate, for the
    record only (a variable-rate stream has no single rate). ``duration``: seconds of the video
    stream (of the container when the stream has none). ``listed_frames``: the frame count in the
    container's index (MP4 sample tables), 0 when the container keeps none (MKV, WebM, AVI).
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

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as a player shows it: the width stretched by the SAR, then rotated."""
        width = max(1, int(round(self.width * self.sar))) if self.sar != 1 else self.width
        if self.rotation % 180 == 90:
            return self.height, width
        return width, self.height


@dataclass(frozen=True)
class PacketCount:
    """The video stream's packets as the demuxer delivers them (no decoding).

    ``delivered``: packets with data; ``discarded``: of those, the ones an edit list cuts away
    (decoded only as references, never shown). ``frames``: delivered minus discarded, the frames
    a decode shows.
    """

    delivered: int
    discarded: int
    # Presentation time (seconds, the container's clock) of every shown frame, in display order.
    shown_times: tuple[float, ...] = ()

    @property
    def frames(self) -> int:
        return self.delivered - self.discarded


def _video_stream(container):
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    if container.streams.video:
        raise VideoError("the only video stream is an attached picture (cover art), not a video")
    raise VideoError("container has no video stream")


def probe(path: str) -> Probe:
    """Probe a local video file with PyAV; raises VideoError with a one-line reason."""
    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = _video_stream(container)
            ctx = stream.codec_context
            width, height = int(ctx.width or 0), int(ctx.height or 0)
            if width <= 0 or height <= 0:
                raise VideoError("video stream has no frame size")
            rate = stream.average_rate or stream.base_rate or stream.guessed_rate
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = container.duration / av.time_base if container.duration is not None else 0.0
            sar = stream.sample_aspect_ratio or ctx.sample_aspect_ratio
            # The display matrix reaches PyAV through decoded frames; decoding the first one also
            # rejects files whose header parses but whose stream does not.
            first = next(container.decode(stream), None)
            if first is None:
                raise VideoError("video stream has no decodable frame")
            return Probe(
                codec=ctx.name or "unknown", stream_index=stream.index, width=width, height=height,
                sar=Fraction(sar) if sar and sar > 0 else Fraction(1), fps=float(rate) if rate else 0.0,
                duration=duration, listed_frames=int(stream.frames or 0),
                rotation=int(round(getattr(first, "rotation", 0) or 0)) % 360,
                start_time=container.start_time / av.time_base if container.start_time is not None else 0.0,
            )
    except VideoError:
        raise
    except av.error.FFmpegError as exc:
        raise VideoError(f"not a readable video: {exc.strerror or one_line(exc)}") from exc
    except (OSError, ValueError) as exc:
        raise VideoError(f"cannot open as video: {one_line(exc)}") from exc


def count_packets(path: str, stream_index: int) -> PacketCount:
    """Demux (without decoding) every packet of stream ``stream_index``; raises VideoError when the
    container breaks before its end. ``shown_times`` is empty when a shown packet has no pts."""
    delivered = discarded = 0
    shown: list[int] = []
    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = container.streams[stream_index]
            for packet in container.demux(stream):
                if packet.size:
                    delivered += 1
                    discarded += bool(packet.is_discard)
                    if not packet.is_discard and packet.pts is not None:
                        shown.append(packet.pts)
            base = stream.time_base
    except av.error.FFmpegError as exc:
        raise VideoError(f"container breaks after {delivered} video packets: {exc.strerror or one_line(exc)}") from exc
    times = tuple(float(pts * base) for pts in sorted(shown)) if len(shown) == delivered - discarded else ()
    return PacketCount(delivered, discarded, times)


def one_line(text) -> str:
    """The last non-empty line of an error text, trimmed: catalog reasons are one line."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
