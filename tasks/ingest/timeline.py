"""What a decode showed, held to the decoder contract: one picture shape, one clock (docs/ingest.md).

Pure functions on what ffmpeg reported frame by frame (``tasks.io.ffmpeg.FfmpegDecode``):
- ``check_geometry``: every decoded picture is stored at the video's one size; a picture whose
  display aspect differs from that size by more than a pixel would be stretched, so the video
  fails naming the frame where the shape changes. Changes that keep the shape (a stream that
  switches resolution) are stored and recorded.
- ``continuous_clock``: presentation times that go back (two recordings joined, a clock reset)
  start a new segment, placed one frame interval after the frame before; a repeated time is placed
  half-way to the next; each is recorded. Forward gaps are the file's own timing (a variable-rate
  clip) and stay.
- ``frame_rate``: constant or variable, and the mean rate, from the stored clock.
"""

from __future__ import annotations

import numpy as np

from storage_schemas.records import GeometryChange, TimestampDiscontinuity
from tasks.io.ffmpeg import Geometry
from tasks.io.probe import VideoError

# A stream is variable-rate when its frame intervals spread by more than this fraction of the
# median interval (timestamp rounding in a 1/1000 time base stays far below it).
VARIABLE_RATE_SPREAD = 0.5


def _sar(geometry: Geometry) -> str:
    return f"{geometry.sar.numerator}:{geometry.sar.denominator}"


def _shape(geometry: Geometry) -> str:
    dar = geometry.width * geometry.sar / geometry.height
    return f"{geometry.width}×{geometry.height}, SAR {_sar(geometry)}, display aspect {float(dar):.3f}"


def fits(geometry: Geometry, width: int, height: int) -> bool:
    """True when ``geometry``'s picture, shown at its display aspect, scales to ``width`` ×
    ``height`` with at most one pixel of distortion on either side."""
    dar = float(geometry.width * geometry.sar / geometry.height)
    return abs(height * dar - width) <= 1.0 and abs(width / dar - height) <= 1.0


def check_geometry(geometry: list[Geometry], width: int, height: int) -> list[GeometryChange]:
    """The changes after the first picture, as records; raises VideoError at the first picture that
    does not fit ``width`` × ``height`` (the size every frame of the video is stored at)."""
    for found in geometry:
        if not fits(found, width, height):
            where = f"frame {found.frame}" + (f" ({found.time:.3f} s)" if found.time is not None else "")
            before = geometry[0] if found is not geometry[0] else None
            was = f" from {_shape(before)}" if before else ""
            raise VideoError(f"the picture changes shape at {where}{was} to {_shape(found)}; stored at {width}×{height} "
                             "it would be stretched (vmac keeps one shape per video: split the file where it changes)")
    return [GeometryChange(frame=g.frame, time=g.time, width=g.width, height=g.height, sample_aspect_ratio=_sar(g),
                           pix_fmt=g.pix_fmt) for g in geometry[1:]]


def continuous_clock(times_t: np.ndarray) -> tuple[np.ndarray, list[TimestampDiscontinuity]]:
    """(seconds from the first frame, strictly increasing; the jumps). A time before its
    predecessor (or missing) starts a segment one median frame interval after the frame before it.
    A time equal to its predecessor's (a repeated timestamp) is placed half-way to the next frame's
    time, and nothing after it moves."""
    times_t = np.asarray(times_t, dtype=np.float64)
    if len(times_t) == 0:
        return times_t, []
    gaps = np.diff(times_t)
    good = gaps[np.isfinite(gaps) & (gaps > 0)]
    interval = float(np.median(good)) if len(good) else 1.0
    out = np.zeros_like(times_t)
    jumps: list[TimestampDiscontinuity] = []
    offset = -times_t[0] if np.isfinite(times_t[0]) else 0.0  # added to the current segment's own times
    for k in range(1, len(times_t)):
        here, before = times_t[k], times_t[k - 1]
        if np.isfinite(here) and np.isfinite(before) and here > before:
            out[k] = here + offset
            continue
        if np.isfinite(here) and here == before:
            later = times_t[k + 1:][times_t[k + 1:] > here]
            following = later[0] + offset if len(later) and np.isfinite(later[0]) else out[k - 1] + 2 * interval
            out[k] = (out[k - 1] + following) / 2
            jumps.append(TimestampDiscontinuity(frame=k, before=float(before), after=float(here)))
            continue
        # A missing time, or a clock that went back: one interval on, and a new segment from here.
        out[k] = out[k - 1] + interval
        if np.isfinite(here):
            offset = out[k] - here
            if np.isfinite(before):
                jumps.append(TimestampDiscontinuity(frame=k, before=float(before), after=float(here)))
    return out, jumps


def frame_rate(timestamps_t: np.ndarray, resampled_to: float | None) -> tuple[str, float | None]:
    """(frame_rate_mode, fps) of a stored clock: resampled to a given rate, or constant or
    variable as decoded, with the mean rate over the stored span (a joined file's jumps count as
    one frame interval, so the rate is each segment's)."""
    if resampled_to:
        return "resampled", resampled_to
    if len(timestamps_t) < 2 or timestamps_t[-1] <= timestamps_t[0]:
        return "constant", None
    gaps = np.diff(timestamps_t)
    mean_rate = (len(timestamps_t) - 1) / float(timestamps_t[-1] - timestamps_t[0])
    spread = (gaps.max() - gaps.min()) / max(float(np.median(gaps)), 1e-9)
    # Rounded to a millisecond of a frame per second: the time base's rounding is not information.
    return ("variable" if spread > VARIABLE_RATE_SPREAD else "constant"), round(mean_rate, 3)
