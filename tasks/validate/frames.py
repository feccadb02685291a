"""The frame-statistics table: per complete video, statistics of a sample of its frames and the
label ids of its masks.

Frame sampling: ``sample_windows`` contiguous windows of ``sample_frames_per_video //
sample_windows`` frames, evenly spread so the first starts at frame 0 and the last ends at the
last frame (the whole video when it has at most ``sample_frames_per_video`` frames). Contiguous
windows, not a stride, because a frozen run is a property of *consecutive* frames; spreading them
still covers the opening and closing frames, where fades to black and frozen tails sit. A frozen
run is measured within one window, so runs longer than a window are reported as the window
length (still > K, which ``ValidateConfig`` guarantees a window can show). Masks are read whole,
in blocks: label ids are discrete, one stray id in one frame matters to label propagation, and
masks compress far better than frames.
"""

from __future__ import annotations

import numpy as np

from storage_schemas.layout import FRAMES, MASKS, NOT_ANNOTATED
from storage_schemas.records import VideoRecord
from storage_schemas.validation import ValidateConfig, ValidationThresholds
from tasks.io.store import UnreadableFramesError, frames_sha256

MASK_BLOCK_FRAMES = 256  # masks are read whole, this many frames per read
LISTED_FRAMES = 8  # at most this many frame indices are listed per video in a stats column

FRAME_STATS_COLUMNS = [
    "video_id", "object_ids", "sampled_windows", "sampled_frames", "sample_mean", "sample_std",
    "black_frame_fraction", "black_frames", "constant_frame_fraction", "constant_frames",
    "longest_frozen_run", "frozen_run_frames", "mask_ids", "undeclared_mask_ids", "read_error", "frames_check",
]


def sample_windows(frame_count: int, config: ValidateConfig) -> list[tuple[int, int]]:
    """[start, stop) windows of frames to read: the whole video, or evenly spread windows."""
    if frame_count <= config.sample_frames_per_video:
        return [(0, frame_count)] if frame_count else []
    length = config.window_frames
    starts = np.linspace(0, frame_count - length, config.sample_windows).round().astype(int)
    return [(int(s), int(s) + length) for s in starts]


def longest_frozen_run(windows: list[tuple[int, np.ndarray]], level_max: float) -> tuple[int, int | None]:
    """(length in frames, first frame index) of the longest run of frames showing the same picture
    within one window: each frame of a run differs from the run's first frame by at most
    ``level_max`` levels at every sample. Compared with the run's first frame, not the frame
    before, so a slow fade or pan that moves each sample by a level a frame ends its run within a
    few frames. ``windows`` as in ``frame_statistics``; (0, None) without frames."""
    longest, longest_at = 0, None
    for start, block_thwc in windows:
        flat_tn = block_thwc.reshape(len(block_thwc), -1)
        anchor = 0
        for t in range(len(block_thwc)):
            if t and np.abs(flat_tn[t].astype(np.int16) - flat_tn[anchor]).max() > level_max:
                anchor = t
            if t - anchor + 1 > longest:
                longest, longest_at = t - anchor + 1, start + anchor
    return longest, longest_at


def frame_statistics(windows: list[tuple[int, np.ndarray]], thresholds: ValidationThresholds) -> dict:
    """Statistics of sampled frames; ``windows`` holds (first frame index, frames (t, H, W, 3) uint8).

    A frame is black when its mean is at most ``black_mean_max``; constant when it is not black
    and its std is at most ``constant_std_max``. A frozen run is a maximal stretch of frames
    showing the same picture (``longest_frozen_run`` with ``frozen_level_max``), counted in
    frames (1 = no freeze).
    """
    if not windows:
        return {}
    flats = [(start, block_thwc.reshape(len(block_thwc), -1)) for start, block_thwc in windows]
    mean_t = np.concatenate([flat_tn.mean(axis=1, dtype=np.float64) for _, flat_tn in flats])
    std_t = np.concatenate([flat_tn.std(axis=1, dtype=np.float64) for _, flat_tn in flats])
    index_t = np.concatenate([np.arange(start, start + len(flat_tn)) for start, flat_tn in flats])
    longest, longest_at = longest_frozen_run(windows, thresholds.frozen_level_max)
    black_t = mean_t <= thresholds.black_mean_max
    constant_t = ~black_t & (std_t <= thresholds.constant_std_max)
    return {
        "sampled_frames": int(len(mean_t)),
        "sample_mean": float(mean_t.mean()),
        "sample_std": float(std_t.mean()),
        "black_frame_fraction": float(black_t.mean()),
        "black_frames": _frame_list(index_t[black_t]),
        "constant_frame_fraction": float(constant_t.mean()),
        "constant_frames": _frame_list(index_t[constant_t]),
        "longest_frozen_run": int(longest),
        "frozen_run_frames": f"{longest_at}-{longest_at + longest - 1}" if longest > 1 else None,
    }


def _frame_list(indices: np.ndarray) -> str | None:
    if not len(indices):
        return None
    shown = ", ".join(str(int(i)) for i in indices[:LISTED_FRAMES])
    return shown + (f", … ({len(indices)} in all)" if len(indices) > LISTED_FRAMES else "")


def mask_ids(masks) -> set[int]:
    """Label ids present anywhere in a masks array, without 0 (background) and 255 (not annotated)."""
    seen = np.zeros(256, bool)
    for start in range(0, masks.shape[0], MASK_BLOCK_FRAMES):
        seen |= np.bincount(np.asarray(masks[start : start + MASK_BLOCK_FRAMES]).ravel(), minlength=256) > 0
    return set(np.flatnonzero(seen).tolist()) - {0, NOT_ANNOTATED}


def frames_check(group, recorded: str | None) -> str | None:
    """None when the video's stored frames hash to ``recorded`` (its record's frames_sha256);
    else one line saying what is wrong: missing, unreadable (which frames) or changed."""
    if recorded is None:
        return "the record holds no frames_sha256 to check the stored frames against"
    if FRAMES not in group:
        return "no frames array"
    try:
        found = frames_sha256(group[FRAMES])
    except UnreadableFramesError as exc:
        return str(exc)
    if found != recorded:
        return "changed: the stored frames no longer hash to the record's frames_sha256 (written after ingest)"
    return None


def video_stats(group, video_id: str, object_ids: list[int], config: ValidateConfig) -> dict:
    """The frame-statistics row of one complete video; a read failure becomes ``read_error``."""
    row: dict = {"video_id": video_id}
    try:
        if FRAMES in group:
            frames = group[FRAMES]
            windows = sample_windows(frames.shape[0], config)
            row["sampled_windows"] = ", ".join(f"{a}-{b - 1}" for a, b in windows)
            row.update(frame_statistics([(a, frames[a:b]) for a, b in windows], config.thresholds))
        if MASKS in group:
            present = mask_ids(group[MASKS])
            undeclared = sorted(present - set(object_ids))
            row["mask_ids"] = ", ".join(map(str, sorted(present)))
            row["undeclared_mask_ids"] = ", ".join(map(str, undeclared)) if undeclared else None
    except Exception as exc:  # noqa: BLE001 - any unreadable chunk is a finding about the store, not a crash
        row["read_error"] = f"{exc.__class__.__name__}: {exc}".splitlines()[0][:300]
    return row


def video_row(group, video_id: str, record: VideoRecord, config: ValidateConfig) -> dict:
    """The frame-statistics row of one complete video read from its version folder ``group``:
    ``video_stats``, its declared object ids, and ``frames_check`` (every stored frame re-hashed)."""
    row = video_stats(group, video_id, record.object_ids, config)
    row["object_ids"] = ", ".join(str(i) for i in record.object_ids)
    row["frames_check"] = frames_check(group, record.frames_sha256)
    return row
