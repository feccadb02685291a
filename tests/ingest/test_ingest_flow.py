"""ingest_flow end to end: real Prefect (test harness), real Dask LocalCluster, real ffmpeg and Zarr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from storage_schemas.config import IngestConfig
from storage_schemas.layout import FRAMES, VIDEOS_GROUP
from storage_schemas.records import Status
from tasks.io.store import open_snapshot, read_catalog
from tests.conftest import write_bad_inputs

pytestmark = pytest.mark.slow


def _config(sources, store, **extra):
    return IngestConfig.model_validate(
        {"sources": [str(s) for s in sources], "store": str(store), "decode": {"short_side": 48, "shard_frames": 8},
         "dask_workers": 2, "progress": False, **extra}
    )


def test_flow_parallel_incremental_with_bad_inputs(prefect_harness, tmp_path, make_video):
    from prefect.client.orchestration import get_client

    from flows.ingest import ingest_flow

    videos = tmp_path / "videos"
    for i in range(3):
        make_video(f"clip{i}.mp4", frames=20, seed=i)
    expected_bad = write_bad_inputs(videos)
    store = tmp_path / "s.zarr"

    first = ingest_flow(_config([videos], store))
    actions = {o.uri.rsplit("/", 1)[-1]: o.action for o in first.outcomes}
    assert actions == {**{f"clip{i}.mp4": "decoded" for i in range(3)}, **{n: "failed" for n in expected_bad}}
    assert first.frames_decoded == 60
    assert "| failed |" in first.summary_markdown

    # Nothing new: nothing decoded.
    again = ingest_flow(_config([videos], store))
    assert again.frames_decoded == 0 and {o.action for o in again.outcomes} == {"skipped", "failed"}

    # One new video: only it is decoded.
    make_video("clip9.mp4", frames=16, seed=9)
    third = ingest_flow(_config([videos], store))
    assert [o.uri.rsplit("/", 1)[-1] for o in third.outcomes if o.action == "decoded"] == ["clip9.mp4"]

    catalog = read_catalog(str(store))
    assert sum(r.status is Status.complete for r in catalog.values()) == 4

    import asyncio

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts()

    keys = [a.key for a in asyncio.run(artifacts())]
    assert "ingest-summary" in keys

    from tasks.io.lineage import read_records

    records = read_records(str(store / "lineage"))
    assert [(r.kind, r.status) for r in records][::2] == [("ingest", "started")] * 3  # a start, then an end
    last = records[-1]
    assert last.status == "completed_with_failures"
    video_outputs = {o.uri.rsplit("/", 1)[-1]: o for o in last.outputs}
    clip9 = next(o for o in third.outcomes if o.uri.endswith("clip9.mp4"))
    assert video_outputs[clip9.video_id].sha256 == catalog[clip9.video_id].frames_sha256


def test_cli_exit_code_and_table(prefect_harness, tmp_path, make_video, capsys):
    from cli.main import main

    make_video("ok.mp4", frames=10)
    bad = tmp_path / "videos" / "bad.mp4"
    bad.write_text("not a video")
    code = main(["ingest", str(tmp_path / "videos"), "--store", str(tmp_path / "s.zarr"), "--workers", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "1 decoded" in out and "1 failed" in out and "not a readable video" in out
    (tmp_path / "videos" / "bad.mp4").unlink()
    code = main(["ingest", str(tmp_path / "videos"), "--store", str(tmp_path / "s.zarr"), "--workers", "1", "--no-progress"])
    assert code == 0


_WORKER = """
import sys
from storage_schemas.records import DecodeParams
from tasks.ingest.video import ingest_video
from tasks.io.sources import expand_sources
params = DecodeParams(short_side=int(sys.argv[3]), shard_frames=8)
for item in expand_sources([sys.argv[1]]):
    print(ingest_video(item, sys.argv[2], params).action, flush=True)
"""


def _ingest_process(source, store, short_side=64):
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(source), str(store), str(short_side)],
        stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )


def test_killed_run_leaves_nothing_complete_and_next_run_finishes(tmp_path, make_video):
    video = make_video("long.mp4", frames=600, height=144, width=256)
    store = tmp_path / "s.zarr"
    proc = _ingest_process(video, store, short_side=144)
    frames_dir = None
    deadline = time.time() + 60
    # Kill as soon as the first shard has landed, mid-video.
    while time.time() < deadline and proc.poll() is None:
        hits = list((store / VIDEOS_GROUP).glob(f"*/*/{FRAMES}/c/0"))
        if hits:
            frames_dir = hits[0]
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert frames_dir is not None, "the run finished before it could be killed"
    assert read_catalog(str(store)) == {}  # nothing partial is visible: the store is at its last commit

    proc = _ingest_process(video, store, short_side=144)
    assert proc.communicate(timeout=120)[0].split() == ["decoded"]
    [record] = read_catalog(str(store)).values()
    assert record.status is Status.complete and record.frame_count == 600


def test_two_concurrent_runs_do_not_corrupt_the_store(tmp_path, make_video):
    for i in range(4):
        make_video(f"c{i}.mp4", frames=48, seed=i)
    store = tmp_path / "s.zarr"
    procs = [_ingest_process(tmp_path / "videos", store) for _ in range(2)]
    outputs = [p.communicate(timeout=180)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    # Every video was stored once: the other run found it stored, or dropped its own copy at commit.
    assert sorted(outputs[0] + outputs[1]).count("decoded") == 4
    snapshot = open_snapshot(str(store))
    catalog = snapshot.records()
    assert len(catalog) == 4 and all(r.status is Status.complete for r in catalog.values())
    for video_id, record in catalog.items():
        assert sorted(p.name for p in (store / VIDEOS_GROUP / video_id).iterdir()) == sorted(
            ["zarr.json", snapshot.entries[video_id].version])
        frames = snapshot.group(video_id)[FRAMES][:]
        import hashlib

        assert hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest() == record.frames_sha256


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (pytest) across exec.
_PEAK = """
import sys
from storage_schemas.records import DecodeParams
from tasks.ingest.video import ingest_video
from tasks.io.sources import expand_sources
[item] = expand_sources([sys.argv[1]])
assert ingest_video(item, sys.argv[2], DecodeParams(short_side=0, shard_frames=16)).action == "decoded"
print(next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


@pytest.mark.parametrize("short_frames, long_frames", [(40, 240), (300, 1200)], ids=["one-decode", "time-ranges"])
def test_peak_memory_does_not_grow_with_video_length(tmp_path, make_video, short_frames, long_frames):
    """Peak memory of one process ingesting a video, short against long, on each decode path:
    one decode (under two ranges of shards) and time ranges (tasks.ingest.ranges, decoded one
    after the other outside Dask). The range path's fixed cost (a writer and a decoder per range)
    is not growth, so each path is compared with itself."""
    def peak_kib(frames):
        video = make_video(f"v{frames}.mp4", frames=frames, height=240, width=320)
        out = subprocess.run([sys.executable, "-c", _PEAK, str(video), str(tmp_path / f"s{frames}.zarr")],
                             capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    short, long = peak_kib(short_frames), peak_kib(long_frames)
    raw_long_mib = long_frames * 240 * 320 * 3 / 2**20  # decoded frames of the long video
    assert (long - short) / 1024 < 0.25 * raw_long_mib, (short, long)
