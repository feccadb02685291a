"""The frame-pair dataset and its loader on real ingested stores (tasks.pretrain.loader)."""

from __future__ import annotations

import pickle
import uuid

import numpy as np
import pytest
import torch

from storage_schemas.layout import FRAMES, MOTION, MOTION_CELL
from storage_schemas.records import SourceKind, Status, VideoRecord
from tasks.ingest.video import ingest_video
from tasks.io.sources import expand_sources
from tasks.io.store import open_snapshot
from tasks.pretrain.index import PairIndex
from tasks.pretrain.loader import FramePairDataset, make_pair_loader
from tests.conftest import moving_frames
from tests.pretrain.conftest import LENGTHS, PARAMS, SIZE, ingest_folder, stored_frames, write_videos
from tests.stores import new_video_folder, put_video
from vmac_core.augment import (
    ViewParams,
    augment_pair_batch,
    crop_cell_map,
    crop_resize_pair,
    normalize,
    sample_batch_crops,
    view2_box,
)


def _collect(loader, count=None) -> list[dict]:
    out = []
    for batch in loader:
        out.append({k: v.clone() for k, v in batch.items()})
        if count is not None and len(out) == count:
            break
    return out


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def test_batches_hold_the_right_frames_with_the_right_gap(disk_store):
    store, ids = disk_store
    for gap in (1, 2):
        loader, sampler = make_pair_loader([store], SIZE, batch_size=5, loader_workers=0, seed=3, gap=gap)
        frames = {v: stored_frames(store, e.video_id) for v, e in enumerate(loader.dataset.index.videos)}
        request = next(iter(sampler))
        batch = next(iter(loader))
        assert batch["frame1_bchw"].shape == batch["frame2_bchw"].shape == (5, 3, SIZE, SIZE)
        assert batch["frame1_bchw"].dtype == torch.float32
        assert torch.all(batch["gap"] == gap)
        # The whole batch again by hand: frames read through Zarr, then the same augmentation.
        pairs = [torch.from_numpy(frames[int(v)][[int(t), int(t) + gap]]) for v, t in zip(batch["video_index"], batch["t"])]
        frame1, frame2 = augment_pair_batch(pairs, SIZE, torch.Generator().manual_seed(request.seed))
        assert torch.equal(batch["frame1_bchw"], frame1) and torch.equal(batch["frame2_bchw"], frame2)


def test_gap_range_draws_every_gap_that_fits(disk_store):
    store, _ = disk_store
    loader, _ = make_pair_loader([store], SIZE, batch_size=4, loader_workers=0, seed=0, gap=(1, 3))
    lengths = [v.frames for v in loader.dataset.index.videos]
    seen = set()
    for batch in loader:
        for v, t, g in zip(batch["video_index"], batch["t"], batch["gap"]):
            assert 1 <= g <= 3 and t + g <= lengths[int(v)] - 1
            seen.add(int(g))
    assert seen == {1, 2, 3}


def test_direct_shard_reads_equal_zarr_reads(disk_store):
    store, _ = disk_store
    dataset = FramePairDataset(PairIndex([store]), SIZE)
    videos = np.arange(len(dataset.index.videos))
    assert all(dataset._handle(int(v))[1] is not None for v in videos)  # the store's layout: direct path
    for gap in (1, 2):
        starts = np.array([v.frames - 1 - gap for v in dataset.index.videos])  # last pair: partial shard
        pairs = dataset.read_pairs(videos, starts, np.full(len(videos), gap))
        for v, t, pair in zip(videos, starts, pairs):
            expected = stored_frames(store, dataset.index.videos[v].video_id)[[t, t + gap]]
            assert np.array_equal(pair, expected)


def test_other_layouts_are_read_through_zarr(tmp_path):
    store = str(tmp_path / "other.zarr")
    frames = moving_frames(5, 16, 24)
    record = VideoRecord(video_id="plain", source_uri="test://plain", source_kind=SourceKind.frames, layout="folder",
                         status=Status.complete, decode_params=PARAMS, frame_count=5, height=16, width=24)
    group = new_video_folder(store, record)
    group.create_array(FRAMES, shape=frames.shape, chunks=(2, 16, 24, 3), dtype="uint8")[:] = frames
    put_video(store, record, group.basename)
    dataset = FramePairDataset(PairIndex([store]), SIZE)
    assert dataset._handle(0)[1] is None
    [pair] = dataset.read_pairs(np.array([0]), np.array([1]), np.array([3]))
    assert np.array_equal(pair, frames[[1, 4]])


def test_same_seed_same_batches_other_seed_other_order(disk_store):
    store, _ = disk_store
    first = _collect(make_pair_loader([store], SIZE, batch_size=3, loader_workers=0, seed=11)[0])
    again = _collect(make_pair_loader([store], SIZE, batch_size=3, loader_workers=0, seed=11)[0])
    other = _collect(make_pair_loader([store], SIZE, batch_size=3, loader_workers=0, seed=12)[0])
    assert _same(first, again) and not _same(first, other)
    assert len(first) == sum(n - 1 for n in LENGTHS.values()) // 3


def test_resume_mid_epoch_reproduces_the_remaining_batches(disk_store):
    store, _ = disk_store
    loader, sampler = make_pair_loader([store], SIZE, batch_size=2, loader_workers=0, seed=4)
    sampler.set_epoch(1)
    full = _collect(loader)
    sampler.set_epoch(1)
    sampler.position = 0
    head = _collect(loader, count=3)
    state = sampler.state_dict()
    assert (state["epoch"], state["position"]) == (1, 3)

    fresh_loader, fresh_sampler = make_pair_loader([store], SIZE, batch_size=2, loader_workers=0, seed=4)
    fresh_sampler.load_state_dict(state)
    fresh_sampler.set_epoch(1)  # what a resumed loop calls: keeps the position
    tail = _collect(fresh_loader)
    assert _same(head + tail, full)
    assert fresh_sampler.state_dict()["position"] == len(full)


def test_two_workers_match_in_process_and_resume_counts_only_delivered_batches(disk_store):
    store, _ = disk_store
    single = _collect(make_pair_loader([store], SIZE, batch_size=3, loader_workers=0, seed=8)[0])
    loader, sampler = make_pair_loader([store], SIZE, batch_size=3, loader_workers=2, seed=8)
    head = _collect(loader, count=2)  # the workers have prefetched further than this
    state = sampler.state_dict()
    assert state["position"] == 2
    resumed_loader, resumed_sampler = make_pair_loader([store], SIZE, batch_size=3, loader_workers=2, seed=8)
    resumed_sampler.load_state_dict(state)
    tail = _collect(resumed_loader)
    assert _same(head + tail, single)


def test_workers_ship_uint8_and_training_normalises_exactly_once(disk_store):
    store, _ = disk_store
    for workers in (0, 2):
        loader, sampler = make_pair_loader([store], SIZE, batch_size=3, loader_workers=workers, seed=5)
        request = next(iter(sampler))
        raw = loader.dataset[request]  # what a worker ships: uint8 crops at input size, in one tensor
        assert raw["frames_2bchw"].dtype == torch.uint8 and raw["frames_2bchw"].shape == (2, 3, 3, SIZE, SIZE)
        assert all(isinstance(raw[key], np.ndarray) for key in ("video_index", "t", "gap"))
        batch = next(iter(loader))
        for slot, key in enumerate(("frame1_bchw", "frame2_bchw")):
            # Once: normalising twice would change the values, not normalising would leave uint8.
            assert batch[key].dtype == torch.float32 and batch[key].is_contiguous()
            assert torch.equal(batch[key], normalize(raw["frames_2bchw"][slot]))
            assert not torch.equal(normalize(batch[key]), batch[key])
        assert torch.equal(batch["t"], torch.from_numpy(raw["t"]))


def test_memory_store_and_several_stores(disk_store, tmp_path):
    store, _ = disk_store
    memory = f"memory://pairs-{uuid.uuid4().hex}.zarr"
    write_videos(tmp_path / "videos", {"m.mp4": 5})
    ingest_folder(tmp_path / "videos", memory)
    loader, _ = make_pair_loader([memory, store], SIZE, batch_size=4, loader_workers=0, seed=0)
    dataset = loader.dataset
    assert [v.store for v in dataset.index.videos].count(memory) == 1
    assert len(dataset) == 4 + sum(n - 1 for n in LENGTHS.values())
    memory_video = next(i for i, v in enumerate(dataset.index.videos) if v.store == memory)
    assert dataset._handle(memory_video)[1] is not None  # direct reads through fsspec's memory filesystem
    [pair] = dataset.read_pairs(np.array([memory_video]), np.array([3]), np.array([1]))
    assert np.array_equal(pair, stored_frames(memory, dataset.index.videos[memory_video].video_id)[3:5])
    seen = {int(v) for batch in loader for v in batch["video_index"]}
    assert memory_video in seen and len(seen) == 4


def test_dataset_pickles_without_open_handles(disk_store):
    store, _ = disk_store
    loader, sampler = make_pair_loader([store], SIZE, batch_size=2, loader_workers=0, seed=0)
    next(iter(loader))  # opens handles in this process
    restored = pickle.loads(pickle.dumps(loader.dataset))
    assert restored._handles is None and restored._scratch is None
    request = next(iter(sampler))
    assert torch.equal(restored[request]["frames_2bchw"], loader.dataset[request]["frames_2bchw"])


def test_no_pairs_is_a_clear_error(disk_store):
    store, _ = disk_store
    with pytest.raises(ValueError, match="no frame pairs"):
        make_pair_loader([store], SIZE, batch_size=2, loader_workers=0, seed=0, gap=50)


def test_motion_follows_each_pairs_crop_and_flip_into_training_patches(tmp_path):
    write_videos(tmp_path / "videos", {"a.mp4": 11, "b.mp4": 6})
    store = str(tmp_path / "m.zarr")
    for item in expand_sources([str(tmp_path / "videos")]):
        ingest_video(item, store, PARAMS.model_copy(update={"motion": True}))
    plain, _ = make_pair_loader([store], SIZE, batch_size=4, loader_workers=0, seed=5, gap=(1, 2))
    loader, sampler = make_pair_loader([store], SIZE, batch_size=4, loader_workers=0, seed=5, gap=(1, 2), motion_grid=3)
    request = next(iter(sampler))
    batch, without = next(iter(loader)), next(iter(plain))
    assert batch["motion_bl"].shape == (4, 9) and batch["motion_bl"].dtype == torch.float32
    # Reading motion draws nothing: the frames are those of a loader without it.
    assert torch.equal(batch["frame1_bchw"], without["frame1_bchw"]) and torch.equal(batch["gap"], without["gap"])
    # By hand: the same gaps and crops from the request's seed, the stored maps of t+1..t+gap summed.
    generator = torch.Generator().manual_seed(request.seed)
    dataset = loader.dataset
    dataset.draw_gaps(request.pairs, generator)
    videos, starts, gaps = batch["video_index"], batch["t"], batch["gap"]
    pairs = dataset.read_pairs(videos.numpy(), starts.numpy(), gaps.numpy())
    crops = sample_batch_crops([torch.from_numpy(p) for p in pairs], generator)
    for k, crop in enumerate(crops):
        video_id = dataset.index.videos[int(videos[k])].video_id
        motion = open_snapshot(store).group(video_id)[MOTION][:]
        summed = motion[int(starts[k]) + 1:int(starts[k]) + int(gaps[k]) + 1].sum(axis=0)
        assert torch.allclose(batch["motion_bl"][k], crop_cell_map(torch.from_numpy(summed), crop, MOTION_CELL, 3))


def test_crop_in_crop_batches_carry_frame_2s_box_inside_frame_1s_view(disk_store):
    store, _ = disk_store
    views = ViewParams(scale=(0.4, 1.0), inner_scale=(0.2, 0.5))
    loader, sampler = make_pair_loader([store], SIZE, batch_size=4, loader_workers=0, seed=2, gap=(1, 2), views=views)
    shared, _ = make_pair_loader([store], SIZE, batch_size=4, loader_workers=0, seed=2, gap=(1, 2))
    request = next(iter(sampler))
    batch = next(iter(loader))
    assert "view2_box_b4" not in next(iter(shared))  # only crop-in-crop batches carry a box
    box_b4 = batch["view2_box_b4"]
    assert box_b4.shape == (4, 4) and box_b4.dtype == torch.float32
    assert torch.all((0 <= box_b4) & (box_b4 <= 1)) and torch.all(box_b4[:, :2] < box_b4[:, 2:])
    # By hand: the same gaps and crops from the request's seed; frame 2 through its own box.
    generator = torch.Generator().manual_seed(request.seed)
    dataset = loader.dataset
    dataset.draw_gaps(request.pairs, generator)
    pairs = [torch.from_numpy(p.copy()) for p in dataset.read_pairs(batch["video_index"].numpy(), batch["t"].numpy(),
                                                                    batch["gap"].numpy())]
    crops = sample_batch_crops(pairs, generator, views)
    for k, (pair, crop) in enumerate(zip(pairs, crops)):
        frames_2chw = crop_resize_pair(pair, crop, SIZE)
        assert torch.equal(batch["frame1_bchw"][k], normalize(frames_2chw[:1])[0])
        assert torch.equal(batch["frame2_bchw"][k], normalize(frames_2chw[1:])[0])
        assert torch.allclose(box_b4[k], torch.tensor(view2_box(crop)))
