"""Which frame pairs pre-training reads, and in what order; no frame is read here.

- ``PairIndex``: every valid (video, t) of every ``complete`` video, from one snapshot of each
  store's catalog (``tasks.io.store.open_snapshot``): each video's frames are read from the version
  folder that snapshot names, which no later commit changes. The videos that snapshot's validation
  stamp quarantined (its content heuristics marked them: frozen, black or flat) are left out and
  listed by name (``quarantined``).
- ``PairSampler``: the order. A seeded permutation of the index per epoch, sharded across DDP
  ranks, cut into batches; it yields ``BatchRequest``s and remembers how many batches the
  training loop has *received* (not how many workers have prefetched), so ``state_dict()``
  taken mid-epoch resumes the exact remaining order.

``tasks.pretrain.loader`` turns each ``BatchRequest`` into a training batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Sampler

from storage_schemas.config import DataParams
from storage_schemas.records import Status
from tasks.io.stamp import stamp_of
from tasks.io.store import open_snapshot
from vmac_core.augment import ViewParams

Gap = int | tuple[int, int]


@dataclass(frozen=True)
class VideoEntry:
    """One complete video of one store's snapshot: its version folder (``path`` below the store's
    root ``store``, in snapshot ``snapshot``) and its frame-array shape."""

    store: str
    video_id: str
    frames: int
    height: int
    width: int
    has_motion: bool = False
    path: str = ""
    snapshot: str = ""


@dataclass(frozen=True)
class QuarantinedVideo:
    """A complete video pre-training leaves out because its store's validation marked it."""

    store: str
    video_id: str
    rules: tuple[str, ...]  # 'rule: what was measured', as the stamp records them


def describe_quarantined(videos: list[QuarantinedVideo], shown: int = 10) -> str | None:
    """One line naming the videos left out and why; None when there are none."""
    if not videos:
        return None
    names = "; ".join(f"{v.video_id} ({', '.join(r.split(':')[0] for r in v.rules)})" for v in videos[:shown])
    more = f"; … {len(videos) - shown} more" if len(videos) > shown else ""
    return (f"skipping {len(videos)} video(s) validation quarantined: {names}{more} "
            "(the validation report says what was measured)")


def gap_of(data: DataParams) -> Gap:
    """The config's gap: fixed, or the range ``(gap, gap_max)`` drawn from per pair."""
    return (data.gap, data.gap_max) if data.gap_max else data.gap


def views_of(data: DataParams) -> ViewParams:
    """The config's crops: the area range, and crop-in-crop's inner area range."""
    return ViewParams(scale=tuple(data.crop_scale), inner_scale=tuple(data.inner_crop_scale)
                      if data.inner_crop_scale else None)


def _gap_range(gap: Gap) -> tuple[int, int]:
    low, high = (gap, gap) if isinstance(gap, int) else (int(gap[0]), int(gap[1]))
    if not 1 <= low <= high:
        raise ValueError(f"gap must be an int ≥ 1 or a range (low, high) with 1 ≤ low ≤ high, got {gap!r}")
    return low, high


class PairIndex:
    """Every (video, t) with t + gap_low inside the video, over the complete videos of ``stores``
    (each ``STORE``, read at its tip, or ``STORE@SNAPSHOT``; ``snapshots`` holds each one's
    snapshot as read, so every process reads the same data), except those the validation stamp of
    that snapshot quarantined (those are in ``quarantined``).

    ``video_of[i]`` indexes ``videos``; ``t_of[i]`` is the first frame of pair i. Videos shorter
    than gap_low + 1 frames contribute nothing. Arrays, not lists: a YouTube-VOS-sized index
    (~600k pairs) stays a few MB and pickles to workers quickly.
    """

    def __init__(self, stores: Sequence[str], gap: Gap = 1):
        self.stores = tuple(stores)
        self.gap_low, self.gap_high = _gap_range(gap)
        videos: list[VideoEntry] = []
        self.quarantined: list[QuarantinedVideo] = []
        self.snapshots = [open_snapshot(store) for store in self.stores]
        for snapshot in self.snapshots:
            stamp = stamp_of(snapshot)
            marked = stamp.quarantined if stamp is not None else {}
            for video_id, record in snapshot.records().items():
                if record is None or record.status is not Status.complete or not record.frame_count:
                    continue
                if video_id in marked:
                    self.quarantined.append(QuarantinedVideo(snapshot.store, video_id, tuple(marked[video_id])))
                    continue
                videos.append(VideoEntry(snapshot.store, video_id, record.frame_count, record.height, record.width,
                                         record.has_motion, snapshot.path(video_id), snapshot.id))
        self.videos = videos
        counts = np.array([max(v.frames - self.gap_low, 0) for v in videos], dtype=np.int64)
        self.video_of = np.repeat(np.arange(len(videos), dtype=np.int64), counts)
        starts = np.cumsum(counts) - counts
        self.t_of = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)

    def __len__(self) -> int:
        return len(self.video_of)


def require_motion(index: PairIndex) -> None:
    """Raise ValueError when a video of ``index`` has no motion map (it was ingested without
    ``--motion``), naming the stores, a few of the videos and the option."""
    missing = [v for v in index.videos if not v.has_motion]
    if missing:
        stores = sorted({v.store for v in missing})
        some = ", ".join(v.video_id for v in missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise ValueError(
            f"mask_strategy=motion needs a motion map for every video: {len(missing)} of {len(index.videos)} "
            f"in {', '.join(stores)} have none ({some}); ingest them with `vmac ingest --motion`")


@dataclass(frozen=True)
class BatchRequest:
    """What the sampler hands a worker: pair indices, and the seed of the batch's randomness."""

    epoch: int
    number: int  # batch number within this rank's epoch
    pairs: tuple[int, ...]
    seed: int


class PairSampler(Sampler[BatchRequest]):
    """Deterministic, resumable, DDP-sharded batches of pair indices.

    Epoch e's order is a permutation of all pairs seeded by (seed, e). Rank r of W takes
    positions r, r + W, r + 2W, ... of the first ``len // W * W`` (every rank gets the same
    count; fewer than W pairs are left out per epoch), and cuts them into batches of
    ``batch_size`` (the last, short one dropped when ``drop_last``).

    ``position`` counts the batches of ``epoch`` already delivered to the training loop; the
    loader returned by ``tasks.pretrain.loader.make_pair_loader`` advances it as it yields batches. Iterating yields
    the batches from ``position`` on. ``set_epoch(e)`` with a new epoch starts it at 0; with the
    current epoch it keeps the position, so a resumed run can call it unconditionally::

        sampler.load_state_dict(checkpoint["sampler"])
        for epoch in range(sampler.epoch, epochs):
            sampler.set_epoch(epoch)
            for batch in loader: ...
    """

    def __init__(self, num_pairs: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True):
        if batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.num_pairs = num_pairs
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.position = 0

    def rank_pairs(self, epoch: int) -> np.ndarray:
        """This rank's pair indices for ``epoch``, in order."""
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_pairs)
        usable = self.num_pairs // self.world_size * self.world_size
        return order[self.rank : usable : self.world_size]

    def batches_per_epoch(self) -> int:
        per_rank = self.num_pairs // self.world_size
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch()

    def batch_seed(self, epoch: int, number: int) -> int:
        return int(np.random.SeedSequence([self.seed, epoch, self.rank, number]).generate_state(1, np.uint64)[0] >> 1)

    def __iter__(self) -> Iterator[BatchRequest]:
        # Snapshot: prefetching workers run ahead of the training loop, so iterating must not
        # move ``position``; only delivered batches do (see ``PairLoader``).
        epoch, start = self.epoch, self.position
        pairs = self.rank_pairs(epoch)
        for number in range(start, self.batches_per_epoch()):
            chunk = pairs[number * self.batch_size : (number + 1) * self.batch_size]
            yield BatchRequest(epoch, number, tuple(int(i) for i in chunk), self.batch_seed(epoch, number))

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.position = epoch, 0

    def delivered(self, epoch: int, number: int) -> None:
        """Record that batch ``number`` of ``epoch`` reached the training loop."""
        if epoch == self.epoch:
            self.position = max(self.position, number + 1)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "num_pairs": self.num_pairs,
                "batch_size": self.batch_size, "rank": self.rank, "world_size": self.world_size,
                "drop_last": self.drop_last}

    def load_state_dict(self, state: dict) -> None:
        """Restore epoch and position; refuses a state from a different index or sharding, whose
        positions would point at other pairs."""
        mine = self.state_dict()
        for key in ("seed", "num_pairs", "batch_size", "world_size", "drop_last"):
            if key in state and state[key] != mine[key]:
                raise ValueError(f"sampler state has {key}={state[key]!r}, this sampler {mine[key]!r}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
