"""The pair index and its resumable, DDP-aware sampler (tasks.pretrain.index)."""

from __future__ import annotations

import pytest

from tasks.pretrain.index import PairIndex, PairSampler
from tests.pretrain.conftest import LENGTHS


def test_index_holds_every_pair_of_complete_videos_only(disk_store):
    store, ids = disk_store
    index = PairIndex([store], gap=1)
    assert sorted(v.video_id for v in index.videos) == sorted(ids[n] for n in LENGTHS)
    assert len(index) == sum(n - 1 for n in LENGTHS.values())
    by_video = {(index.videos[v].video_id, int(t)) for v, t in zip(index.video_of, index.t_of)}
    assert by_video == {(ids[n], t) for n, frames in LENGTHS.items() for t in range(frames - 1)}
    gap3 = PairIndex([store], gap=3)
    assert len(gap3) == sum(max(n - 3, 0) for n in LENGTHS.values())  # c.mp4 (3 frames) has none


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


def test_load_state_dict_refuses_another_index_or_sharding():
    state = PairSampler(50, batch_size=4, seed=1).state_dict()
    with pytest.raises(ValueError, match="num_pairs"):
        PairSampler(51, batch_size=4, seed=1).load_state_dict(state)
    with pytest.raises(ValueError, match="world_size"):
        PairSampler(50, batch_size=4, seed=1, world_size=2).load_state_dict(state)
