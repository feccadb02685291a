"""Frame pairs for VideoMAC pre-training, read from one or more Zarr frame stores.

A plain module (no Prefect), so the training loop can use it anywhere.

- ``PairIndex``: every valid (video, t) of every ``complete`` video, from the stores' catalogs.
- ``PairSampler``: the order. A seeded permutation of the index per epoch, sharded across DDP
  ranks, cut into batches; it yields ``BatchRequest``s and remembers how many batches the
  training loop has *received* (not how many workers have prefetched), so ``state_dict()``
  taken mid-epoch resumes the exact remaining order.
- ``FramePairDataset``: turns one ``BatchRequest`` into one training batch. All frames of a batch
  are fetched together (``ShardedFrames``: one ``cat_ranges`` call for the batch's compressed
  frames, cached shard indexes), since Zarr's per-call overhead dominates single-frame reads
  (STACK.md, "Zarr 3.1"; docs/loader.md). Each process opens its own store handles on first
  use; handles are never pickled.
- ``make_pair_loader``: the DataLoader and its sampler.

Randomness (gaps drawn from a range, crops, flips) comes from a generator seeded by
(seed, epoch, rank, batch number): a batch is the same whatever the number of workers, and the
same after resuming.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from fsspec.core import url_to_fs
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from storage_schemas.layout import FRAMES, VIDEOS_GROUP
from storage_schemas.records import Status
from tasks.io.shards import ShardedFrames
from tasks.io.store import open_store, read_catalog
from tasks.io.uris import local_path
from vmac_core.augment import augment_pair_batch

Gap = int | tuple[int, int]


@dataclass(frozen=True)
class VideoEntry:
    """One complete video of one store: where it is and its frame-array shape."""

    store: str
    video_id: str
    frames: int
    height: int
    width: int


def _gap_range(gap: Gap) -> tuple[int, int]:
    low, high = (gap, gap) if isinstance(gap, int) else (int(gap[0]), int(gap[1]))
    if not 1 <= low <= high:
        raise ValueError(f"gap must be an int ≥ 1 or a range (low, high) with 1 ≤ low ≤ high, got {gap!r}")
    return low, high


class PairIndex:
    """Every (video, t) with t + gap_low inside the video, over the complete videos of ``stores``.

    ``video_of[i]`` indexes ``videos``; ``t_of[i]`` is the first frame of pair i. Videos shorter
    than gap_low + 1 frames contribute nothing. Arrays, not lists: a YouTube-VOS-sized index
    (~600k pairs) stays a few MB and pickles to workers quickly.
    """

    def __init__(self, stores: Sequence[str], gap: Gap = 1):
        self.stores = tuple(stores)
        self.gap_low, self.gap_high = _gap_range(gap)
        videos: list[VideoEntry] = []
        for store in self.stores:
            for video_id, record in read_catalog(store).items():
                if record is None or record.status is not Status.complete or not record.frame_count:
                    continue
                videos.append(VideoEntry(store, video_id, record.frame_count, record.height, record.width))
        self.videos = videos
        counts = np.array([max(v.frames - self.gap_low, 0) for v in videos], dtype=np.int64)
        self.video_of = np.repeat(np.arange(len(videos), dtype=np.int64), counts)
        starts = np.cumsum(counts) - counts
        self.t_of = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)

    def __len__(self) -> int:
        return len(self.video_of)


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
    loader returned by ``make_pair_loader`` advances it as it yields batches. Iterating yields
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


class FramePairDataset(Dataset):
    """Training batches of augmented frame pairs; indexed by ``BatchRequest``, not by integer.

    ``dataset[request]`` → {"frame1_bchw", "frame2_bchw": float32 (B, 3, S, S) normalised,
    "video_index": int64 (B,) into ``index.videos``, "t", "gap": int64 (B,)}.
    """

    def __init__(self, index: PairIndex, input_size: int):
        self.index = index
        self.input_size = input_size
        self._handles: dict[int, tuple] | None = None  # video → (zarr array, ShardedFrames | None), per process
        self._roots: dict[str, tuple] = {}  # store URL → (zarr root, fsspec filesystem, root path)
        self._scratch: np.ndarray | None = None  # decoded frames of the current batch
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        # Open handles and buffers stay in the process that made them.
        state.update(_handles=None, _roots={}, _scratch=None, _pid=None)
        return state

    def _handle(self, video: int) -> tuple:
        """The video's frame array and its direct reader, opened once per process (a forked
        worker reopens: nothing opened in the parent is used in a child)."""
        if self._pid != os.getpid():
            self._handles, self._roots, self._scratch, self._pid = {}, {}, None, os.getpid()
        handle = self._handles.get(video)
        if handle is None:
            entry = self.index.videos[video]
            if entry.store not in self._roots:
                fs, root_path = url_to_fs(local_path(entry.store) or entry.store)
                self._roots[entry.store] = (open_store(entry.store, mode="r"), fs, root_path)
            root, fs, root_path = self._roots[entry.store]
            array = root[f"{VIDEOS_GROUP}/{entry.video_id}/{FRAMES}"]
            handle = self._handles[video] = (array, ShardedFrames.open(fs, root_path, array))
        return handle

    def draw_gaps(self, pairs: Sequence[int], generator: torch.Generator) -> np.ndarray:
        """Each pair's gap: the fixed one, or uniform over the range's gaps that fit the video."""
        low, high = self.index.gap_low, self.index.gap_high
        if low == high:
            return np.full(len(pairs), low, dtype=np.int64)
        gaps = np.empty(len(pairs), dtype=np.int64)
        for k, pair in enumerate(pairs):
            video, t = self.index.video_of[pair], self.index.t_of[pair]
            top = min(high, self.index.videos[video].frames - 1 - int(t))
            gaps[k] = low + int(torch.randint(0, top - low + 1, (1,), generator=generator).item())
        return gaps

    def _scratch_pairs(self, frame_shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        """(2, *frame_shape) uint8 views into one buffer reused from batch to batch: a fresh
        ~20 MB allocation per batch costs thousands of page faults, as much as a tenth of the
        batch's time. The views are only valid until the next batch is read."""
        sizes = [2 * math.prod(shape) for shape in frame_shapes]
        if self._scratch is None or self._scratch.size < sum(sizes):
            self._scratch = np.empty(sum(sizes), dtype=np.uint8)
        bounds = np.cumsum([0, *sizes])
        return [self._scratch[bounds[k] : bounds[k + 1]].reshape(2, *shape) for k, shape in enumerate(frame_shapes)]

    def read_pairs(self, videos: np.ndarray, starts: np.ndarray, gaps: np.ndarray) -> list[np.ndarray]:
        """uint8 (2, H, W, 3) frames [t, t+gap] of each pair, read for the whole batch at once
        into the process's scratch buffer (valid until the next call).

        Videos in the store's own layout: one ``cat_ranges`` call for all compressed frames of
        the batch (per filesystem), then one blosc decompression per frame into the output.
        Any other layout: one Zarr call for the batch, its ``[t, t+gap]`` slices gathered
        concurrently on Zarr's event loop.
        """
        handles = [self._handle(int(v)) for v in videos]
        out = self._scratch_pairs([tuple(array.shape[1:]) for array, _ in handles])
        direct = [k for k, (_, reader) in enumerate(handles) if reader is not None]
        through_zarr = [k for k, (_, reader) in enumerate(handles) if reader is None]

        shards: dict[int, tuple[ShardedFrames, set[int]]] = {}
        for k in direct:
            reader = handles[k][1]
            wanted = shards.setdefault(id(reader), (reader, set()))[1]
            wanted.update({int(starts[k]) // reader.shard_frames, int(starts[k] + gaps[k]) // reader.shard_frames})
        for reader, wanted in shards.values():
            reader.load_indexes(wanted)

        by_fs: dict[int, tuple[object, list]] = {}
        for k in direct:
            reader = handles[k][1]
            for slot, frame in enumerate((int(starts[k]), int(starts[k] + gaps[k]))):
                where = reader.byte_range(frame)
                if where is None:
                    out[k][slot] = reader.fill_value
                else:
                    by_fs.setdefault(id(reader.fs), (reader.fs, []))[1].append((where, out[k][slot]))
        for fs, jobs in by_fs.values():
            paths, begins, ends = zip(*(where for where, _ in jobs))
            for blob, (_, frame_hwc) in zip(fs.cat_ranges(list(paths), list(begins), list(ends)), jobs):
                reader.decode_into(blob, frame_hwc)

        if through_zarr:
            from zarr.core.sync import sync

            async def gather():
                return await asyncio.gather(*[
                    handles[k][0].async_array.getitem(slice(int(starts[k]), int(starts[k] + gaps[k]) + 1, int(gaps[k])))
                    for k in through_zarr
                ])

            for k, pair_2hwc in zip(through_zarr, sync(gather())):
                out[k][...] = pair_2hwc
        return out

    def __getitem__(self, request: BatchRequest) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(request.seed)
        pairs = np.asarray(request.pairs, dtype=np.int64)
        videos, starts = self.index.video_of[pairs], self.index.t_of[pairs]
        gaps = self.draw_gaps(request.pairs, generator)
        frames = [torch.from_numpy(pair_2hwc) for pair_2hwc in self.read_pairs(videos, starts, gaps)]
        shape = (len(pairs), 3, self.input_size, self.input_size)
        frame1_bchw, frame2_bchw = augment_pair_batch(
            frames, self.input_size, generator, out_frames=(_output_buffer(shape), _output_buffer(shape)))
        return {
            "frame1_bchw": frame1_bchw,
            "frame2_bchw": frame2_bchw,
            "video_index": torch.from_numpy(videos),
            "t": torch.from_numpy(starts),
            "gap": torch.from_numpy(gaps),
        }


def _output_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """A float32 tensor; in a DataLoader worker, allocated in shared memory, as default_collate
    does, so that sending the batch to the training process does not copy it again."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=torch.float32)
    storage = torch.empty(0)._typed_storage()._new_shared(math.prod(shape))
    return torch.empty(0).new(storage).view(shape)


class PairLoader(DataLoader):
    """A DataLoader that tells its ``PairSampler`` which batches the training loop has received."""

    def __init__(self, dataset: FramePairDataset, sampler: PairSampler, **kwargs):
        super().__init__(dataset, batch_size=None, sampler=sampler, collate_fn=_as_batch, **kwargs)
        self.pair_sampler = sampler

    def __iter__(self):
        epoch, number = self.pair_sampler.epoch, self.pair_sampler.position
        for batch in super().__iter__():
            self.pair_sampler.delivered(epoch, number)
            number += 1
            yield batch


def _as_batch(batch: dict) -> dict:
    return batch


def _init_worker(worker_id: int) -> None:
    # One intra-op thread per worker: the workers are the parallelism; more threads only contend.
    torch.set_num_threads(1)


def make_pair_loader(
    stores: Sequence[str],
    input_size: int,
    batch_size: int,
    workers: int,
    seed: int,
    gap: Gap = 1,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = True,
    prefetch_factor: int = 2,
) -> tuple[PairLoader, PairSampler]:
    """The pre-training loader over ``stores`` (any fsspec URLs) and its resumable sampler."""
    index = PairIndex(stores, gap)
    if not len(index):
        raise ValueError(f"no frame pairs with gap ≥ {index.gap_low} in the complete videos of {list(stores)}")
    sampler = PairSampler(len(index), batch_size, seed, rank, world_size, drop_last)
    dataset = FramePairDataset(index, input_size)
    extra = {"prefetch_factor": prefetch_factor, "persistent_workers": True} if workers else {}
    loader = PairLoader(dataset, sampler, num_workers=workers, worker_init_fn=_init_worker if workers else None,
                        **extra)
    return loader, sampler
