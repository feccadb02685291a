"""The frame-pair dataset, its resumable DDP-aware sampler and its loader, on real ingested stores."""

from __future__ import annotations

import pickle
import uuid

import numpy as np
import pytest
import torch

from storage_schemas.layout import FRAMES, VIDEOS_GROUP
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from tasks.ingest.video import ingest_video
from tasks.io.ffmpeg import encode_video
from tasks.io.sources import expand_sources
from tasks.io.store import (
    open_store,
    read_catalog,
    reset_video,
    video_group,
    write_record,
)
from tasks.pretrain.pairs import (
    FramePairDataset,
    PairIndex,
    PairSampler,
    make_pair_loader,
)
from tests.conftest import moving_frames
from vmac_core.augment import augment_pair_batch

SIZE = 24
# Shards of 4 frames, so pairs cross shard boundaries and videos end in a partial shard.
PARAMS = DecodeParams(short_side=0, shard_frames=4)
LENGTHS = {"a.mp4": 11, "b.mp4": 6, "c.mp4": 3}


def _ingest(videos_dir, store: str) -> dict[str, str]:
    """Ingest every file of ``videos_dir``; returns file name → video id."""
    ids = {}
    for item in expand_sources([str(videos_dir)]):
        outcome = ingest_video(item, store, PARAMS)
        ids[item.uri.rsplit("/", 1)[-1]] = outcome.video_id
    return ids


def _write_videos(folder, lengths=LENGTHS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (name, frames) in enumerate(lengths.items()):
        encode_video(moving_frames(frames, 32, 48, seed=seed), str(folder / name), 12)
    (folder / "broken.mp4").write_bytes(b"")  # ingests as a failed record


@pytest.fixture(scope="module")
def disk_store(tmp_path_factory):
    """A local store: three complete videos, one failed, one stuck in ``writing``."""
    root = tmp_path_factory.mktemp("pairs")
    _write_videos(root / "videos")
    store = str(root / "s.zarr")
    ids = _ingest(root / "videos", store)
    encode_video(moving_frames(8, 32, 48, seed=9), str(root / "stuck.mp4"), 12)
    [stuck] = expand_sources([str(root / "stuck.mp4")])
    ids["stuck.mp4"] = ingest_video(stuck, store, PARAMS).video_id
    group = video_group(open_store(store), ids["stuck.mp4"])
    record = read_catalog(store)[ids["stuck.mp4"]]
    write_record(group, record.model_copy(update={"status": Status.writing}))
    return store, ids


def _frames(store: str, video_id: str) -> np.ndarray:
    return open_store(store, mode="r")[f"{VIDEOS_GROUP}/{video_id}/{FRAMES}"][:]


def _collect(loader, count=None) -> list[dict]:
    out = []
    for batch in loader:
        out.append({k: v.clone() for k, v in batch.items()})
        if count is not None and len(out) == count:
            break
    return out


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def test_index_holds_every_pair_of_complete_videos_only(disk_store):
    store, ids = disk_store
    index = PairIndex([store], gap=1)
    assert sorted(v.video_id for v in index.videos) == sorted(ids[n] for n in LENGTHS)
    assert len(index) == sum(n - 1 for n in LENGTHS.values())
    by_video = {(index.videos[v].video_id, int(t)) for v, t in zip(index.video_of, index.t_of)}
    assert by_video == {(ids[n], t) for n, frames in LENGTHS.items() for t in range(frames - 1)}
    gap3 = PairIndex([store], gap=3)
    assert len(gap3) == sum(max(n - 3, 0) for n in LENGTHS.values())  # c.mp4 (3 frames) has none


def test_batches_hold_the_right_frames_with_the_right_gap(disk_store):
    store, ids = disk_store
    for gap in (1, 2):
        loader, sampler = make_pair_loader([store], SIZE, batch_size=5, workers=0, seed=3, gap=gap)
        frames = {v: _frames(store, e.video_id) for v, e in enumerate(loader.dataset.index.videos)}
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
    loader, _ = make_pair_loader([store], SIZE, batch_size=4, workers=0, seed=0, gap=(1, 3))
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
            expected = _frames(store, dataset.index.videos[v].video_id)[[t, t + gap]]
            assert np.array_equal(pair, expected)


def test_other_layouts_are_read_through_zarr(tmp_path):
    store = str(tmp_path / "other.zarr")
    root = open_store(store)
    frames = moving_frames(5, 16, 24)
    record = VideoRecord(video_id="plain", source_uri="test://plain", source_kind=SourceKind.frames, layout="folder",
                         status=Status.complete, decode_params=PARAMS, frame_count=5, height=16, width=24)
    group = reset_video(root, "plain", record)
    group.create_array(FRAMES, shape=frames.shape, chunks=(2, 16, 24, 3), dtype="uint8")[:] = frames
    dataset = FramePairDataset(PairIndex([store]), SIZE)
    assert dataset._handle(0)[1] is None
    [pair] = dataset.read_pairs(np.array([0]), np.array([1]), np.array([3]))
    assert np.array_equal(pair, frames[[1, 4]])


def test_same_seed_same_batches_other_seed_other_order(disk_store):
    store, _ = disk_store
    first = _collect(make_pair_loader([store], SIZE, batch_size=3, workers=0, seed=11)[0])
    again = _collect(make_pair_loader([store], SIZE, batch_size=3, workers=0, seed=11)[0])
    other = _collect(make_pair_loader([store], SIZE, batch_size=3, workers=0, seed=12)[0])
    assert _same(first, again) and not _same(first, other)
    assert len(first) == sum(n - 1 for n in LENGTHS.values()) // 3


def test_epochs_differ_and_cover_the_index(disk_store):
    store, _ = disk_store
    sampler = PairSampler(100, batch_size=10, seed=0)
    orders = [[p for request in sampler_epoch(sampler, e) for p in request.pairs] for e in (0, 1)]
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(100)) and orders[0] != orders[1]


def sampler_epoch(sampler: PairSampler, epoch: int) -> list:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_ddp_shards_partition_the_index():
    num_pairs, world = 103, 3
    samplers = [PairSampler(num_pairs, batch_size=4, seed=5, rank=r, world_size=world, drop_last=False)
                for r in range(world)]
    shards = [[p for request in s for p in request.pairs] for s in samplers]
    assert len({len(s) for s in shards}) == 1 and len({len(s) for s in samplers}) == 1  # equal steps per rank
    union = [p for shard in shards for p in shard]
    assert len(union) == len(set(union)) == num_pairs // world * world  # disjoint; < world pairs left out
    assert set(samplers[0].rank_pairs(0)) | set(samplers[1].rank_pairs(0)) | set(samplers[2].rank_pairs(0)) == set(union)
    # Every rank draws the same epoch permutation, so the shards stay disjoint in every epoch.
    for s in samplers:
        s.set_epoch(4)
    assert len({p for s in samplers for request in s for p in request.pairs}) == num_pairs // world * world


def test_resume_mid_epoch_reproduces_the_remaining_batches(disk_store):
    store, _ = disk_store
    loader, sampler = make_pair_loader([store], SIZE, batch_size=2, workers=0, seed=4)
    sampler.set_epoch(1)
    full = _collect(loader)
    sampler.set_epoch(1)
    sampler.position = 0
    head = _collect(loader, count=3)
    state = sampler.state_dict()
    assert (state["epoch"], state["position"]) == (1, 3)

    fresh_loader, fresh_sampler = make_pair_loader([store], SIZE, batch_size=2, workers=0, seed=4)
    fresh_sampler.load_state_dict(state)
    fresh_sampler.set_epoch(1)  # what a resumed loop calls: keeps the position
    tail = _collect(fresh_loader)
    assert _same(head + tail, full)
    assert fresh_sampler.state_dict()["position"] == len(full)


def test_load_state_dict_refuses_another_index_or_sharding():
    state = PairSampler(50, batch_size=4, seed=1).state_dict()
    with pytest.raises(ValueError, match="num_pairs"):
        PairSampler(51, batch_size=4, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="world_size"):
        PairSampler(50, batch_size=4, seed=1, world_size=2).load_state_dict(state)


def test_two_workers_match_in_process_and_resume_counts_only_delivered_batches(disk_store):
    store, _ = disk_store
    single = _collect(make_pair_loader([store], SIZE, batch_size=3, workers=0, seed=8)[0])
    loader, sampler = make_pair_loader([store], SIZE, batch_size=3, workers=2, seed=8)
    head = _collect(loader, count=2)  # the workers have prefetched further than this
    state = sampler.state_dict()
    assert state["position"] == 2
    resumed_loader, resumed_sampler = make_pair_loader([store], SIZE, batch_size=3, workers=2, seed=8)
    resumed_sampler.load_state_dict(state)
    tail = _collect(resumed_loader)
    assert _same(head + tail, single)


def test_memory_store_and_several_stores(disk_store, tmp_path):
    store, _ = disk_store
    memory = f"memory://pairs-{uuid.uuid4().hex}.zarr"
    _write_videos(tmp_path / "videos", {"m.mp4": 5})
    _ingest(tmp_path / "videos", memory)
    loader, _ = make_pair_loader([memory, store], SIZE, batch_size=4, workers=0, seed=0)
    dataset = loader.dataset
    assert [v.store for v in dataset.index.videos].count(memory) == 1
    assert len(dataset) == 4 + sum(n - 1 for n in LENGTHS.values())
    memory_video = next(i for i, v in enumerate(dataset.index.videos) if v.store == memory)
    assert dataset._handle(memory_video)[1] is not None  # direct reads through fsspec's memory filesystem
    [pair] = dataset.read_pairs(np.array([memory_video]), np.array([3]), np.array([1]))
    assert np.array_equal(pair, _frames(memory, dataset.index.videos[memory_video].video_id)[3:5])
    seen = {int(v) for batch in loader for v in batch["video_index"]}
    assert memory_video in seen and len(seen) == 4


def test_dataset_pickles_without_open_handles(disk_store):
    store, _ = disk_store
    loader, sampler = make_pair_loader([store], SIZE, batch_size=2, workers=0, seed=0)
    next(iter(loader))  # opens handles in this process
    restored = pickle.loads(pickle.dumps(loader.dataset))
    assert restored._handles is None and restored._scratch is None
    request = next(iter(sampler))
    assert torch.equal(restored[request]["frame1_bchw"], loader.dataset[request]["frame1_bchw"])


def test_no_pairs_is_a_clear_error(disk_store):
    store, _ = disk_store
    with pytest.raises(ValueError, match="no frame pairs"):
        make_pair_loader([store], SIZE, batch_size=2, workers=0, seed=0, gap=50)
