"""The pre-training loader's batch reads through Icechunk against vmac's direct shard reads.

The loader benchmark's store (``benchmarks/loader.py``'s data: the sample ingested) is copied key
for key into an Icechunk repository on local disk (``icechunk`` 1.1), then the same loader
batches (``tasks.pretrain.loader.FramePairDataset``: 32 random pairs, crop, flip, resize to 224 px,
0 workers) are timed, interleaved, reading the frames' compressed chunks:

- ``direct``: vmac's path: shard indexes cached, one fsspec ``cat_ranges`` per batch;
- ``icechunk_gather``: one Icechunk byte-range ``get`` per chunk, all gathered on Zarr's event loop
  (Icechunk names its chunk objects in its manifests, so a range read through its store is the
  only way to them);
- ``icechunk_merged``: the same with adjacent chunks of one shard read as one range;
- ``icechunk_partial_values``: one ``get_partial_values`` call per batch.

Medians of pairs/s, the ratio of each to ``direct``, and the load average. Run by
``benchmarks/engines.py`` (its ``icechunk`` part), or alone:

    python benchmarks/icechunk_reads.py [--work DIR] [--rounds 7] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BATCHES = 10  # per timed run
PREFIX = "ROOT"  # stands for the store's root in the paths ShardedFrames builds


class IcechunkRanges:
    """``size`` and ``cat_ranges`` (what ``ShardedFrames`` asks of a filesystem) over an Icechunk
    store's keys, in one of the modes the module docstring lists."""

    def __init__(self, store, mode: str):
        self.store, self.mode = store, mode

    def size(self, path: str) -> int:
        from zarr.core.sync import sync

        return sync(self.store.getsize(path.removeprefix(PREFIX + "/")))

    def cat_ranges(self, paths, starts, ends):
        from zarr.core.sync import sync

        raw = self.store._store  # the Rust store: bytes back, no Buffer wrapping
        wanted = [(p.removeprefix(PREFIX + "/"), (int(s), int(e))) for p, s, e in zip(paths, starts, ends)]
        if self.mode == "partial_values":
            async def fetch():
                return await raw.get_partial_values(wanted)
            return sync(fetch())
        groups = [[key, start, end, [k]] for k, (key, (start, end)) in enumerate(wanted)]
        if self.mode == "merged":
            groups = []
            for k in sorted(range(len(wanted)), key=lambda k: wanted[k]):
                key, (start, end) = wanted[k]
                if groups and groups[-1][0] == key and groups[-1][2] == start:
                    groups[-1][2] = end
                    groups[-1][3].append(k)
                else:
                    groups.append([key, start, end, [k]])

        async def fetch():
            return await asyncio.gather(*[raw.get(key, (start, end)) for key, start, end, _ in groups])

        out = [None] * len(wanted)
        for (key, start, end, members), blob in zip(groups, sync(fetch())):
            view = memoryview(blob)
            for k in members:
                first, last = wanted[k][1]
                out[k] = view[first - start:last - start]
        return out


def copy_into_icechunk(store: str, repo_path: Path, icechunk) -> str:
    """Every Zarr key of ``store`` (metadata and shards, lineage and other plain files left out)
    committed into a new Icechunk repository; the snapshot id."""
    import zarr
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync
    from zarr.storage import LocalStore

    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(repo_path)))
    session = repo.writable_session("main")
    source = LocalStore(store, read_only=True)

    async def copy():
        async for key in source.list():
            if key.startswith("videos/") or key == "zarr.json":
                await session.store.set(key, await source.get(key, default_buffer_prototype()))

    sync(copy())
    zarr.open_group(session.store, mode="r")
    return session.commit("the loader benchmark's store")


def measure(data_work: Path, repo_path: Path, icechunk, rounds: int = 7) -> dict:
    import torch
    import zarr

    from benchmarks.loader import build_data
    from tasks.pretrain import loader as pair_loader
    from tasks.pretrain.index import PairIndex, PairSampler

    data = build_data(data_work)
    store = data["store"]
    if not repo_path.exists():
        copy_into_icechunk(store, repo_path, icechunk)
    repo = icechunk.Repository.open(icechunk.local_filesystem_storage(str(repo_path)))
    ice = repo.readonly_session(branch="main").store
    torch.set_num_threads(1)
    index = PairIndex([store])
    readers = {"direct": pair_loader.FramePairDataset(index, 224)}
    for mode in ("gather", "merged", "partial_values"):
        dataset = pair_loader.FramePairDataset(index, 224)
        # The handles a worker opens, pointed at the Icechunk copy (same paths below its root).
        dataset._pid, dataset._handles, dataset._motion_arrays = os.getpid(), {}, {}
        dataset._roots = {index.videos[0].store: (zarr.open_group(ice, mode="r"), IcechunkRanges(ice, mode), PREFIX)}
        readers[f"icechunk_{mode}"] = dataset
    requests = list(PairSampler(len(index), 32, seed=0))
    for dataset in readers.values():  # warm-up: handles, shard indexes, page cache
        for request in requests[:BATCHES]:
            dataset[request]
    runs: dict[str, list[float]] = {name: [] for name in readers}
    load = [round(x, 2) for x in os.getloadavg()]
    for round_ in range(rounds):
        for name, dataset in readers.items():
            started = time.perf_counter()
            for k in range(BATCHES):
                dataset[requests[(round_ * BATCHES + k) % len(requests)]]
            runs[name].append(round(BATCHES * 32 / (time.perf_counter() - started), 1))
    medians = {name: statistics.median(found) for name, found in runs.items()}
    return {"what": "loader batches (32 pairs, 224 px, 0 workers) from the same frames, pairs/s",
            "icechunk": icechunk.__version__, "load_average_before": load,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "pairs_per_s": {name: round(v, 1) for name, v in medians.items()},
            "vs_direct": {name: round(v / medians["direct"], 3) for name, v in medians.items()},
            "runs": runs}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        import icechunk
    except ImportError:
        # `make bench` runs every script: without the optional package this one reports and moves on.
        result = {"benchmark": "icechunk_reads", "skipped": "the icechunk package is not installed "
                  "(pip install 'vmac[icechunk]')"}
        print(json.dumps(result))
        return result
    work = args.work or Path(tempfile.mkdtemp(prefix="vmac-icechunk-"))
    result = measure(work / "data", work / "icechunk", icechunk, args.rounds)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
