"""The two tables Great Expectations sees, both small (one row per video), built from a store:

- the *catalog*: every video's record in one snapshot of the store (complete, failed or
  unreadable) plus the shapes of the arrays actually stored, and the shapes the record implies;
- the *frame statistics* (``tasks.validate.frames``): per complete video, statistics of a sample
  of its frames, the label ids of its masks, and whether all its stored frames still hash to the
  record's ``frames_sha256``. A video the last validation read at the same version folder,
  record and sampling is not read again (``tasks.validate.reuse``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from storage_schemas.layout import FRAMES, KEYPOINTS, MASKS, MOTION, MOTION_CELL
from storage_schemas.records import Status, VideoRecord
from storage_schemas.validation import CATALOG_TABLE, ValidateConfig
from tasks.io.store import UNREADABLE, Snapshot, fingerprint_of, open_snapshot
from tasks.validate.reuse import frame_stats_rows

CATALOG_COLUMNS = [
    "video_id", "status", "reason", "source_uri", "sha256", "decode_key", "source_kind", "layout",
    "fps", "height", "width", "frame_count", "probe_frame_count", "expected_frame_count",
    "frame_count_error", "has_masks", "object_ids", "has_keypoints", "num_joints",
    "frames_shape", "expected_frames_shape", "masks_shape", "expected_masks_shape",
    "keypoints_shape", "expected_keypoints_shape", "motion_shape", "expected_motion_shape",
]


@dataclass(frozen=True)
class ValidationTables:
    """What the suites run on, the fingerprint of the catalog the tables were built from, and the
    snapshot they read (``tasks.io.store.open_snapshot``: version folders no commit changes);
    ``handed_on``: the clean frame-statistics rows with their keys, for the next validation
    (``tasks.validate.reuse``); ``videos_read``: complete videos read (the others were reused)."""

    catalog: pd.DataFrame
    frame_stats: pd.DataFrame
    fingerprint: str
    snapshot: str
    handed_on: list[dict] = field(default_factory=list)
    videos_read: int = 0

    @property
    def videos_reused(self) -> int:
        return len(self.frame_stats) - self.videos_read

    def table(self, name: str) -> pd.DataFrame:
        return self.catalog if name == CATALOG_TABLE else self.frame_stats


def build_tables(config: ValidateConfig) -> ValidationTables:
    """Read one snapshot of the store's catalog, sample every complete video and re-hash its frames
    (all of them with ``config.full``; else those the last validation did not read as they are).

    Everything is read from that snapshot, whatever is committed meanwhile; the stamp names it.
    """
    snapshot = open_snapshot(config.store)
    catalog = snapshot.records()
    frame_stats, handed_on, read = frame_stats_rows(snapshot, catalog, config)
    return ValidationTables(
        catalog=catalog_rows(snapshot, catalog),
        frame_stats=frame_stats,
        fingerprint=fingerprint_of(snapshot),
        snapshot=snapshot.id,
        handed_on=handed_on,
        videos_read=read,
    )


def video_groups(snapshot: Snapshot) -> dict[str, object]:
    """video_id → its version folder in ``snapshot`` (opened read-only), or None where the snapshot
    stores nothing for it (a failed video)."""
    root = snapshot.root()
    return {video_id: snapshot.group(video_id, root) if snapshot.path(video_id) else None
            for video_id in snapshot.entries}


def _shape(group, name: str) -> str | None:
    try:
        return str(tuple(int(n) for n in group[name].shape)) if group is not None and name in group else None
    except (KeyError, ValueError, OSError):
        return None


def _expected_frame_count(record: VideoRecord) -> float | None:
    """Frames the probe promises at the stored rate: the probed count, or duration × fps when resampled."""
    if record.probe_frame_count is None:
        return None
    if record.decode_params.fps is None:
        return float(record.probe_frame_count)
    if record.duration:
        return record.duration * record.decode_params.fps
    if record.source_fps:
        return record.probe_frame_count * record.decode_params.fps / record.source_fps
    return None


def _record_columns(record: VideoRecord) -> dict:
    """The catalog columns a parsed record fills: its fields, the frame-count error, expected shapes."""
    t, h, w = record.frame_count, record.height, record.width
    complete = record.status is Status.complete and None not in (t, h, w)
    expected = _expected_frame_count(record)
    error = None
    if expected is not None and t is not None:
        error = max(0.0, abs(t - expected) - 1.0) / max(expected, 1.0)
    return dict(
        source_kind=record.source_kind.value,
        layout=record.layout,
        fps=record.fps,
        height=h,
        width=w,
        frame_count=t,
        probe_frame_count=record.probe_frame_count,
        expected_frame_count=expected,
        frame_count_error=error,
        has_masks=record.has_masks,
        object_ids=", ".join(str(i) for i in record.object_ids),
        has_keypoints=record.has_keypoints,
        num_joints=record.num_joints,
        expected_frames_shape=str((t, h, w, 3)) if complete else None,
        expected_masks_shape=str((t, h, w)) if complete and record.has_masks else None,
        expected_keypoints_shape=(
            str((t, record.num_joints, 3)) if complete and record.has_keypoints else None
        ),
        expected_motion_shape=(
            str((t, -(-h // MOTION_CELL), -(-w // MOTION_CELL))) if complete and record.has_motion else None
        ),
    )


def catalog_rows(snapshot: Snapshot, catalog: dict[str, VideoRecord | None]) -> pd.DataFrame:
    """One row per video group: record fields, stored array shapes, and the shapes the record implies.

    Shapes are strings such as ``"(24, 64, 96, 3)"`` so a mismatch reads plainly in the report.
    ``frame_count_error`` is ``max(0, |frame_count - expected| - 1) / expected``: one frame of
    rounding is always allowed, since resampling by duration × fps rounds either way.
    """
    rows = []
    groups = video_groups(snapshot)
    for video_id, record in catalog.items():
        group = groups[video_id]
        row: dict = {
            "video_id": video_id,
            "status": record.status.value if record else UNREADABLE,
            "reason": record.reason if record else "video record missing or unreadable",
            "source_uri": record.source_uri if record else None,
            "sha256": record.sha256 if record else None,
            "decode_key": record.decode_key if record else None,
            "frames_shape": _shape(group, FRAMES),
            "masks_shape": _shape(group, MASKS),
            "keypoints_shape": _shape(group, KEYPOINTS),
            "motion_shape": _shape(group, MOTION),
        }
        if record is not None:
            row.update(_record_columns(record))
        rows.append(row)
    return pd.DataFrame(rows, columns=CATALOG_COLUMNS)
