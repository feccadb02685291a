"""Integrity checks' cost: what validation's full frame re-hash and pre-training's stamp check take.

- ``rehash``: every stored frame of every complete video read back through Zarr and hashed
  against its record (``tasks.io.store.frames_sha256``), as ``vmac validate`` now does; frames/s
  and MB/s of decoded RGB per core.
- ``fingerprint``: the store's tip opened and its catalog fingerprint taken
  (``tasks.io.store.fingerprint_of``), which pre-training compares with the stamp before step 1;
  seconds (results before snapshots: one listing of every array file, with its size and mtime).

The store is the real dev clips (``shared/data/davis2016-dev/videos`` in a folder above the
checkout) ingested at short side 256, or the synthetic sample when those are absent. Prints one JSON object (``--out FILE`` also
writes it); medians over ``--repeats``, with the load average before and after.

    .venv/bin/python -m benchmarks.integrity [--out benchmarks/results/integrity.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from storage_schemas.layout import FRAMES  # noqa: E402
from storage_schemas.records import DecodeParams, Status  # noqa: E402
from tasks.ingest.video import ingest_video  # noqa: E402
from tasks.io.sources import expand_sources  # noqa: E402
from tasks.io.store import fingerprint_of, frames_sha256, open_snapshot  # noqa: E402

# The dev clips lie beside the checkout's folder (or a worktree's, one level further up).
DEV_VIDEOS = next((p / "shared" / "data" / "davis2016-dev" / "videos" for p in ROOT.parents
                   if (p / "shared" / "data" / "davis2016-dev" / "videos").is_dir()), None)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_store(work: Path) -> tuple[str, str]:
    """(store, what it holds): the dev clips, else the synthetic sample, at short side 256."""
    if DEV_VIDEOS is not None:
        source, what = str(DEV_VIDEOS), "davis2016-dev videos (20 real clips, 854x480 H.264)"
    else:
        from tasks.sample.write import write_sample

        write_sample(work / "sample", seed=0)
        source, what = str(work / "sample" / "videos"), "the synthetic sample (8 clips)"
    store = str(work / "s.zarr")
    for item in expand_sources([source]):
        ingest_video(item, store, DecodeParams(short_side=256))
    return store, what


def rehash(store: str) -> tuple[float, int, int]:
    """(seconds, frames, decoded bytes) of one full frame re-hash."""
    snapshot = open_snapshot(store)
    root = snapshot.root()
    frames = nbytes = 0
    started = time.perf_counter()
    for video_id, record in snapshot.records().items():
        if record is None or record.status is not Status.complete:
            continue
        array = snapshot.group(video_id, root)[FRAMES]
        assert frames_sha256(array) == record.frames_sha256
        frames += array.shape[0]
        nbytes += array.nbytes
    return time.perf_counter() - started, frames, nbytes


def fingerprint(store: str) -> tuple[float, int]:
    """(seconds, videos in the catalog) of one catalog fingerprint of the store's tip."""
    started = time.perf_counter()
    snapshot = open_snapshot(store)
    fingerprint_of(snapshot)
    return time.perf_counter() - started, len(snapshot.entries)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vmac-integrity-") as tmp:
        log("ingesting the store ...")
        store, what = build_store(Path(tmp))
        load_before = os.getloadavg()
        rehashes, listings = [], []
        for repeat in range(args.repeats):
            rehashes.append(rehash(store))
            listings.append(fingerprint(store))
            log(f"repeat {repeat + 1}: re-hash {rehashes[-1][0]:.2f} s, listing {listings[-1][0] * 1000:.1f} ms")
        load_after = os.getloadavg()
        disk = sum(f.stat().st_size for f in Path(store).rglob("*") if f.is_file())
    seconds = statistics.median(r[0] for r in rehashes)
    _, frames, nbytes = rehashes[0]
    result = {
        "benchmark": "integrity",
        "metric": "validation's full frame re-hash and pre-training's catalog fingerprint of the tip (medians)",
        "results": {
            "rehash": {"seconds": round(seconds, 3), "frames": frames, "decoded_mb": round(nbytes / 1e6, 1),
                       "frames_per_s": round(frames / seconds, 1), "decoded_mb_per_s": round(nbytes / 1e6 / seconds, 1),
                       "runs_s": [round(r[0], 3) for r in rehashes]},
            "fingerprint": {"seconds": round(statistics.median(s for s, _ in listings), 4), "videos": listings[0][1],
                            "runs_s": [round(s, 4) for s, _ in listings]},
        },
        "data": {"store": what, "short_side": 256, "stored_mb": round(disk / 1e6, 1)},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in load_after]},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
