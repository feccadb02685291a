"""tasks.io.cluster.batches and fan_out: small videos share a Dask task, long ones stand alone,
every call's result comes back under its own key, in the order of the calls."""

from __future__ import annotations

import pytest

from tasks.io.cluster import BATCH_CALLS, batches, fan_out


def test_batches_keep_order_cover_every_key_and_leave_long_videos_alone():
    keys = [f"v{k:04d}" for k in range(1000)]
    sizes = {"v0000": 5000, **{key: 16 for key in keys[1:]}}  # one long video, then 999 short ones
    groups = batches(keys, sizes, workers=2)
    assert [key for group in groups for key in group] == keys
    assert groups[0] == ["v0000"]  # as long as a whole batch's share: a task of its own
    assert all(len(group) <= BATCH_CALLS for group in groups)
    assert 16 <= len(groups) <= 1000 // 4, len(groups)  # a few dozen tasks, not a thousand
    assert batches(keys[:3], {}, workers=64) == [["v0000"], ["v0001"], ["v0002"]]  # more workers than work
    assert batches([], {}, workers=2) == []


def _square(x: int) -> int:
    return x * x


def _fails(x: int) -> int:
    raise ValueError(f"input {x} is bad")


def test_fan_out_returns_each_result_under_its_key_and_raises_the_first_error(tmp_path):
    store = "memory://fan-out-test"  # workers in this process: threads, no TLS start-up to wait for
    calls = {f"k{n}": (n,) for n in range(100)}
    seen = []
    results = fan_out(store, None, 2, _square, calls, "test", done=lambda key, result: seen.append(key))
    assert list(results) == list(calls) and results == {f"k{n}": n * n for n in range(100)}
    assert sorted(seen) == sorted(calls)
    here = []  # neither an address nor workers: each call in this process, in turn
    assert fan_out(store, None, None, _square, calls, "test", done=lambda key, result: here.append(key)) == results
    assert here == list(calls)
    with pytest.raises(ValueError, match="input 0 is bad"):
        fan_out(store, None, 1, _fails, {"k0": (0,)}, "test")
