"""The video conformance matrix: generated inputs, and ffmpeg's own decode of each as the oracle.

Every case is data (``Case``): how ffmpeg makes the input (``Source``), the ``DecodeParams`` vmac
ingests it with, and what must come out (``Oracle``, ``Fails`` or ``Property``), plus record
fields the contract fixes. ``tests/ingest/test_conformance_matrix.py`` runs them.

The oracle is ffmpeg's decode of the same file with ffmpeg's *default* stream choice (no ``-map``:
fftools' rule, width×height plus 5,000,000 for a ``default`` disposition, 1 for an attached
picture, ties to the lowest index), autorotated as ffmpeg does by default, every frame passed
through once (``-fps_mode passthrough``), scaled with the filter vmac uses
(``scale=W:H:flags=bicubic``) to the size vmac should store: the first frame's display size (its
width stretched by its SAR), or that scaled so its short side is ``short_side``. A frame ffmpeg
decodes at that size with square pixels must match bit for bit; a scaled one within one grey
level on average.

Inputs are tiny (64×48 to 128×96, 6-12 frames) so the whole matrix runs in about a minute on two
cores. Where this ffmpeg build cannot write a combination, it is left out with a comment.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from storage_schemas.layout import FRAMES, TIMESTAMPS
from storage_schemas.records import DecodeParams, Status, VideoRecord
from tasks.ingest.plan import Outcome
from tasks.ingest.video import ingest_video
from tasks.io.ffmpeg import ffmpeg_exe
from tasks.io.sources import expand_sources
from tasks.io.store import open_snapshot, read_catalog

# The deinterlacer the contract names: BWDIF, one frame out per frame in, only on frames flagged
# interlaced, the field order read from each frame.
BWDIF = "bwdif=mode=send_frame:parity=auto:deint=interlaced"
# A scaled frame may differ from ffmpeg's by this much on average (0-255 levels), and at most by
# MAX_LEVEL_DIFF in any one sample.
MEAN_LEVEL_DIFF = 1.0
MAX_LEVEL_DIFF = 12
# Stored timestamps agree with ffmpeg's to this many seconds (showinfo prints ~6 digits).
TIME_TOLERANCE = 5e-4
CLIP_FRAMES = 8
RATE = 25


# --- how an input is made -----------------------------------------------------------------------


def ffmpeg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ffmpeg quietly; a failure raises with ffmpeg's last lines (an input that cannot be
    generated must fail the matrix, never drop out of it)."""
    done = subprocess.run([ffmpeg_exe(), "-y", "-nostdin", "-hide_banner", "-loglevel", "error", *args],
                          cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {done.stderr.strip()[-600:]}")
    return done


@dataclass(frozen=True)
class Encode:
    """ffmpeg with these arguments (file names relative to the source's folder)."""

    args: tuple[str, ...]

    def run(self, folder: Path) -> None:
        ffmpeg(*self.args, cwd=folder)


@dataclass(frozen=True)
class Join:
    """``cat parts > out``: how MPEG-TS files are joined in the wild (captures, HLS downloads)."""

    parts: tuple[str, ...]
    out: str

    def run(self, folder: Path) -> None:
        (folder / self.out).write_bytes(b"".join((folder / part).read_bytes() for part in self.parts))


@dataclass(frozen=True)
class CutTs:
    """``out`` is ``src`` from the MPEG-TS packet holding the start of its ``packet``-th video
    packet on: a capture that starts in the middle of a GOP (PAT and PMT repeat, so the stream is
    found again; the parameter sets and the GOP's keyframe are gone)."""

    src: str
    out: str
    packet: int

    def run(self, folder: Path) -> None:
        import av

        with av.open(str(folder / self.src)) as container:
            positions = [p.pos for p in container.demux(video=0) if p.size]
        start = positions[self.packet] // 188 * 188
        (folder / self.out).write_bytes((folder / self.src).read_bytes()[start:])


@dataclass(frozen=True)
class CutTsAtKey:
    """``out`` is ``src`` from its ``key``-th keyframe's packet on: a capture or a segment that starts
    exactly at a keyframe of an open GOP, whose leading pictures reference the GOP before."""

    src: str
    out: str
    key: int

    def run(self, folder: Path) -> None:
        import av

        with av.open(str(folder / self.src)) as container:
            positions = [p.pos for p in container.demux(video=0) if p.size and p.is_keyframe]
        start = positions[self.key] // 188 * 188
        (folder / self.out).write_bytes((folder / self.src).read_bytes()[start:])


@dataclass(frozen=True)
class Truncate:
    """``out`` is the first ``fraction`` of ``src``'s bytes: a recording cut off."""

    src: str
    out: str
    fraction: float

    def run(self, folder: Path) -> None:
        data = (folder / self.src).read_bytes()
        (folder / self.out).write_bytes(data[: int(len(data) * self.fraction)])


@dataclass(frozen=True)
class Text:
    out: str
    text: str

    def run(self, folder: Path) -> None:
        (folder / self.out).write_text(self.text)


@dataclass(frozen=True)
class Fifo:
    """A named pipe with a video's name: opening it for reading blocks until a writer comes."""

    out: str

    def run(self, folder: Path) -> None:
        os.mkfifo(folder / self.out)


Step = Encode | Join | CutTs | CutTsAtKey | Truncate | Text | Fifo


@dataclass(frozen=True)
class Source:
    """A generated input: ``steps`` run in order in the folder ``<root>/<key>``; vmac ingests
    ``<root>/<key>/<file>``. Cases that share a Source share its file."""

    key: str
    file: str
    steps: tuple[Step, ...]

    def path(self, root: Path) -> Path:
        return root / self.key / self.file

    def make(self, root: Path) -> Path:
        folder = root / self.key
        folder.mkdir(parents=True, exist_ok=True)
        for step in self.steps:
            step.run(folder)
        return folder / self.file


def lavfi(size: str = "64x48", rate: int = RATE, frames: int = CLIP_FRAMES, pattern: str = "testsrc2",
          vf: str | None = None) -> tuple[str, ...]:
    """ffmpeg input arguments for a generated clip (testsrc2: colour bars, moving shapes)."""
    graph = f"{pattern}=size={size}:rate={rate}" + (f",{vf}" if vf else "")
    return ("-f", "lavfi", "-i", graph, "-frames:v", str(frames))


# Quiet, single-threaded encoders (ffmpeg's -loglevel does not reach x265's or SVT's own log).
X265 = ("-c:v", "libx265", "-x265-params", "log-level=error:pools=none:frame-threads=1")
X264 = ("-c:v", "libx264")
VP8 = ("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8")
VP9 = ("-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8")
AV1 = ("-c:v", "libaom-av1", "-cpu-used", "8")
CODECS: dict[str, tuple[str, ...]] = {
    "h264": X264, "hevc": X265, "vp8": VP8, "vp9": VP9, "av1": AV1, "svtav1": ("-c:v", "libsvtav1", "-preset", "12"),
    "rav1e": ("-c:v", "librav1e", "-speed", "10"), "mpeg2": ("-c:v", "mpeg2video",), "mpeg1": ("-c:v", "mpeg1video",),
    "mpeg4": ("-c:v", "mpeg4",), "xvid": ("-c:v", "libxvid"), "apng": ("-c:v", "apng"),
    "webp_anim": ("-c:v", "libwebp_anim"), "mjpeg": ("-c:v", "mjpeg",), "ffv1": ("-c:v", "ffv1",),
    "png": ("-c:v", "png",),
    "qtrle": ("-c:v", "qtrle",), "prores": ("-c:v", "prores_ks",), "h263": ("-c:v", "h263",), "flv1": ("-c:v", "flv",),
    "gif": ("-c:v", "gif",), "huffyuv": ("-c:v", "huffyuv",), "utvideo": ("-c:v", "utvideo",),
    "rawvideo": ("-c:v", "rawvideo",), "x264rgb": ("-c:v", "libx264rgb",),
}


def encoded(key: str, ext: str, codec: str, *extra: str, size: str = "64x48", rate: int = RATE,
            frames: int = CLIP_FRAMES, pattern: str = "testsrc2", vf: str | None = None) -> Source:
    """One generated clip encoded with ``codec`` (a CODECS key) into a ``.ext`` container."""
    return Source(key, f"clip.{ext}",
                  (Encode((*lavfi(size, rate, frames, pattern, vf), *CODECS[codec], *extra, f"clip.{ext}")),))


# --- what must come out -------------------------------------------------------------------------


@dataclass(frozen=True)
class Oracle:
    """vmac's frames are ffmpeg's own decode (see the module docstring); its timestamps are
    ffmpeg's, from the first stored frame, strictly increasing.

    ``pre_filter``: filters ffmpeg applies before the scale (BWDIF for interlaced sources).
    ``from_keyframe``: the file starts before its first keyframe; the oracle drops what ffmpeg
    shows before the first key frame."""

    pre_filter: str = ""
    from_keyframe: bool = False


@dataclass(frozen=True)
class Fails:
    """vmac records the video as failed, with a reason containing ``fragment``."""

    fragment: str


@dataclass(frozen=True)
class Property:
    """vmac stores the video ``complete`` and ``check(stored)`` holds (an assertion with a message)."""

    check: Callable[[Stored], None]


Expect = Oracle | Fails | Property


@dataclass(frozen=True)
class Predicate:
    """A condition on one record field, described for the failure message."""

    describe: str
    holds: Callable[[object], bool]


@dataclass(frozen=True)
class Case:
    """One cell of the matrix. ``record``: fields of vmac's ``VideoRecord`` the contract fixes for
    this input (a value, or a Predicate)."""

    id: str
    source: Source
    params: DecodeParams
    expect: Expect
    record: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    """What vmac made of one input: the ingest outcome, the record, and the arrays (None when the
    video failed)."""

    path: Path
    outcome: Outcome
    record: VideoRecord
    frames_thwc: np.ndarray | None
    timestamps_t: np.ndarray | None


# --- the oracle: ffmpeg's own decode ------------------------------------------------------------


@dataclass(frozen=True)
class ShownFrame:
    """One frame as ffmpeg's showinfo reports it, before the scale."""

    time: float  # seconds, ffmpeg's default clock (start shifted to 0, discontinuities corrected)
    width: int
    height: int
    sar: tuple[int, int]
    key: bool


@dataclass(frozen=True)
class Reference:
    """ffmpeg's decode of one file: the stream it chose, every frame it shows (before scaling),
    and the frames at ``size`` as RGB uint8 (T, H, W, 3)."""

    stream_index: int
    shown: list[ShownFrame]
    size: tuple[int, int]
    frames_thwc: np.ndarray

    @property
    def times(self) -> np.ndarray:
        times = np.array([frame.time for frame in self.shown], np.float64)
        return times - times[0] if len(times) else times


_MAPPING = re.compile(r"Stream #0:(\d+)\S* -> #0:0")
_SHOWINFO = re.compile(r"\[Parsed_showinfo_\d+ @ [^\]]+\] n:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(\S+).*?"
                       r"sar:(\d+)/(\d+) s:(\d+)x(\d+) .*?iskey:([01])")


def _ffmpeg_decode(path: Path, graph: str, output: tuple[str, ...]) -> subprocess.CompletedProcess:
    """ffmpeg's decode of ``path`` through ``graph`` with its default stream choice; one thread
    everywhere, as vmac decodes."""
    args = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "info", "-threads", "1", "-filter_threads", "1",
            "-i", str(path), "-an", "-sn", "-dn", "-vf", graph, "-fps_mode", "passthrough", *output]
    done = subprocess.run(args, capture_output=True)
    if done.returncode != 0:
        raise AssertionError(f"the oracle could not decode {path.name}: "
                             f"{done.stderr.decode('utf-8', 'replace').strip()[-600:]}")
    return done


def target_size(first: ShownFrame, short_side: int) -> tuple[int, int]:
    """The size vmac stores: the first frame's display size (its width stretched by its SAR),
    or that with its short side scaled to ``short_side`` (each side rounded to the nearest pixel)."""
    num, den = first.sar
    width = round(first.width * num / den) if num and den and num != den else first.width
    height = first.height
    if short_side <= 0:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def reference_decode(path: Path, short_side: int, oracle: Oracle) -> Reference:
    """Two ffmpeg runs: one showing every frame (stream choice, sizes, times, key flags), one
    scaling them to the stored size."""
    pre = f"{oracle.pre_filter}," if oracle.pre_filter else ""
    shown_run = _ffmpeg_decode(path, f"{pre}showinfo", ("-f", "null", "-"))
    log = shown_run.stderr.decode("utf-8", "replace")
    mapping = _MAPPING.search(log)
    if not mapping:
        raise AssertionError(f"ffmpeg logged no stream mapping for {path.name}:\n{log[-800:]}")
    shown = [ShownFrame(float(m[1]), int(m[4]), int(m[5]), (int(m[2]), int(m[3])), m[6] == "1")
             for m in _SHOWINFO.finditer(log)]
    if not shown:
        raise AssertionError(f"ffmpeg showed no frame of {path.name}")
    width, height = target_size(shown[0], short_side)
    scaled = _ffmpeg_decode(path, f"{pre}scale={width}:{height}:flags=bicubic",
                            ("-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:"))
    frames = np.frombuffer(scaled.stdout, np.uint8).reshape(-1, height, width, 3)
    if len(frames) != len(shown):
        raise AssertionError(f"the oracle's two decodes of {path.name} disagree: {len(shown)} frames shown, "
                             f"{len(frames)} scaled")
    if oracle.from_keyframe:
        first_key = next((i for i, frame in enumerate(shown) if frame.key), len(shown))
        shown, frames = shown[first_key:], frames[first_key:]
    return Reference(int(mapping[1]), shown, (width, height), frames)


def exact_frames(reference: Reference, oracle: Oracle) -> np.ndarray:
    """(T,) bool: frames ffmpeg decodes at the stored size with square pixels and no filter before
    the scale, which must match bit for bit; the others are scaled and match within a grey level."""
    width, height = reference.size
    return np.array([not oracle.pre_filter and (f.width, f.height) == (width, height) and f.sar[0] == f.sar[1]
                     for f in reference.shown], bool)


def compare_frames(stored_thwc: np.ndarray, reference: Reference, oracle: Oracle) -> None:
    """Assert vmac's frames are ffmpeg's: count, size, then each frame (the first that differs)."""
    ref = reference.frames_thwc
    width, height = reference.size
    if stored_thwc.shape[1:3] != (height, width):
        stored_h, stored_w = stored_thwc.shape[1:3]
        raise AssertionError(f"vmac stored {len(stored_thwc)} frames of {stored_w}×{stored_h}, "
                             f"ffmpeg's decode has {len(ref)} of {width}×{height} "
                             f"(first frame {reference.shown[0].width}×{reference.shown[0].height} "
                             f"SAR {reference.shown[0].sar[0]}:{reference.shown[0].sar[1]})")
    exact = exact_frames(reference, oracle)
    for index in range(min(len(stored_thwc), len(ref))):
        diff = np.abs(stored_thwc[index].astype(np.int16) - ref[index].astype(np.int16))
        mean, peak = float(diff.mean()), int(diff.max())
        if exact[index] and peak:
            raise AssertionError(f"frame {index} differs from ffmpeg's native decode ({width}×{height}, expected "
                                 f"bit-exact): mean abs diff {mean:.3f}, max {peak}, {int((diff > 0).sum())} samples")
        if mean > MEAN_LEVEL_DIFF or peak > MAX_LEVEL_DIFF:
            raise AssertionError(f"frame {index} differs from ffmpeg's scaled decode ({width}×{height}): mean abs "
                                 f"diff {mean:.3f} (limit {MEAN_LEVEL_DIFF}), max {peak} (limit {MAX_LEVEL_DIFF})")
    if len(stored_thwc) != len(ref):
        raise AssertionError(f"vmac stored {len(stored_thwc)} frames, ffmpeg's decode shows {len(ref)} "
                             f"(the first {min(len(stored_thwc), len(ref))} agree)")


def compare_times(stored_t: np.ndarray, reference: Reference) -> None:
    """Stored timestamps: strictly increasing, and ffmpeg's (from the first frame)."""
    gaps = np.diff(stored_t)
    if (gaps <= 0).any():
        at = int(np.argmax(gaps <= 0)) + 1
        raise AssertionError(f"stored timestamps are not strictly increasing at frame {at}: "
                             f"{stored_t[max(at - 2, 0):at + 2].round(4).tolist()}")
    ref = reference.times
    if len(ref) == len(stored_t):
        off = np.abs(stored_t - ref)
        if off.max() > TIME_TOLERANCE:
            at = int(np.argmax(off > TIME_TOLERANCE))
            raise AssertionError(f"timestamp of frame {at} is {stored_t[at]:.4f} s, ffmpeg shows it at {ref[at]:.4f} s "
                                 f"(from the first frame)")


def check_record(record, expected: dict[str, object]) -> None:
    """Each expected record field, with every mismatch in one message."""
    wrong = []
    for name, want in expected.items():
        if not hasattr(record, name):
            wrong.append(f"record has no field {name!r} (expected {describe(want)})")
            continue
        got = getattr(record, name)
        ok = want.holds(got) if isinstance(want, Predicate) else got == want
        if not ok:
            wrong.append(f"record.{name} is {got!r}, expected {describe(want)}")
    if wrong:
        raise AssertionError("; ".join(wrong))


def describe(want: object) -> str:
    return want.describe if isinstance(want, Predicate) else repr(want)


def entry(item, name: str):
    """A field of a record list entry, whether the record keeps dicts or models."""
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def positive() -> Predicate:
    return Predicate("> 0", lambda value: isinstance(value, int) and value > 0)


def non_empty_string() -> Predicate:
    return Predicate("a non-empty string", lambda value: isinstance(value, str) and bool(value.strip()))


def approx(value: float, rel: float = 1e-3) -> Predicate:
    return Predicate(f"≈ {value}", lambda got: isinstance(got, int | float) and abs(got - value) <= rel * abs(value))


def one_of(*values: object) -> Predicate:
    return Predicate(f"one of {values}", lambda got: got in values)


def entries_at(*frames: int, **fields: object) -> Predicate:
    """A list with one entry per frame in ``frames``, each with ``fields`` (e.g. width=64)."""
    def holds(value) -> bool:
        if not isinstance(value, list | tuple) or [entry(e, "frame") for e in value] != list(frames):
            return False
        return all(entry(e, name) == want for e in value for name, want in fields.items())
    shown = ", ".join(f"{k}={v}" for k, v in fields.items())
    return Predicate(f"entries at frames {list(frames)}" + (f" with {shown}" if shown else ""), holds)


def streams_listed(count: int, attached: tuple[int, ...] = (), default: tuple[int, ...] | None = None) -> Predicate:
    """``video_streams`` lists ``count`` streams with index, codec, size, sar, pix_fmt, default and
    attached_pic, the attached pictures being those at ``attached``."""
    keys = ("index", "codec", "width", "height", "sample_aspect_ratio", "pix_fmt", "default", "attached_pic")

    def holds(value) -> bool:
        if not isinstance(value, list | tuple) or len(value) != count:
            return False
        if any(not isinstance(e, dict) and not all(hasattr(e, k) for k in keys) for e in value):
            return False
        if any(isinstance(e, dict) and not all(k in e for k in keys) for e in value):
            return False
        if tuple(entry(e, "index") for e in value if entry(e, "attached_pic")) != attached:
            return False
        return default is None or tuple(entry(e, "index") for e in value if entry(e, "default")) == default
    return Predicate(f"{count} entries with {', '.join(keys)}; attached pictures at {list(attached)}"
                     + ("" if default is None else f"; default at {list(default)}"), holds)


# --- property checks ----------------------------------------------------------------------------


def comb(frames_thwc: np.ndarray) -> np.ndarray:
    """(T,) mean absolute difference between each even row and the odd row below it: 0 for a
    picture of vertical edges, large where the two fields of a moving edge sit apart."""
    rows = (frames_thwc.shape[1] // 2) * 2
    even = frames_thwc[:, 0:rows:2].astype(np.int16)
    odd = frames_thwc[:, 1:rows:2].astype(np.int16)
    return np.abs(even - odd).mean(axis=(1, 2, 3))


def no_combs(stored: Stored) -> None:
    """A vertical edge moving right, its two fields captured 1/50 s apart: ffmpeg's plain decode
    shows combs (the two fields apart); vmac's stored frames must show none (odd and even rows
    agree: deinterlaced)."""
    height, width = stored.frames_thwc.shape[1:3]
    plain = _ffmpeg_decode(stored.path, f"scale={width}:{height}:flags=bicubic",
                           ("-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:")).stdout
    plain_comb = comb(np.frombuffer(plain, np.uint8).reshape(-1, height, width, 3))
    assert plain_comb.max() > 8, f"the input shows no combs to remove (plain decode: {plain_comb.round(1).tolist()})"
    stored_comb = comb(stored.frames_thwc)
    worst = int(np.argmax(stored_comb))
    assert stored_comb[worst] <= 2, (
        f"frame {worst} shows combs: odd and even rows differ by {stored_comb[worst]:.1f} levels on average "
        f"(ffmpeg's plain decode: {plain_comb[worst]:.1f}; all stored: {stored_comb.round(1).tolist()})")


def looks_sdr(stored: Stored) -> None:
    """An HDR source tone-mapped to SDR: a picture (not flat, not clipped), with a sane mean level."""
    frames = stored.frames_thwc.astype(np.float32)
    mean, spread = float(frames.mean()), float(frames.std())
    clipped = float(((stored.frames_thwc == 0) | (stored.frames_thwc == 255)).mean())
    assert 24 <= mean <= 230, f"mean level {mean:.1f} is outside 24-230 (crushed or blown out)"
    assert spread >= 12, f"the picture is flat: standard deviation {spread:.1f} levels"
    assert clipped <= 0.5, f"{clipped:.0%} of the samples are clipped to 0 or 255"


# --- ingesting, with a deadline -----------------------------------------------------------------


def ingest(path: Path, store: str, params: DecodeParams, timeout: float) -> Stored:
    """vmac's ingest of ``path`` (expand_sources, then ingest_video), as the everyday-files tests
    call it; AssertionError if it has not returned after ``timeout`` seconds. A FIFO it is blocked
    on is then opened and closed for writing, so the blocked reader sees its end and the thread
    finishes."""
    result: dict[str, object] = {}

    def run() -> None:
        try:
            [item] = expand_sources([str(path)])
            outcome = ingest_video(item, store, params)
            result["outcome"] = outcome
            result["record"] = read_catalog(store)[outcome.video_id]
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        if path.is_fifo():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            worker.join(10)
        raise AssertionError(f"ingest of {path.name} did not return within {timeout:.0f} s (it hangs)")
    if "error" in result:
        raise result["error"]
    outcome, record = result["outcome"], result["record"]
    frames = timestamps = None
    if record.status is Status.complete:
        group = open_snapshot(store).group(outcome.video_id)
        frames = group[FRAMES][:]
        timestamps = group[TIMESTAMPS][:] if TIMESTAMPS in group else None
    return Stored(path, outcome, record, frames, timestamps)


# --- the matrix ---------------------------------------------------------------------------------

NATIVE = DecodeParams(short_side=0, shard_frames=5)  # 5: a clip of 8-12 frames ends in a partial shard
SCALED_SIDE = 32  # 64×48 → 43×32: an odd width, both sides scaled
TINY = "64x48"
BIG = "128x96"
# An HDR signal made from the SDR test picture as a grading tool would: BT.709 light at a 100-nit
# reference white, re-encoded with BT.2020 primaries and the PQ or HLG transfer (zimg).
def hdr_from_sdr(transfer: str) -> str:
    return ("format=gbrp,setparams=colorspace=gbr:color_trc=bt709:color_primaries=bt709:range=pc,"
            "zscale=transfer=linear:npl=100,format=gbrpf32le,"
            f"zscale=primaries=bt2020:transfer={transfer}:matrix=bt2020nc:range=tv,format=yuv420p10le")
INTERLACED_FIELD_ORDERS = one_of("tt", "bb", "tb", "bt")
NAMES_BWDIF = Predicate("a string naming bwdif", lambda value: isinstance(value, str) and "bwdif" in value)
# A vertical edge moving 4 px a field right, fields 1/50 s apart, woven into 25 fps frames.
MOVING_EDGE = "geq=lum='255*gt(X\\,4*N+8)':cb=128:cr=128,format=yuv420p"

# (container, codec): the pairs this ffmpeg build writes and reads back. Left out, because this
# build cannot write them or does not read back what it wrote:
# - AV1 in MPEG-TS: written, but read back as a data stream (bin_data), not video;
# - HEVC in AVI: read back as rawvideo (the demuxer has no tag for it): every packet fails;
# - VP9 and AV1 in MOV: the muxer writes no packet ("received no packets");
# - MJPEG and FFV1 in MPEG-TS: written as data streams (bin_data) too;
# - anything but VP8, VP9 and AV1 in WebM, MPEG-2 in FLV: the muxers refuse them;
# - 4:2:0 H.264 and HEVC at odd sizes: x264 and x265 refuse them (odd sizes use 4:4:4 or FFV1/VP9/PNG);
# - MPEG-1 at other than its standard rates (23.976-60): the encoder refuses 10 fps (all clips are 25).
GRID: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("mp4", "h264", ()), ("mp4", "hevc", ()), ("mp4", "mpeg4", ()), ("mp4", "mpeg2", ()), ("mp4", "mjpeg", ()),
    ("mp4", "vp9", ()), ("mp4", "av1", ()), ("mp4", "ffv1", ()),
    ("mov", "h264", ()), ("mov", "hevc", ("-tag:v", "hvc1")), ("mov", "mpeg4", ()), ("mov", "mpeg2", ()),
    ("mov", "mjpeg", ()), ("mov", "ffv1", ()), ("mov", "png", ()), ("mov", "qtrle", ()), ("mov", "prores", ()),
    ("mkv", "h264", ()), ("mkv", "hevc", ()), ("mkv", "vp8", ()), ("mkv", "vp9", ()), ("mkv", "av1", ()),
    ("mkv", "svtav1", ()), ("mkv", "rav1e", ()), ("mkv", "mpeg2", ()), ("mkv", "mpeg4", ()), ("mkv", "mjpeg", ()),
    ("mkv", "ffv1", ()), ("mkv", "png", ()),
    ("webm", "vp8", ()), ("webm", "vp9", ()), ("webm", "av1", ()),
    ("avi", "h264", ()), ("avi", "mpeg4", ()), ("avi", "mpeg2", ()), ("avi", "mjpeg", ()), ("avi", "ffv1", ()),
    ("avi", "vp8", ()), ("avi", "huffyuv", ()),
    ("ts", "h264", ()), ("ts", "hevc", ()), ("ts", "mpeg2", ()), ("ts", "mpeg4", ()),
    ("m2ts", "h264", ()), ("m2ts", "hevc", ()), ("m2ts", "mpeg2", ()),
    ("mpg", "mpeg2", ()), ("mpg", "mpeg1", ()), ("mpg", "h264", ()),
    ("3gp", "h264", ()), ("3gp", "mpeg4", ()),
    ("flv", "h264", ()), ("flv", "flv1", ()), ("flv", "hevc", ()), ("flv", "vp9", ()), ("flv", "av1", ()),
    ("gif", "gif", ()),
)
# Grid cells also decoded scaled (short_side=SCALED_SIDE): one per container and codec family.
SCALED_GRID = {"mp4-h264", "mov-prores", "mkv-vp9", "webm-av1", "avi-mjpeg", "ts-mpeg2", "m2ts-hevc", "mpg-mpeg1",
               "3gp-mpeg4", "flv-flv1", "gif-gif", "mkv-ffv1"}

# (id, ext, codec, pix_fmt, extra encoder args, record fields the contract fixes)
PIXEL_FORMATS: tuple[tuple[str, str, str, str, tuple[str, ...], dict], ...] = (
    ("mkv-h264-yuv422p", "mkv", "h264", "yuv422p", (), {"pix_fmt": "yuv422p"}),
    ("mkv-h264-yuv444p", "mkv", "h264", "yuv444p", (), {"pix_fmt": "yuv444p"}),
    ("mp4-h264-yuv420p10le", "mp4", "h264", "yuv420p10le", (), {"pix_fmt": "yuv420p10le"}),
    ("mkv-h264-yuv422p10le", "mkv", "h264", "yuv422p10le", (), {"pix_fmt": "yuv422p10le", "color_range": "tv"}),
    ("mkv-h264-gray", "mkv", "h264", "gray", (), {}),
    ("mp4-h264-yuvj420p", "mp4", "h264", "yuvj420p", (), {"color_range": "pc"}),
    ("mp4-h264-full-range", "mp4", "h264", "yuv420p", ("-color_range", "pc"), {"color_range": "pc"}),
    ("mkv-h264-limited-range", "mkv", "h264", "yuv420p", ("-color_range", "tv"),
     {"pix_fmt": "yuv420p", "color_range": "tv"}),
    ("mkv-hevc-yuv420p10le", "mkv", "hevc", "yuv420p10le", (), {"pix_fmt": "yuv420p10le", "color_range": "tv"}),
    ("mkv-hevc-yuv420p12le", "mkv", "hevc", "yuv420p12le", (), {"pix_fmt": "yuv420p12le"}),
    ("mp4-hevc-yuv444p", "mp4", "hevc", "yuv444p", (), {"pix_fmt": "yuv444p"}),
    ("mkv-hevc-gray", "mkv", "hevc", "gray", (), {"pix_fmt": "gray"}),
    ("webm-vp9-yuv444p", "webm", "vp9", "yuv444p", (), {"pix_fmt": "yuv444p"}),
    ("webm-vp9-yuv420p10le", "webm", "vp9", "yuv420p10le", (), {"pix_fmt": "yuv420p10le"}),
    ("mkv-av1-yuv420p10le", "mkv", "av1", "yuv420p10le", (), {"pix_fmt": "yuv420p10le"}),
    ("webm-av1-yuv444p", "webm", "av1", "yuv444p", (), {"pix_fmt": "yuv444p"}),
    ("mkv-ffv1-gray", "mkv", "ffv1", "gray", (), {"pix_fmt": "gray"}),
    ("mkv-ffv1-gray16le", "mkv", "ffv1", "gray16le", (), {"pix_fmt": "gray16le"}),
    ("mkv-ffv1-bgr0", "mkv", "ffv1", "bgr0", (), {"pix_fmt": "bgr0"}),
    ("mkv-ffv1-yuv420p10le", "mkv", "ffv1", "yuv420p10le", (), {"pix_fmt": "yuv420p10le"}),
    ("mkv-ffv1-yuv444p", "mkv", "ffv1", "yuv444p", (), {"pix_fmt": "yuv444p"}),
    ("mkv-ffv1-gbrp16le", "mkv", "ffv1", "gbrp16le", (), {"pix_fmt": "gbrp16le"}),
    ("mkv-png-rgb24", "mkv", "png", "rgb24", (), {"pix_fmt": "rgb24"}),
    ("mkv-png-gray", "mkv", "png", "gray", (), {"pix_fmt": "gray"}),
    ("mkv-png-gray16be", "mkv", "png", "gray16be", (), {"pix_fmt": "gray16be"}),
    ("mkv-png-rgb48be", "mkv", "png", "rgb48be", (), {"pix_fmt": "rgb48be"}),
    ("mov-png-pal8", "mov", "png", "pal8", (), {"pix_fmt": "pal8"}),
    ("avi-mjpeg-yuvj422p", "avi", "mjpeg", "yuvj422p", (), {"color_range": "pc"}),
    ("mkv-mjpeg-yuvj444p", "mkv", "mjpeg", "yuvj444p", (), {"color_range": "pc"}),
    ("mpg-mpeg2-yuv422p", "mpg", "mpeg2", "yuv422p", (), {"pix_fmt": "yuv422p"}),
    ("mov-prores-yuv422p10le", "mov", "prores", "yuv422p10le", (), {"pix_fmt": "yuv422p10le"}),
    ("avi-rawvideo-yuyv422", "avi", "rawvideo", "yuyv422", (), {"pix_fmt": "yuyv422"}),
    ("avi-rawvideo-bgr24", "avi", "rawvideo", "bgr24", (), {"pix_fmt": "bgr24"}),
    ("mkv-x264rgb-bgr24", "mkv", "x264rgb", "bgr24", (), {}),
    ("avi-huffyuv-rgb24", "avi", "huffyuv", "rgb24", (), {}),
    # With alpha (stored as RGB: the alpha plane is dropped, as ffmpeg's rgb24 conversion drops it).
    ("webm-vp9-yuva420p", "webm", "vp9", "yuva420p", (), {}),
    ("webm-vp8-yuva420p", "webm", "vp8", "yuva420p", ("-auto-alt-ref", "0"), {}),
    ("mov-png-rgba", "mov", "png", "rgba", (), {"pix_fmt": "rgba"}),
    ("mov-qtrle-argb", "mov", "qtrle", "argb", (), {"pix_fmt": "argb"}),
    ("mov-prores-yuva444p10le", "mov", "prores", "yuva444p10le", ("-profile:v", "4444"),
     {"pix_fmt": "yuva444p12le"}),  # the ProRes decoder gives 4444 as 12-bit
    ("mkv-ffv1-yuva420p", "mkv", "ffv1", "yuva420p", (), {"pix_fmt": "yuva420p"}),
    ("avi-utvideo-gbrap", "avi", "utvideo", "gbrap", (), {"pix_fmt": "gbrap"}),
)
SCALED_PIXEL_FORMATS = {"mp4-h264-yuv420p10le", "mkv-ffv1-gray16le", "mov-png-pal8", "webm-vp9-yuva420p",
                        "mkv-hevc-yuv420p12le", "mp4-h264-yuvj420p"}


def two_streams(key: str, ext: str, first: str, second: str, *mux: str) -> Source:
    """Two H.264 video streams muxed into one file: ``first`` is testsrc2 at that size, ``second``
    testsrc (another picture, so a wrong choice shows in the frames as well as the index)."""
    return Source(key, f"clip.{ext}", (
        Encode((*lavfi(first), *X264, "-pix_fmt", "yuv420p", "a.mkv")),
        Encode((*lavfi(second, pattern="testsrc"), *X264, "-pix_fmt", "yuv420p", "b.mkv")),
        Encode(("-i", "a.mkv", "-i", "b.mkv", "-map", "0:v", "-map", "1:v", "-c", "copy", *mux, f"clip.{ext}")),
    ))


def joined(key: str, ext: str, codec: str, first: str, second: str, *, continuous: bool) -> Source:
    """Two MPEG-TS clips (``first`` then ``second`` in size, 6 frames each) joined with cat.
    ``continuous``: the second's timestamps follow the first's (a size change only); otherwise
    both start at the same time (a PTS discontinuity, as joined captures have).

    Both start 10 s in, so neither has a negative DTS for the muxer to shift away (it shifts by
    the encoder's delay, which would make the two parts overlap or leave a gap)."""
    second_start = 10 + (6 / RATE if continuous else 0)
    first_ts, second_ts = f"a.{ext}", f"b.{ext}"
    return Source(key, f"clip.{ext}", (
        Encode((*lavfi(first, frames=6), *CODECS[codec], "-g", "6", "-bf", "0", "-output_ts_offset", "10",
                first_ts)),
        Encode((*lavfi(second, frames=6, vf="hflip"), *CODECS[codec], "-g", "6", "-bf", "0",
                "-output_ts_offset", f"{second_start}", second_ts)),
        Join((first_ts, second_ts), f"clip.{ext}"),
    ))


def cases() -> list[Case]:
    """Every cell of the matrix, in a stable order."""
    out: list[Case] = []

    def add(case_id: str, source: Source, expect: Expect = Oracle(), params: DecodeParams = NATIVE,
            scaled: bool = False, **record: object) -> None:
        out.append(Case(case_id, source, params, expect, dict(record)))
        if scaled:
            out.append(Case(f"{case_id}@{SCALED_SIDE}", source, params.model_copy(update={"short_side": SCALED_SIDE}),
                            expect, dict(record)))

    # Containers × codecs, in each codec's default pixel format.
    for ext, codec, extra in GRID:
        size = BIG if codec == "h263" else TINY
        add(f"{ext}-{codec}", encoded(f"{ext}-{codec}", ext, codec, *extra, size=size),
            scaled=f"{ext}-{codec}" in SCALED_GRID)
    add("3gp-h263", encoded("3gp-h263", "3gp", "h263", size=BIG), scaled=True)  # H.263: CIF family sizes only
    add("mkv-h264-upscaled", encoded("mkv-h264", "mkv", "h264"), params=NATIVE.model_copy(update={"short_side": 72}))

    # Pixel formats, depths, ranges, alpha.
    for case_id, ext, codec, pix_fmt, extra, record in PIXEL_FORMATS:
        add(case_id, encoded(case_id, ext, codec, "-pix_fmt", pix_fmt, *extra), scaled=case_id in SCALED_PIXEL_FORMATS,
            **record)

    # Geometry: odd sizes (codecs that allow them), non-square pixels, rotation.
    add("mkv-ffv1-gray-odd", encoded("mkv-ffv1-gray-odd", "mkv", "ffv1", "-pix_fmt", "gray", size="65x47"), scaled=True)
    add("avi-ffv1-odd", encoded("avi-ffv1-odd", "avi", "ffv1", size="63x49"))
    add("mkv-h264-yuv444p-odd", encoded("mkv-h264-yuv444p-odd", "mkv", "h264", "-pix_fmt", "yuv444p", size="63x47"))
    add("webm-vp9-odd", encoded("webm-vp9-odd", "webm", "vp9", size="63x47"))
    add("mkv-vp8-odd", encoded("mkv-vp8-odd", "mkv", "vp8", size="65x49"))
    add("mkv-av1-odd", encoded("mkv-av1-odd", "mkv", "av1", size="63x47"))
    add("mov-png-odd", encoded("mov-png-odd", "mov", "png", size="65x49"))
    add("avi-mjpeg-odd", encoded("avi-mjpeg-odd", "avi", "mjpeg", size="63x47"))
    add("mp4-h264-sar2", encoded("mp4-h264-sar2", "mp4", "h264", vf="setsar=2/1"), scaled=True)
    add("mkv-ffv1-sar3-4", encoded("mkv-ffv1-sar3-4", "mkv", "ffv1", vf="setsar=3/4"))
    add("mpg-mpeg2-dar16-9", encoded("mpg-mpeg2-dar16-9", "mpg", "mpeg2", "-aspect", "16:9"))
    add("avi-mpeg4-sar12-11", encoded("avi-mpeg4-sar12-11", "avi", "mpeg4", vf="setsar=12/11"))
    add("mkv-vp9-sar2", encoded("mkv-vp9-sar2", "mkv", "vp9", vf="setsar=2/1"))
    for ext, codec, degrees in (("mp4", "h264", 90), ("mov", "hevc", 270), ("mkv", "vp9", 180), ("webm", "vp9", 90),
                                ("mp4", "mjpeg", 270)):
        key = f"{ext}-{codec}-rot{degrees}"
        add(key, Source(key, f"clip.{ext}", (
            Encode((*lavfi(), *CODECS[codec], f"plain.{ext}")),
            Encode(("-display_rotation", str(degrees), "-i", f"plain.{ext}", "-c", "copy", f"clip.{ext}")),
        )), scaled=key == "mp4-h264-rot90")

    # Several video streams: ffmpeg's rule picks (default disposition first, then the larger).
    both = ("-disposition:v:0", "default", "-disposition:v:1", "default")
    first_only = ("-disposition:v:0", "default", "-disposition:v:1", "0")
    second_only = ("-disposition:v:0", "0", "-disposition:v:1", "default")
    neither = ("-disposition:v:0", "0", "-disposition:v:1", "0")
    streams = streams_listed(2, attached=())
    add("mkv-2v-both-default", two_streams("mkv-2v-both-default", "mkv", TINY, BIG, *both),
        video_streams=streams_listed(2, default=(0, 1)))
    add("mkv-2v-first-default", two_streams("mkv-2v-first-default", "mkv", TINY, BIG, *first_only),
        video_streams=streams_listed(2, default=(0,)))
    add("mkv-2v-big-first-small-default", two_streams("mkv-2v-big-first-small-default", "mkv", BIG, TINY,
                                                      *second_only), scaled=True, video_streams=streams)
    add("mkv-2v-no-default", two_streams("mkv-2v-no-default", "mkv", TINY, BIG, *neither, "-default_mode",
                                         "passthrough"), video_streams=streams_listed(2, default=()))
    add("mkv-2v-same-size-second-default", two_streams("mkv-2v-same-size-second-default", "mkv", TINY, TINY,
                                                       *second_only), video_streams=streams)
    add("mkv-2v-same-size-no-default", two_streams("mkv-2v-same-size-no-default", "mkv", TINY, TINY, *neither,
                                                   "-default_mode", "passthrough"), video_streams=streams)
    add("mp4-2v-none-marked", two_streams("mp4-2v-none-marked", "mp4", TINY, BIG, *neither), video_streams=streams)
    add("mp4-2v-big-first-small-default", two_streams("mp4-2v-big-first-small-default", "mp4", BIG, TINY,
                                                      *second_only), video_streams=streams)
    add("mov-2v-second-default", two_streams("mov-2v-second-default", "mov", TINY, BIG, *second_only),
        video_streams=streams)
    add("ts-2v", two_streams("ts-2v", "ts", TINY, BIG), video_streams=streams)

    # Cover art: an attached picture is never the video, whatever its size.
    cover_png = Encode(("-f", "lavfi", "-i", "color=red:size=160x120", "-frames:v", "1", "cover.png"))
    cover_jpg = Encode(("-f", "lavfi", "-i", "color=red:size=160x120", "-frames:v", "1", "cover.jpg"))
    video = Encode((*lavfi(), *X264, "-pix_fmt", "yuv420p", "video.mp4"))
    add("mp4-cover-first", Source("mp4-cover-first", "clip.mp4", (cover_png, video, Encode((
        "-i", "cover.png", "-i", "video.mp4", "-map", "0", "-map", "1", "-c:v:0", "png", "-c:v:1", "copy",
        "-disposition:v:0", "attached_pic", "clip.mp4")))), video_streams=streams_listed(2, attached=(1,)))
    add("mkv-cover-attachment", Source("mkv-cover-attachment", "clip.mkv", (cover_jpg, video, Encode((
        "-i", "video.mp4", "-attach", "cover.jpg", "-metadata:s:t", "mimetype=image/jpeg", "-c", "copy",
        "clip.mkv")))), video_streams=streams_listed(2, attached=(1,)))
    # A PNG video track (no attached_pic: Matroska keeps that disposition only for attachments)
    # before the default video: the default wins.
    add("mkv-png-track-first", Source("mkv-png-track-first", "clip.mkv", (cover_png, video, Encode((
        "-i", "cover.png", "-i", "video.mp4", "-map", "0", "-map", "1", "-c", "copy",
        "-disposition:v:0", "0", "-disposition:v:1", "default", "clip.mkv")))), video_streams=streams)
    add("mp4-cover-only", Source("mp4-cover-only", "clip.mp4", (cover_png, Encode((
        "-f", "lavfi", "-i", "sine=d=1", "-i", "cover.png", "-map", "0", "-map", "1", "-c:a", "aac", "-c:v", "png",
        "-disposition:v:0", "attached_pic", "clip.mp4")))), Fails("attached picture"))

    # A size change mid-stream: the same display aspect is scaled to the first size, another fails.
    add("ts-h264-size-change", joined("ts-h264-size-change", "ts", "h264", BIG, TINY, continuous=True), scaled=True,
        geometry_changes=entries_at(6, width=64, height=48))
    # FFmpeg's MPEG-2 decoder loses the picture it holds back when a sequence header changes the
    # size: ffmpeg (and PyAV) show 11 of the 12 frames. A frame the stream holds is missing, so the
    # video fails saying so (stored only with --on-decode-error keep).
    add("ts-mpeg2-size-change", joined("ts-mpeg2-size-change", "ts", "mpeg2", BIG, TINY, continuous=True),
        Fails("decoded 11 of the 12 frames the stream holds (the picture changes size at decoded frame 5"))
    add("mkv-h264-size-change", Source("mkv-h264-size-change", "clip.mkv", (
        *joined("ts", "ts", "h264", BIG, TINY, continuous=True).steps,
        Encode(("-i", "clip.ts", "-c", "copy", "clip.mkv")))), geometry_changes=entries_at(6, width=64, height=48))
    add("ts-h264-shape-change", joined("ts-h264-shape-change", "ts", "h264", "96x64", "64x64", continuous=True),
        Fails("changes shape"))
    add("ts-mpeg2-shape-change", joined("ts-mpeg2-shape-change", "ts", "mpeg2", TINY, "64x64", continuous=True),
        Fails("changes shape"))

    # Time: variable frame rate (four frames at 25 fps, then gaps of 3-4 frames).
    vfr = "setpts='if(lt(N,4),N,3+(N-3)*3+mod(N,2))/(25*TB)'"
    for ext, codec in (("mp4", "h264"), ("mkv", "vp9"), ("webm", "vp8"), ("mov", "mjpeg"), ("flv", "h264"),
                       ("ts", "h264")):
        key = f"{ext}-{codec}-vfr"
        add(key, encoded(key, ext, codec, "-fps_mode", "passthrough", vf=vfr, frames=10), scaled=key == "mp4-h264-vfr")
    # Edit lists: `-ss … -c copy` keeps the GOP from the keyframe before and cuts it with an edit
    # list (MP4, MOV); Matroska has none, so its copy shows those frames.
    for ext, codec in (("mp4", "h264"), ("mov", "h264"), ("mp4", "hevc"), ("3gp", "h264"), ("mkv", "h264")):
        key = f"{ext}-{codec}-trim"
        add(key, Source(key, f"clip.{ext}", (
            Encode((*lavfi(frames=16), *CODECS[codec], "-g", "6", "full.mp4")),
            Encode(("-ss", "0.3", "-i", "full.mp4", "-t", "0.24", "-c", "copy", f"clip.{ext}")),
        )), scaled=key == "mp4-h264-trim")
    # Start offsets.
    for ext, codec, offset in (("mp4", "h264", "10"), ("mkv", "vp9", "10"), ("ts", "h264", "36000"),
                               ("flv", "h264", "5")):
        key = f"{ext}-{codec}-start-offset"
        add(key, encoded(key, ext, codec, "-output_ts_offset", offset))
    # PTS discontinuities: two MPEG-TS files joined with cat, both starting at the same time.
    for ext, codec in (("ts", "h264"), ("ts", "mpeg2"), ("m2ts", "h264")):
        key = f"{ext}-{codec}-joined"
        add(key, joined(key, ext, codec, TINY, TINY, continuous=False), scaled=key == "ts-h264-joined",
            timestamp_discontinuities=entries_at(6), fps=approx(RATE))
    # The 33-bit PTS wraps about 0.5 s into the clip (2^33 / 90 kHz = 95443.7 s; the muxer adds ~1.4 s).
    for codec in ("h264", "mpeg2", "hevc"):
        key = f"ts-{codec}-pts-wrap"
        add(key, encoded(key, "ts", codec, "-output_ts_offset", "95441.8", frames=12))
    # B-frames (AVI keeps no presentation times: they come from the decoder's reordering).
    for ext, codec, extra in (("mp4", "h264", ("-bf", "3")), ("avi", "h264", ("-bf", "3")),
                              ("avi", "mpeg4", ("-bf", "2")), ("mkv", "hevc", ()), ("flv", "h264", ("-bf", "3")),
                              ("mpg", "mpeg2", ("-bf", "2")), ("mp4", "mpeg4", ("-bf", "2"))):
        key = f"{ext}-{codec}-bframes"
        add(key, encoded(key, ext, codec, *extra, "-g", "6", frames=12))
    # Open GOPs: leading B-frames of a GOP reference the one before.
    open_gop = ("-x264-params", "open-gop=1:keyint=6:min-keyint=6:bframes=2:scenecut=0")
    for ext in ("ts", "mkv", "mp4"):
        key = f"{ext}-h264-open-gop"
        add(key, encoded(key, ext, "h264", *open_gop, frames=12))
    add("mkv-hevc-open-gop", encoded("mkv-hevc-open-gop", "mkv", "hevc", "-x265-params",
                                     "log-level=error:pools=none:frame-threads=1:keyint=6:min-keyint=6:open-gop=1",
                                     frames=12))
    # A capture cut mid-GOP: stored from its first keyframe on.
    for codec, extra, packet in (("h264", ("-g", "6", "-bf", "2"), 1), ("h264", open_gop, 1),
                                 ("mpeg2", ("-g", "6", "-bf", "2"), 1),
                                 ("hevc", ("-x265-params", "log-level=error:pools=none:keyint=6:bframes=2"), 1)):
        key = f"ts-{codec}-cut-mid-gop" + ("-open-gop" if extra is open_gop else "")
        add(key, Source(key, "clip.ts", (
            Encode((*lavfi(frames=12), *CODECS[codec], *extra, "full.ts")), CutTs("full.ts", "clip.ts", packet))),
            Oracle(from_keyframe=True), scaled=key == "ts-h264-cut-mid-gop", leading_frames_dropped=positive())

    # Interlaced: deinterlaced with BWDIF before the scale.
    tff = MOVING_EDGE + ",tinterlace=mode=interleave_top,setfield=tff"
    bff = MOVING_EDGE + ",tinterlace=mode=interleave_bottom,setfield=bff"
    interlaced = {
        "ts-h264-interlaced-tff": ("ts", "h264", tff, ("-x264-params", "interlaced=1:tff=1"), INTERLACED_FIELD_ORDERS),
        "mkv-h264-interlaced-tff": ("mkv", "h264", tff, ("-x264-params", "interlaced=1"), INTERLACED_FIELD_ORDERS),
        "ts-h264-interlaced-bff": ("ts", "h264", bff, ("-x264-params", "bff=1"), INTERLACED_FIELD_ORDERS),
        "ts-mpeg2-interlaced-tff": ("ts", "mpeg2", tff, ("-flags", "+ildct+ilme"), "tt"),
        "mpg-mpeg2-interlaced-bff": ("mpg", "mpeg2", bff, ("-flags", "+ildct+ilme"), "bb"),
    }
    for key, (ext, codec, graph, extra, order) in interlaced.items():
        source = Source(key, f"clip.{ext}", (Encode((*lavfi(rate=50, pattern="nullsrc", vf=graph), *CODECS[codec],
                                                     *extra, f"clip.{ext}")),))
        add(key, source, Oracle(pre_filter=BWDIF), scaled=key == "ts-mpeg2-interlaced-tff", field_order=order,
            deinterlace=NAMES_BWDIF)
        if key in ("ts-mpeg2-interlaced-tff", "mkv-h264-interlaced-tff"):
            add(f"{key}-no-combs", source, Property(no_combs))

    # HDR: PQ or HLG transfer, BT.2020 primaries; tone-mapped to BT.709 SDR.
    # (The encoders' -color_trc/-color_primaries options do not reach the stream in ffmpeg 9: the
    # frames' own tags win, and zscale sets them on the frames.)
    for key, ext, codec, trc in (("mkv-hevc-pq", "mkv", "hevc", "smpte2084"),
                                 ("mp4-hevc-hlg", "mp4", "hevc", "arib-std-b67"),
                                 ("webm-vp9-pq", "webm", "vp9", "smpte2084"),
                                 ("mp4-av1-pq", "mp4", "av1", "smpte2084")):
        add(key, encoded(key, ext, codec, vf=hdr_from_sdr(trc)),
            Property(looks_sdr), color_transfer=trc, color_primaries="bt2020",
            tone_mapping=non_empty_string(), pix_fmt="yuv420p10le")

    # Not videos: inputs that make ffmpeg read other files, and a FIFO.
    add("m3u8-hls-playlist", Source("m3u8-hls-playlist", "clip.m3u8", (Encode((
        *lavfi(frames=12), *X264, "-g", "5", "-f", "hls", "-hls_time", "0.2", "-hls_list_size", "0",
        "-hls_segment_filename", "segment%d.ts", "clip.m3u8")),)), Fails("reads other files"))
    add("ffconcat-list", Source("ffconcat-list", "clip.ffconcat", (
        Encode((*lavfi(), *X264, "a.mp4")), Encode((*lavfi(vf="hflip"), *X264, "b.mp4")),
        Text("clip.ffconcat", "ffconcat version 1.0\nfile a.mp4\nfile b.mp4\n"))), Fails("reads other files"))
    add("mp4-fifo", Source("mp4-fifo", "clip.mp4", (Fifo("clip.mp4"),)), Fails("not a regular file"))

    # Found by trying files as a new user would (docs/ingest.md, "The decoder contract").
    # An AVI whose index lists dropped frames (empty chunks, as capture tools write): not truncated.
    add("avi-mpeg4-dropped-frames", encoded("avi-mpeg4-dropped-frames", "avi", "mpeg4", "-fps_mode", "passthrough",
                                            vf="setpts='if(gt(N,3),PTS+2,PTS)'"))
    # Xvid with packed B-frames: placeholder packets, and ffmpeg's decoder shows what it shows.
    add("avi-xvid-packed-b-frames", encoded("avi-xvid-packed-b-frames", "avi", "xvid", "-bf", "2", "-vtag", "XVID",
                                            frames=12))
    # Open GOPs cut exactly at a keyframe: its leading pictures reference the GOP before and are dropped.
    for codec, extra in (("h264", ("-g", "6", "-bf", "3", "-x264opts", "open-gop=1")),
                         ("hevc", ("-x265-params", "log-level=error:pools=none:keyint=6:open-gop=1:bframes=3:"
                                                   "repeat-headers=1"))):
        key = f"ts-{codec}-cut-at-open-gop-keyframe"
        add(key, Source(key, "clip.ts", (Encode((*lavfi(frames=18), *CODECS[codec], *extra, "full.ts")),
                                         CutTsAtKey("full.ts", "clip.ts", 1))),
            Oracle(from_keyframe=True), leading_frames_dropped=positive())
    # A display matrix that mirrors as well as rotates: applied as ffmpeg applies it, and recorded.
    for key, flags in (("mp4-h264-hflip", ("-display_hflip",)),
                       ("mp4-h264-rot90-vflip", ("-display_rotation", "90", "-display_vflip"))):
        add(key, Source(key, "clip.mp4", (Encode((*lavfi(), *X264, "plain.mp4")),
                                          Encode((*flags, "-i", "plain.mp4", "-c", "copy", "clip.mp4")))),
            mirrored=True)
    # Animated images are videos whatever their name; a still image named .mp4 is not.
    add("apng-animated", encoded("apng-animated", "png", "apng", "-plays", "0", "-f", "apng"))
    add("webp-animated", encoded("webp-animated", "webp", "webp_anim", "-loop", "0"), Fails("an animated image"))
    add("mp4-still-jpeg", Source("mp4-still-jpeg", "clip.mp4", (
        Encode((*lavfi(frames=1), "-f", "image2", "-c:v", "mjpeg", "clip.mp4")),)), Fails("a still image"))
    # An MP4 recording cut off before its index (moov at the end) was written.
    add("mp4-moov-missing", Source("mp4-moov-missing", "clip.mp4", (
        Encode((*lavfi(frames=50), *X264, "full.mp4")), Truncate("full.mp4", "clip.mp4", 0.6))),
        Fails("moov atom) is missing"))
    return out
