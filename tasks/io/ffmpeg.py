"""ffmpeg: locate the binary, stream-decode one video stream to RGB uint8 with timestamps, encode.

ffmpeg is driven through ffmpeg-python with argument lists, never a shell. The binary is the
system ``ffmpeg`` when present, else the static one inside the ``imageio-ffmpeg`` wheel
(``tasks.io.ffmpeg_binary``), which ships no ffprobe: probing uses PyAV (``tasks.io.probe``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import ffmpeg
import numpy as np

from tasks.io.ffmpeg_binary import ffmpeg_exe
from tasks.io.probe import VideoError, one_line


def output_size(display_w: int, display_h: int, short_side: int) -> tuple[int, int]:
    """(width, height) after scaling the short side to ``short_side`` (0 keeps the display size).

    Sizes are exact (RGB has no even-size constraint): ``short_side=0`` keeps an odd native size
    as it is, and a scaled side is rounded to the nearest pixel.
    """
    if short_side <= 0:
        return display_w, display_h
    scale = short_side / min(display_w, display_h)
    return max(1, int(round(display_w * scale))), max(1, int(round(display_h * scale)))


# Filters as data: (name, ((option, value), ...)), applied in order before the scale. Picklable, so a
# decode's description travels to a Dask worker, and printable, so the record names what was done.
Filter = tuple[str, tuple[tuple[str, object], ...]]

# Interlaced video, deinterlaced frame for frame (one output frame per input frame, so counts and
# timestamps stay the decoder's); only frames flagged interlaced are touched.
DEINTERLACE: tuple[Filter, ...] = (("bwdif", (("mode", "send_frame"), ("parity", "auto"), ("deint", "interlaced"))),)
# HDR (PQ or HLG, BT.2020) to SDR BT.709: linear light at a 100-nit nominal peak, BT.709 primaries,
# Möbius's curve without desaturation (linear up to its knee, so the SDR range of a grade keeps its
# levels; Hable's darkened a test grade by 30 levels on average), then BT.709 transfer and matrix at
# full range, as 8-bit planar RGB for the scale that follows (zimg through zscale).
TONEMAP: tuple[Filter, ...] = (
    ("zscale", (("transfer", "linear"), ("npl", 100))),
    ("format", (("pix_fmts", "gbrpf32le"),)),
    ("zscale", (("primaries", "bt709"),)),
    ("tonemap", (("tonemap", "mobius"), ("desat", 0))),
    ("zscale", (("transfer", "bt709"), ("matrix", "bt709"), ("range", "pc"))),
    ("format", (("pix_fmts", "gbrp"),)),
)


def describe_filters(filters: tuple[Filter, ...]) -> str:
    """The filters as ffmpeg's filter-graph syntax (what a record names)."""
    return ",".join(f"{name}=" + ":".join(f"{k}={v}" for k, v in options) for name, options in filters)


@functools.cache
def has_filters(*names: str) -> bool:
    """True when the ffmpeg binary has every filter in ``names`` (zscale needs libzimg)."""
    listed = subprocess.run([ffmpeg_exe(), "-hide_banner", "-filters"], capture_output=True, text=True).stdout
    present = {line.split()[1] for line in listed.splitlines() if len(line.split()) > 2}
    return all(name in present for name in names)


# One showinfo line per frame: before the filters (what the decoder delivered: its geometry and
# interlacing) and at the end of the graph (exactly the frames written, with their time).
_FRAME = re.compile(r"\[showinfo@(vin|vout) @ [^\]]+\] \[info\] n:\s*\d+\s+pts:\s*(\S+)")
_PICTURE = re.compile(r"\sfmt:(\S+).*?\ssar:(\d+)/(\d+)\s+s:(\d+)x(\d+)\s+i:(\S)")
# Each showinfo states its time base when its graph is (re)configured: times are pts × time base,
# exactly (showinfo's printed pts_time keeps 6 significant digits: 0.1 s at 10,000 s).
_CONFIG = re.compile(r"\[showinfo@(vin|vout) @ [^\]]+\] \[info\] config in time_base: (\d+)/(\d+)")
_ERROR = re.compile(r"\[(error|fatal|panic)\] ")
# ffmpeg's summary of each input stream at the end (verbose level), one line written after every
# thread has finished: its count of decode errors cannot be lost to interleaved log lines.
_SUMMARY = re.compile(r"Input stream #0:(\d+) \(video\): .*?(\d+) decode errors")
MAX_KEPT_ERRORS = 20
# A decode that delivers nothing (no frame, no log line) for this long is stopped: a source on a
# stalled mount or a device must not hold a worker forever.
STALL_SECONDS = 300.0


@dataclass(frozen=True)
class Geometry:
    """A decoded frame's picture as the decoder delivered it, before any filter."""

    frame: int  # index among decoded frames
    time: float | None  # presentation time, seconds, container clock
    width: int
    height: int
    sar: Fraction
    pix_fmt: str




class FfmpegDecode:
    """One ffmpeg decode of one video stream to RGB uint8 frames, with every frame's timestamp.

    Iterating yields chunks of shape (t <= chunk_frames, height, width, 3), one chunk in memory at
    a time whatever the video's length. ffmpeg applies the rotation itself (autorotate), then the
    ``filters`` (deinterlacing, tone mapping), then scales to (width, height) (bicubic) with
    square pixels: the display geometry, SAR included, is the caller's. Frames pass through as
    the decoder presents them (``-fps_mode passthrough``): a variable-frame-rate stream is neither
    padded with duplicates nor thinned; ``fps`` resamples on purpose (ffmpeg's fps filter).

    The source is read with its ``container_format`` (the probed demuxer, never re-guessed) through
    the ``file`` protocol only. ``seek``: start at this time, seconds after the container's start
    time (ffmpeg's accurate input seek: it decodes from the keyframe before and drops what
    precedes the time). ``keep_from``: the caller keeps frames from this time on (container clock);
    errors ffmpeg logs before the first such frame is decoded are not this decode's to count (they
    belong to frames another range stores, or that precede the file's first keyframe).

    After iteration: ``timestamps`` (float64 seconds on the container's clock, ``-copyts``, one per
    frame written, from showinfo at the end of the filter graph), ``geometry`` (the decoded
    picture at the first frame and at every change of size, pixel aspect or pixel format),
    ``interlaced_frames`` (frames the decoder flagged interlaced) and ``errors`` (the first
    ``MAX_KEPT_ERRORS`` lines ffmpeg logged at error level; ``error_count`` counts all of them).
    ffmpeg conceals corrupt macroblocks, logs an error and still exits 0: ``errors`` is where that
    shows. Raises VideoError when ffmpeg exits non-zero, writes no frame, or stalls for
    ``STALL_SECONDS``.
    """

    def __init__(self, path: str, width: int, height: int, chunk_frames: int, stream_index: int = 0,
                 fps: float | None = None, threads: int = 1, seek: float | None = None,
                 container_format: str | None = None, filters: tuple[Filter, ...] = (),
                 keep_from: float | None = None):
        self.path, self.width, self.height, self.chunk_frames = path, width, height, chunk_frames
        self.stream_index, self.fps, self.threads, self.seek = stream_index, fps, threads, seek
        self.container_format, self.filters, self.keep_from = container_format, filters, keep_from
        self.timestamps: list[float] = []
        self._timestamps_added = threading.Condition()
        self.geometry: list[Geometry] = []
        self.decoded = 0  # frames the decoder delivered (before --fps resampling)
        self.interlaced_frames = 0
        self.errors: list[str] = []
        self.error_count = 0
        self.reported_decode_errors = 0  # ffmpeg's own count at the end (the decoder's failures)
        self.frames = 0
        self._counting = keep_from is None
        self._time_base: dict[str, Fraction | None] = {}
        self._activity = time.monotonic()

    def command(self) -> list[str]:
        options = {"ss": f"{self.seek:.6f}"} if self.seek is not None else {}
        if self.container_format:
            options["f"] = self.container_format
        stream = ffmpeg.input(self.path, threads=self.threads, protocol_whitelist="file", **options)
        stream = stream[str(self.stream_index)].filter("showinfo@vin", checksum=0)
        for name, settings in self.filters:
            stream = stream.filter(name, **dict(settings))
        if self.fps:
            stream = stream.filter("fps", fps=self.fps)
        stream = (stream.filter("scale", self.width, self.height, flags="bicubic").filter("setsar", 1)
                  .filter("showinfo@vout", checksum=0))
        return (
            # Times are read from showinfo above; the raw pipe's packets are numbered instead (the setts
            # bitstream filter, which a filter-graph reinit does not restart), so a clock that jumps
            # back (two recordings joined) is no error of vmac's own muxing.
            stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", threads=self.threads, fps_mode="passthrough",
                          **{"bsf:v": "setts=ts=N"})
            # Decode errors do not stop ffmpeg (it conceals and goes on); they are judged from the log
            # (``errors``), so ffmpeg must not turn them into its own exit code either.
            .global_args("-nostdin", "-nostats", "-loglevel", "level+verbose", "-max_error_rate", "1",
                         # One thread for the filter graph too (scaling and RGB conversion would
                         # otherwise take a thread per core): a worker is one core's work.
                         "-filter_threads", str(self.threads),
                         # The container's clock, unshifted: a decode that starts at a seek reports the
                         # same times as one from the start (tasks.ingest.ranges).
                         "-copyts")
            .compile(cmd=ffmpeg_exe())
        )

    def _read_log(self, pipe) -> None:
        """Runs in a thread: parse ffmpeg's log as it comes (a full stderr pipe would stall ffmpeg)."""
        for raw in pipe:
            self._activity = time.monotonic()
            line = raw.decode("utf-8", "replace").rstrip()
            if "[showinfo@v" in line:
                self._frame_line(line)
            # showinfo ends its frame line with a second av_log call, so another thread's message can land
            # inside it, without its level: every line is searched for errors, and ffmpeg's summary
            # count and the demuxer's own errors (tasks.io.probe.count_packets) back the log up.
            summary = _SUMMARY.search(line)
            if summary and int(summary.group(1)) == self.stream_index:
                self.reported_decode_errors = int(summary.group(2))
            if _ERROR.search(line) and self._counting:
                self.error_count += 1
                if len(self.errors) < MAX_KEPT_ERRORS:
                    self.errors.append(line[:300])

    def _frame_line(self, line: str) -> None:
        config = _CONFIG.search(line)
        if config:
            which, num, den = config.groups()
            self._time_base[which] = Fraction(int(num), int(den)) if int(den) else None
            return
        found = _FRAME.search(line)
        if not found:
            return
        which, pts = found.groups()
        base = self._time_base.get(which)
        at = float(int(pts) * base) if base is not None and pts.lstrip("-").isdigit() else None
        if which == "vout":
            with self._timestamps_added:
                self.timestamps.append(float("nan") if at is None else at)
                self._timestamps_added.notify_all()
            return
        picture = _PICTURE.search(line, found.end())
        if not self._counting and (at is None or at >= self.keep_from):
            self._counting = True
        if picture:
            fmt, num, den, width, height, field = picture.groups()
            sar = Fraction(int(num), int(den)) if int(num) and int(den) else Fraction(1)
            last = self.geometry[-1] if self.geometry else None
            if last is None or (last.width, last.height, last.sar, last.pix_fmt) != (int(width), int(height), sar, fmt):
                self.geometry.append(Geometry(self.decoded, at, int(width), int(height), sar, fmt))
            self.interlaced_frames += field in "TB"
        self.decoded += 1

    def __iter__(self) -> Iterator[np.ndarray]:
        """Chunks of (t <= chunk_frames, H, W, 3) frames. A thread reads ffmpeg's output into one
        of two chunk buffers while the caller works on the other, so ffmpeg decodes on while the
        caller encodes (a 64 kB pipe would stall it); each chunk is valid until the next is asked
        for, and at most two chunks are held."""
        proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        _widen_pipe(proc.stdout)
        reader = threading.Thread(target=self._read_log, args=(proc.stderr,), daemon=True)
        reader.start()
        free: queue.Queue = queue.Queue()
        full: queue.Queue = queue.Queue()
        for _ in range(2):
            free.put(np.empty((self.chunk_frames, self.height, self.width, 3), np.uint8))
        pump = threading.Thread(target=self._pump, args=(proc.stdout, free, full), daemon=True)
        pump.start()
        reached_end = False
        try:
            while True:
                got = self._next(full, proc)
                if isinstance(got, BaseException):
                    raise got
                buf, n = got
                if n:
                    self.frames += n
                    yield buf[:n]
                free.put(buf)
                if n < self.chunk_frames:
                    reached_end = True
                    break
        finally:
            free.put(None)
            if proc.poll() is None and not reached_end:
                proc.kill()  # the consumer stopped early (or ffmpeg stalled); nothing more is wanted
            pump.join()
            proc.stdout.close()
            code = proc.wait()
            reader.join()
            proc.stderr.close()
        self._check(code)

    def _next(self, full: queue.Queue, proc):
        """The next filled buffer, or VideoError once ffmpeg has shown no sign of life (no frame
        bytes, no log line) for ``STALL_SECONDS``."""
        while True:
            try:
                return full.get(timeout=min(5.0, STALL_SECONDS))
            except queue.Empty:
                if time.monotonic() - self._activity > STALL_SECONDS:
                    return VideoError(f"ffmpeg made no progress for {STALL_SECONDS:.0f} s (after {self.frames} "
                                      "frames): the source stalls")

    def _pump(self, pipe, free: queue.Queue, full: queue.Queue) -> None:
        """Runs in a thread: fill free buffers with whole frames from ``pipe`` until it ends."""
        frame_bytes = self.width * self.height * 3
        try:
            while True:
                buf = free.get()
                if buf is None:
                    return
                got = _read_into(pipe, memoryview(buf.reshape(-1)), self)
                n = got // frame_bytes
                full.put((buf, n))
                if n < self.chunk_frames:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread, which raises it
            full.put(exc)

    def wait_timestamps(self, count: int, timeout: float = 60.0) -> list[float]:
        """The first ``count`` timestamps, waiting for the log to deliver them (showinfo logs a
        frame before ffmpeg writes it, but the log is read in another thread)."""
        with self._timestamps_added:
            self._timestamps_added.wait_for(lambda: len(self.timestamps) >= count, timeout)
            return list(self.timestamps[:count])

    def _check(self, code: int) -> None:
        if code != 0:
            where = f"after {self.frames} frames" if self.frames else "before the first frame"
            detail = _message(self.errors[-1]) if self.errors else f"exit code {code}"
            raise VideoError(f"ffmpeg failed {where}: {detail}")
        if self.frames == 0:
            raise VideoError("ffmpeg decoded no frames")
        if len(self.timestamps) != self.frames:
            raise VideoError(f"ffmpeg wrote {self.frames} frames but reported {len(self.timestamps)} timestamps")

    def first_error(self) -> str | None:
        """The first error ffmpeg logged, without its log prefixes (None when there was none)."""
        return _message(self.errors[0]) if self.errors else None


def _message(line: str) -> str:
    """An ffmpeg log line without its ``[component @ 0x...] [level]`` prefixes."""
    return re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()


# Bytes the frame pipe holds: a few RGB frames rather than Linux's default 64 kB, so ffmpeg and the
# reader trade a frame in one or two system calls instead of one per 64 kB (a frame is ~350 kB at
# 455×256), which is many fewer switches between the two processes on one core.
PIPE_BYTES = 1 << 20


def _widen_pipe(pipe) -> None:
    """Grow ``pipe`` to ``PIPE_BYTES`` where Linux allows it (up to /proc/sys/fs/pipe-max-size for
    an unprivileged user); elsewhere it keeps its size."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), set_size, PIPE_BYTES)


def _read_into(pipe, view: memoryview, decode: FfmpegDecode | None = None) -> int:
    """Fill ``view`` from ``pipe``; the bytes read, fewer than its size only at end of stream.
    Each read marks ``decode`` alive (its stall check)."""
    got = 0
    while got < len(view):
        n = pipe.readinto(view[got:])
        if not n:
            break
        got += n
        if decode is not None:
            decode._activity = time.monotonic()
    return got


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
        raise VideoError(f"ffmpeg encode failed: {one_line(done.stderr.decode('utf-8', 'replace'))}")


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
        raise VideoError(f"ffmpeg remux failed: {one_line(done.stderr.decode('utf-8', 'replace'))}")
