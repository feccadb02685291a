"""The labelled videos of a store, the benchmark that scores each, and their sequence names."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from storage_schemas import benchmark as bm
from storage_schemas.benchmark import SkippedVideo, VideoInput
from storage_schemas.records import Status, VideoRecord
from tasks.io.names import is_clean_name
from tasks.io.store import Snapshot, read_catalog


class NotEvaluable(ValueError):
    """A video the protocol cannot score; the message is the reason the report gives, in the
    benchmark's words. Any other error is a fault and fails the evaluation."""


@dataclass(frozen=True)
class LabelledVideo:
    """A labelled video of the store and the benchmark (metric family) that scores it."""

    video_id: str
    sequence: str
    benchmark: str
    record: VideoRecord

    def frame_file(self, t: int, suffix: str = ".png") -> str:
        """The file name of frame ``t``'s per-frame output: the source frame's name (frame folders
        keep theirs, so results line up with sequences that do not start at 00000), else 00000.
        The names come from the store, which may be from elsewhere: unless every one is a clean,
        distinct file name (``tasks.io.names``), all frames are named by their index."""
        stems = self._frame_stems
        return (stems[t] if stems and t < len(stems) else f"{t:05d}") + suffix

    @functools.cached_property
    def _frame_stems(self) -> list[str] | None:
        stems = [os.path.splitext(name)[0] for name in self.record.frame_names or []]
        return stems if all(map(is_clean_name, stems)) and len(set(stems)) == len(stems) else None

    def as_input(self) -> VideoInput:
        r = self.record
        return VideoInput(video_id=self.video_id, sequence=self.sequence, benchmark=self.benchmark, layout=r.layout,
                          source_uri=r.source_uri, source_sha256=r.sha256, frames_sha256=r.frames_sha256,
                          split=r.split)


# Why a video whose masks hold only each object's first appearance is not scored.
FIRST_APPEARANCE_ONLY = (
    "YouTube-VOS {split}: its masks hold each object only in the frame where it first appears (0 elsewhere "
    "does not mean background), so no later frame has ground truth to score; its official scores come from the "
    "challenge server (vmac reads it for pre-training)")


def benchmark_of(record: VideoRecord) -> str | None:
    """davis (object masks), youtube-vos (object masks, objects from their first appearance), vip
    (part classes) or jhmdb (keypoints); None when unlabelled."""
    if record.has_keypoints:
        return "jhmdb"
    if record.has_masks:
        return {"vip": "vip", "youtube-vos": "youtube-vos"}.get(record.layout, "davis")
    return None


def split_reason(record: VideoRecord, benchmark: str, split: str | None) -> str | None:
    """Why ``split`` leaves the video out; None when it is in. ``split`` None is the benchmark's own
    default (``bm.DEFAULT_SPLITS``: DAVIS val), which applies to videos whose dataset lists splits;
    ``all`` takes every split."""
    if split == bm.ALL_SPLITS:
        return None
    if split is None:
        default = bm.DEFAULT_SPLITS.get(benchmark)
        if default is None or record.split is None or record.split == default:
            return None
        return (f"split {record.split}: {benchmark} is scored on {default} unless told otherwise, as its official "
                f"tool does (--split {record.split} or --split all scores it)")
    return None if record.split == split else f"split {record.split or bm.UNLISTED_SPLIT!r} is not {split!r}"


def _skip_reason(record: VideoRecord | None, split: str | None) -> str | None:
    """Why a catalog entry cannot be evaluated; None when it can."""
    if record is None:
        return "unreadable record"
    if record.status is not Status.complete:
        return f"status {record.status.value}: {record.reason or ''}".strip()
    benchmark = benchmark_of(record)
    if benchmark is None:
        return "no labels: neither masks nor keypoints"
    if record.mask_semantics == "first_appearance":
        return FIRST_APPEARANCE_ONLY.format(split=record.split or "valid")
    if (reason := split_reason(record, benchmark, split)) is not None:
        return reason
    if (record.frame_count or 0) < 2:
        return "fewer than 2 frames"
    return None


def find_labelled_videos(store: str | Snapshot, split: str | None = None
                         ) -> tuple[list[LabelledVideo], list[SkippedVideo]]:
    """Complete, labelled videos of ``store`` (a store's tip, ``STORE@REF`` or an opened snapshot;
    optionally of one split), ordered by benchmark then sequence name, and why the others are skipped."""
    videos: list[LabelledVideo] = []
    skipped: list[SkippedVideo] = []
    for video_id, record in read_catalog(store).items():
        reason = _skip_reason(record, split)
        if reason is None:
            videos.append(LabelledVideo(video_id, "", benchmark_of(record), record))
        else:
            skipped.append(SkippedVideo(video_id=video_id, reason=reason))
    return sorted(name_sequences(videos), key=lambda v: (bm.BENCHMARKS.index(v.benchmark), v.sequence)), skipped


def name_sequences(videos: list[LabelledVideo]) -> list[LabelledVideo]:
    """Sequence names: the source folder's name (DAVIS's <seq>, as its results layout needs);
    ``<benchmark>-<name>`` where two benchmarks share a name; the video id where that still
    clashes or is no clean file name."""
    base = [os.path.basename(v.record.source_uri.rstrip("/")) for v in videos]
    names = [f"{v.benchmark}-{n}" if base.count(n) > 1 else n for v, n in zip(videos, base)]
    clashes = {n for n in names if names.count(n) > 1 or not is_clean_name(n)}
    return [LabelledVideo(v.video_id, v.video_id if n in clashes else n, v.benchmark, v.record)
            for v, n in zip(videos, names)]
