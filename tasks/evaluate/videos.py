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
    """Why ``split`` leaves the video out; None when it is in. A video is in every split list of
    its dataset that names it (``record.splits``: DAVIS-2016's val sequences are in trainval too).
    ``split`` None is the benchmark's own default (``bm.DEFAULT_SPLITS``: DAVIS val), which applies
    where the video's dataset tree lists that split: a tree without it (a dev set, a tree without
    ImageSets) is scored whole, and ``selection_notes`` says so. ``all`` takes every split."""
    if split == bm.ALL_SPLITS:
        return None
    listed = record.splits or ([record.split] if record.split else [])
    if split is None:
        default = bm.DEFAULT_SPLITS.get(benchmark)
        if default is None or not lists_split(record, default) or default in listed:
            return None
        return (f"split {record.split or bm.UNLISTED_SPLIT}: {benchmark} is scored on {default} unless told otherwise, "
                f"as its official tool does (--split {record.split or 'all'} or --split all scores it)")
    return None if split in listed else f"split {record.split or bm.UNLISTED_SPLIT!r} is not {split!r}"


def lists_split(record: VideoRecord, split: str) -> bool:
    """Whether the video's dataset tree has a ``split`` list (``record.dataset_splits``; see
    ``with_tree_lists`` for records written before vmac kept them)."""
    return split in (record.dataset_splits or ())


def with_tree_lists(catalog: dict[str, VideoRecord | None]) -> dict[str, VideoRecord | None]:
    """The catalog with ``dataset_splits`` filled in for records written before vmac kept them
    (None): the splits the store's other such records of the same layout name. A store of the
    shared dev set ingested then (every record split ``dev``) has no val list, and is scored
    whole rather than not at all; ingesting the tree again records its own lists."""
    legacy: dict[str | None, set[str]] = {}
    for record in catalog.values():
        if record is not None and record.dataset_splits is None and record.split:
            legacy.setdefault(record.layout, set()).add(record.split)
    return {video_id: record if record is None or record.dataset_splits is not None else
            record.model_copy(update={"dataset_splits": sorted(legacy.get(record.layout, ()))})
            for video_id, record in catalog.items()}


def selection_notes(videos: list[LabelledVideo], split: str | None) -> list[str]:
    """What the default split did that a reader must know: for each benchmark with a default
    split, the videos scored whole because their tree has no such list, in one line per tree's
    lists ('davis: no val split in this tree (its lists: dev): all 10 sequences')."""
    if split is not None:
        return []
    whole: dict[tuple[str, tuple[str, ...]], int] = {}
    for video in videos:
        default = bm.DEFAULT_SPLITS.get(video.benchmark)
        if default is not None and not lists_split(video.record, default):
            key = (video.benchmark, tuple(video.record.dataset_splits or ()))
            whole[key] = whole.get(key, 0) + 1
    return [f"{benchmark}: no {bm.DEFAULT_SPLITS[benchmark]} split in this tree "
            f"({'its lists: ' + ', '.join(lists) if lists else 'no split lists'}): all {n} sequence{'s' * (n != 1)}"
            for (benchmark, lists), n in sorted(whole.items())]


def _class_reason(record: VideoRecord, benchmark: str, vip_classes: int) -> str | None:
    """Why a VIP video's masks cannot be scored: class ids beyond the classes evaluated."""
    beyond = [i for i in record.object_ids if i >= vip_classes] if benchmark == "vip" else []
    if not beyond:
        return None
    return (f"VIP masks hold class id(s) {', '.join(map(str, beyond))}, outside the {vip_classes} classes scored "
            f"(0-{vip_classes - 1}); fix the masks, or set vip_classes")


def _skip_reason(record: VideoRecord | None, split: str | None, vip_classes: int) -> str | None:
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
    if (reason := _class_reason(record, benchmark, vip_classes)) is not None:
        return reason
    if (record.frame_count or 0) < 2:
        return "fewer than 2 frames"
    return None


def find_labelled_videos(store: str | Snapshot, split: str | None = None,
                         vip_classes: int = bm.VIP_CLASSES) -> tuple[list[LabelledVideo], list[SkippedVideo]]:
    """Complete, labelled videos of ``store`` (a store's tip, ``STORE@REF`` or an opened snapshot;
    optionally of one split), ordered by benchmark then sequence name, and why the others are skipped."""
    videos: list[LabelledVideo] = []
    skipped: list[SkippedVideo] = []
    for video_id, record in with_tree_lists(read_catalog(store)).items():
        reason = _skip_reason(record, split, vip_classes)
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
