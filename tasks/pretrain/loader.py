"""Training batches of frame pairs, read from one or more Zarr frame stores.

A plain module (no Prefect), so the training loop can use it anywhere.

- ``FramePairDataset``: turns one ``BatchRequest`` (``tasks.pretrain.index``) into one training
  batch. All frames of a batch are fetched together (``ShardedFrames``: one ``cat_ranges`` call
  for the batch's compressed frames, cached shard indexes), since Zarr's per-call overhead
  dominates single-frame reads (docs/loader.md). Each process opens its own store handles on
  first use; handles are never pickled. Every process reads the version folders the index's
  snapshots name: no commit made meanwhile reaches a worker.
- ``make_pair_loader``: the DataLoader and its sampler; ``BatchStream``: endless batches over
  epochs from them, resumable.

Randomness (gaps drawn from a range, crops, flips) comes from a generator seeded by
(seed, epoch, rank, batch number): a batch is the same whatever the number of workers, and the
same after resuming.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info
from zarr.core.sync import sync

from storage_schemas.layout import FRAMES, MOTION, MOTION_CELL
from tasks.io.shards import ShardedFrames
from tasks.io.store import open_store
from tasks.io.uris import filesystem, local_path
from tasks.pretrain.index import BatchRequest, Gap, PairIndex, PairSampler, require_motion
from vmac_core.augment import ViewParams, crop_cell_map, normalize, resize_pair_batch, sample_batch_crops, view2_box
from vmac_core.mask_strategies import MOTION_KEY

FRAMES_KEY = "frames_2bchw"  # the raw batch's frames; training batches split them in two
VIEW2_BOX_KEY = "view2_box_b4"  # crop-in-crop: where frame 2's view lies in frame 1's (vmac_core.views)


class FramePairDataset(Dataset):
    """Training batches of augmented frame pairs; indexed by ``BatchRequest``, not by integer.

    ``dataset[request]`` → the raw batch a worker ships: {"frames_2bchw": uint8 torch tensor
    (2, B, 3, S, S), frames t and t+gap of each pair cropped, flipped and resized but not
    normalised, in shared memory in a worker; "video_index": int64 (B,) into ``index.videos``,
    "t", "gap": int64 (B,); and with ``motion_grid`` G, "motion_bl": float32 (B, G * G), the
    stored motion of frames t+1..t+gap summed, seen through each pair's crop and flip, one value
    per patch of the training crop; with crop-in-crop ``views``, "view2_box_b4": float32 (B, 4),
    where frame 2's view lies in frame 1's (``vmac_core.augment.view2_box``)}; all but the frames
    numpy arrays, which pickle by value. ``training_batch`` turns it into what training takes.
    """

    def __init__(self, index: PairIndex, input_size: int, motion_grid: int | None = None,
                 views: ViewParams = ViewParams()):
        self.index = index
        self.input_size = input_size
        self.motion_grid = motion_grid
        self.views = views
        self._handles: dict[int, tuple] | None = None  # video → (zarr array, ShardedFrames | None), per process
        self._motion_arrays: dict[int, object] = {}  # video → its motion array, per process
        self._roots: dict[str, tuple] = {}  # store URL → (zarr root, fsspec filesystem, root path)
        self._scratch: np.ndarray | None = None  # decoded frames of the current batch
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        # Open handles and buffers stay in the process that made them.
        state.update(_handles=None, _motion_arrays={}, _roots={}, _scratch=None, _pid=None)
        return state

    def _handle(self, video: int) -> tuple:
        """The video's frame array and its direct reader, opened once per process (a forked
        worker reopens: nothing opened in the parent is used in a child)."""
        if self._pid != os.getpid():
            self._handles, self._motion_arrays, self._roots, self._scratch = {}, {}, {}, None
            self._pid = os.getpid()
        handle = self._handles.get(video)
        if handle is None:
            entry = self.index.videos[video]
            if entry.store not in self._roots:
                fs, root_path = filesystem(local_path(entry.store) or entry.store)
                self._roots[entry.store] = (open_store(entry.store, mode="r"), fs, root_path)
            root, fs, root_path = self._roots[entry.store]
            array = root[f"{entry.path}/{FRAMES}"]
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
        the batch (per filesystem), then one decode per frame into the output, with the codec
        the array's metadata names.
        Any other layout: one Zarr call for the batch, its ``[t, t+gap]`` slices gathered
        concurrently on Zarr's event loop.
        """
        handles = [self._handle(int(v)) for v in videos]
        out = self._scratch_pairs([tuple(array.shape[1:]) for array, _ in handles])
        frames = [(int(starts[k]), int(starts[k] + gaps[k])) for k in range(len(handles))]
        direct = [k for k, (_, reader) in enumerate(handles) if reader is not None]
        through_zarr = [k for k, (_, reader) in enumerate(handles) if reader is None]
        if direct:
            _read_direct([(handles[k][1], frames[k], out[k]) for k in direct])
        if through_zarr:
            _read_through_zarr([(handles[k][0], frames[k], out[k]) for k in through_zarr])
        return out

    def __getitem__(self, request: BatchRequest) -> dict[str, torch.Tensor | np.ndarray]:
        generator = torch.Generator().manual_seed(request.seed)
        pairs = np.asarray(request.pairs, dtype=np.int64)
        videos, starts = self.index.video_of[pairs], self.index.t_of[pairs]
        gaps = self.draw_gaps(request.pairs, generator)
        frames = [torch.from_numpy(pair_2hwc) for pair_2hwc in self.read_pairs(videos, starts, gaps)]
        crops = sample_batch_crops(frames, generator, self.views)
        # One tensor for both frames: each shared tensor is one file descriptor handed to the
        # training process, a round trip to the worker per tensor.
        frames_2bchw = _output_buffer((2, len(pairs), 3, self.input_size, self.input_size))
        resize_pair_batch(frames, self.input_size, generator, out_frames=tuple(frames_2bchw), crops=crops)
        batch = {FRAMES_KEY: frames_2bchw, "video_index": videos, "t": starts, "gap": gaps}
        if self.views.inner_scale is not None:
            batch[VIEW2_BOX_KEY] = np.array([view2_box(crop) for crop in crops], dtype=np.float32)
        if self.motion_grid:
            maps = self.read_motion(videos, starts, gaps)
            batch[MOTION_KEY] = torch.stack([crop_cell_map(torch.from_numpy(m), crop, MOTION_CELL, self.motion_grid)
                                             for m, crop in zip(maps, crops)]).numpy()
        return batch

    def read_motion(self, videos: np.ndarray, starts: np.ndarray, gaps: np.ndarray) -> list[np.ndarray]:
        """Each pair's motion between its frames: the stored motion maps of frames t+1..t+gap
        summed, float32 (ceil(H / MOTION_CELL), ceil(W / MOTION_CELL)), all read in one Zarr call."""
        arrays = [self._motion(int(v)) for v in videos]

        async def gather():
            return await asyncio.gather(*[array.async_array.getitem(slice(int(t) + 1, int(t) + int(g) + 1))
                                          for array, t, g in zip(arrays, starts, gaps)])

        return [block.sum(axis=0, dtype=np.float32) for block in sync(gather())]

    def _motion(self, video: int):
        """The video's motion array, opened once per process beside its frames."""
        self._handle(video)
        if video not in self._motion_arrays:
            entry = self.index.videos[video]
            self._motion_arrays[video] = self._roots[entry.store][0][f"{entry.path}/{MOTION}"]
        return self._motion_arrays[video]


def _read_direct(jobs: list[tuple[ShardedFrames, tuple[int, int], np.ndarray]]) -> None:
    """Fill each (2, H, W, 3) output with frames (t, t + gap) read past Zarr: shard indexes of
    all pairs first, then one ``cat_ranges`` per filesystem for every compressed frame."""
    shards: dict[int, tuple[ShardedFrames, set[int]]] = {}
    for reader, pair, _ in jobs:
        shards.setdefault(id(reader), (reader, set()))[1].update(frame // reader.shard_frames for frame in pair)
    for reader, wanted in shards.values():
        reader.load_indexes(wanted)
    by_fs: dict[int, tuple[object, list]] = {}
    for reader, pair, out_2hwc in jobs:
        for slot, frame in enumerate(pair):
            where = reader.byte_range(frame)
            if where is None:  # a chunk never written: Zarr's fill value
                out_2hwc[slot] = reader.fill_value
            else:
                by_fs.setdefault(id(reader.fs), (reader.fs, []))[1].append((where, reader, out_2hwc[slot]))
    for fs, reads in by_fs.values():
        paths, begins, ends = zip(*(where for where, _, _ in reads))
        for blob, (_, reader, frame_hwc) in zip(fs.cat_ranges(list(paths), list(begins), list(ends)), reads):
            reader.decode_into(blob, frame_hwc)


def _read_through_zarr(jobs: list[tuple[object, tuple[int, int], np.ndarray]]) -> None:
    """Fill each (2, H, W, 3) output with frames (t, t + gap) of its Zarr array, all slices
    gathered concurrently on Zarr's event loop."""

    async def gather():
        return await asyncio.gather(*[array.async_array.getitem(slice(t, t2 + 1, t2 - t))
                                      for array, (t, t2), _ in jobs])

    for (_, _, out_2hwc), pair_2hwc in zip(jobs, sync(gather())):
        out_2hwc[...] = pair_2hwc


def _output_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """A uint8 tensor; in a DataLoader worker, allocated in shared memory, as default_collate
    does, so that sending the batch to the training process does not copy it again."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=torch.uint8)
    storage = torch.UntypedStorage._new_shared(math.prod(shape))
    return torch.empty(0, dtype=torch.uint8).set_(storage).view(shape)


def training_batch(raw: dict) -> dict[str, torch.Tensor]:
    """A raw batch (``FramePairDataset``) as training takes it: "frame1_bchw", "frame2_bchw":
    float32 (B, 3, S, S), ImageNet-normalised, contiguous; the other entries as torch tensors.

    Normalising here, in the training process, rather than in a worker: a worker's batch crosses
    through shared memory, one page fault per 4 kB on each side, and uint8 is a quarter of
    float32's pages (docs/loader.md)."""
    frames_2bchw = raw[FRAMES_KEY]
    batch = {"frame1_bchw": normalize(frames_2bchw[0]), "frame2_bchw": normalize(frames_2bchw[1])}
    batch.update({key: torch.from_numpy(value) for key, value in raw.items() if key != FRAMES_KEY})
    return batch


class PairLoader(DataLoader):
    """A DataLoader that tells its ``PairSampler`` which batches the training loop has received,
    and hands it ``training_batch``es: the frames normalised once, in the training process,
    whatever the number of workers."""

    def __init__(self, dataset: FramePairDataset, sampler: PairSampler, **kwargs):
        super().__init__(dataset, batch_size=None, sampler=sampler, collate_fn=_as_batch, **kwargs)
        self.pair_sampler = sampler

    def __iter__(self):
        epoch, number = self.pair_sampler.epoch, self.pair_sampler.position
        for raw in super().__iter__():
            batch = training_batch(raw)
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
    loader_workers: int,
    seed: int,
    gap: Gap = 1,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool = True,
    prefetch_factor: int = 2,
    motion_grid: int | None = None,
    views: ViewParams = ViewParams(),
) -> tuple[PairLoader, PairSampler]:
    """The pre-training loader over ``stores`` (any fsspec URLs) and its resumable sampler;
    with ``motion_grid``, batches carry the motion map per patch (``FramePairDataset``), and
    every video must have one (``require_motion``: ValueError naming ``vmac ingest --motion``);
    ``views``: the crops' area range and crop-in-crop."""
    index = PairIndex(stores, gap)
    if not len(index):
        left_out = f"; {len(index.quarantined)} quarantined by validation" if index.quarantined else ""
        raise ValueError(f"no frame pairs with gap ≥ {index.gap_low} in the complete videos of {list(stores)}{left_out}")
    if motion_grid:
        require_motion(index)
    sampler = PairSampler(len(index), batch_size, seed, rank, world_size, drop_last)
    dataset = FramePairDataset(index, input_size, motion_grid, views)
    extra = {"prefetch_factor": prefetch_factor, "persistent_workers": True} if loader_workers else {}
    loader = PairLoader(dataset, sampler, num_workers=loader_workers,
                        worker_init_fn=_init_worker if loader_workers else None,
                        **extra)
    return loader, sampler


class BatchStream:
    """Endless batches over epochs from a PairLoader and its resumable PairSampler.

    The sampler counts the batches that reached this loop (not those workers prefetched), so its
    ``state()`` in a checkpoint lets a resumed run continue with exactly the next batch.
    """

    def __init__(self, loader: PairLoader, sampler: PairSampler):
        self.loader, self.sampler = loader, sampler
        self._iter = None

    def state(self) -> dict:
        return self.sampler.state_dict()

    def load_state(self, state: dict) -> None:
        self.sampler.load_state_dict(state)
        self._iter = None

    def __next__(self) -> dict:
        while True:
            if self._iter is None:
                self._iter = iter(self.loader)
            try:
                return next(self._iter)
            except StopIteration:
                self.sampler.set_epoch(self.sampler.epoch + 1)
                self._iter = None
