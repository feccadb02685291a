"""ffmpeg and PyAV: locate the binary, probe containers, stream-decode to RGB uint8, encode.

ffmpeg is driven through ffmpeg-python with argument lists, never a shell. The binary is the
system ``ffmpeg`` when present, else the static one inside the ``imageio-ffmpeg`` wheel, which
ships no ffprobe: probing therefore uses PyAV.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import av
import ffmpeg
import numpy as np


class VideoError(RuntimeError):
    """A source that cannot be decoded; the message is the one-line reason stored in the catalog."""


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: the system one if on PATH, else imageio-ffmpeg's."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class Probe:
    """What the container says about its first video stream.

    ``width``/``height`` are the coded size; ``rotation`` is the display-matrix rotation in
    degrees (0, 90, 180, 270) that a player applies, so the displayed size swaps for 90/270.
    ``frame_count`` is the container's count when stored, else estimated from duration × fps.
    """

    codec: str
    width: int
    height: int
    fps: float
    duration: float
    frame_count: int
    rotation: int
    frame_count_exact: bool

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) after rotation."""
        if self.rotation % 180 == 90:
            return self.height, self.width
        return self.width, self.height


def probe(path: str) -> Probe:
    """Probe a local video file with PyAV; raises VideoError with a one-line reason."""
    try:
        with av.open(path, metadata_errors="ignore") as container:
            streams = container.streams.video
            if not streams:
                raise VideoError("container has no video stream")
            stream = streams[0]
            ctx = stream.codec_context
            width, height = int(ctx.width or 0), int(ctx.height or 0)
            if width <= 0 or height <= 0:
                raise VideoError("video stream has no frame size")
            rate = stream.average_rate or stream.base_rate or stream.guessed_rate
            fps = float(rate) if rate else 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / av.time_base
            else:
                duration = 0.0
            frames = int(stream.frames or 0)
            exact = frames > 0
            if not exact:
                frames = int(round(duration * fps)) if fps > 0 else 0
            # The display matrix reaches PyAV through decoded frames; decoding the first one also
            # rejects files whose header parses but whose stream does not.
            first = next(container.decode(stream), None)
            if first is None:
                raise VideoError("video stream has no decodable frame")
            rotation = int(round(getattr(first, "rotation", 0) or 0)) % 360
            codec = ctx.name or "unknown"
    except VideoError:
        raise
    except av.error.FFmpegError as exc:
        raise VideoError(f"not a readable video: {exc.strerror or _one_line(exc)}") from exc
    except (OSError, ValueError) as exc:
        raise VideoError(f"cannot open as video: {_one_line(exc)}") from exc
    if fps <= 0:
        raise VideoError("video stream has no frame rate")
    return Probe(codec, width, height, fps, duration, frames, rotation, exact)


def output_size(display_w: int, display_h: int, short_side: int) -> tuple[int, int]:
    """(width, height) after scaling the short side to ``short_side`` (0 keeps native).

    Both sides are rounded to even numbers so that every encoder and chroma subsampling agrees.
    """
    if short_side <= 0:
        return display_w - display_w % 2, display_h - display_h % 2
    scale = short_side / min(display_w, display_h)
    width = max(2, int(round(display_w * scale / 2)) * 2)
    height = max(2, int(round(display_h * scale / 2)) * 2)
    return width, height


def decode_chunks(
    path: str,
    width: int,
    height: int,
    chunk_frames: int,
    fps: float | None = None,
    threads: int = 1,
) -> Iterator[np.ndarray]:
    """Stream-decode ``path`` to RGB uint8 chunks of shape (t ≤ chunk_frames, H, W, 3).

    ffmpeg applies the container's rotation itself (autorotate is on by default), then scales
    to (width, height) with bicubic filtering. Memory is one chunk at a time whatever the length.
    Raises VideoError when ffmpeg fails or yields no frame.
    """
    stream = ffmpeg.input(path, threads=threads)
    if fps:
        stream = stream.filter("fps", fps=fps)
    stream = stream.filter("scale", width, height, flags="bicubic")
    args = (
        stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", threads=threads)
        .global_args("-nostdin", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe())
    )
    frame_bytes = width * height * 3
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    produced = 0
    reached_end = False
    try:
        while True:
            buf = _read_exact(proc.stdout, frame_bytes * chunk_frames)
            n = len(buf) // frame_bytes
            if n:
                produced += n
                yield np.frombuffer(buf[: n * frame_bytes], np.uint8).reshape(n, height, width, 3)
            if n < chunk_frames:
                reached_end = True
                break
    finally:
        if proc.poll() is None and not reached_end:
            proc.kill()  # the consumer stopped early; nothing more is wanted
        proc.stdout.close()
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        code = proc.wait()
    # A stream that breaks part-way (truncated or corrupt) makes ffmpeg exit non-zero: the frames
    # before the break are not a faithful copy of the source, so the whole video fails.
    if code != 0:
        where = f"after {produced} frames" if produced else "before the first frame"
        raise VideoError(f"ffmpeg failed {where}: {_one_line(err) or f'exit code {code}'}")
    if produced == 0:
        raise VideoError("ffmpeg decoded no frames")


def _read_exact(pipe, size: int) -> bytes:
    """Read up to ``size`` bytes, returning fewer only at end of stream."""
    parts, got = [], 0
    while got < size:
        part = pipe.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def encode_video(
    frames_thwc: np.ndarray, path: str, fps: float, vcodec: str = "libx264", crf: int | None = 18,
    pix_fmt: str = "yuv420p",
) -> None:
    """Encode RGB uint8 frames (T, H, W, 3) to ``path``; the container follows the extension.

    Encoders run single-threaded, so the same frames give the same bytes.
    """
    t, h, w, _ = frames_thwc.shape
    options: dict = {"vcodec": vcodec, "pix_fmt": pix_fmt, "threads": 1}
    if crf is not None:
        options["crf"] = crf
    if vcodec == "libx264":
        options.update({"preset": "medium", "x264-params": "threads=1"})
    if path.lower().endswith((".mp4", ".mov")):
        options["movflags"] = "+faststart"
    args = (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", framerate=fps)
        .output(path, **options)
        .overwrite_output()
        .global_args("-nostdin", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe())
    )
    done = subprocess.run(args, input=np.ascontiguousarray(frames_thwc).tobytes(), capture_output=True)
    if done.returncode != 0:
        raise VideoError(f"ffmpeg encode failed: {_one_line(done.stderr.decode('utf-8', 'replace'))}")


def encode_h264(frames_thwc: np.ndarray, path: str, fps: float, crf: int = 18) -> None:
    """Encode RGB uint8 frames to an H.264 MP4 (single-threaded, so deterministic)."""
    encode_video(frames_thwc, path, fps, "libx264", crf)


def set_rotation(src: str, dst: str, degrees: int) -> None:
    """Remux ``src`` to ``dst`` with a display-matrix rotation (as phones record portrait video)."""
    args = (
        ffmpeg.input(src, display_rotation=degrees)
        .output(dst, c="copy")
        .overwrite_output()
        .global_args("-nostdin", "-loglevel", "error")
        .compile(cmd=ffmpeg_exe())
    )
    done = subprocess.run(args, capture_output=True)
    if done.returncode != 0:
        raise VideoError(f"ffmpeg remux failed: {_one_line(done.stderr.decode('utf-8', 'replace'))}")


def _one_line(text) -> str:
    """The last non-empty line of an error text, trimmed: catalog reasons are one line."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""

