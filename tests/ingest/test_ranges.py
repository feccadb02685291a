"""One long video split into time ranges stores exactly what a decode from the start stores."""

from __future__ import annotations

import logging
import subprocess

import numpy as np
import pytest
from distributed import Client, LocalCluster

from storage_schemas.layout import FRAMES, TIMESTAMPS
from storage_schemas.records import DecodeParams
from tasks.ingest import ranges
from tasks.ingest.video import ingest_video
from tasks.io.ffmpeg import ffmpeg_exe
from tasks.io.probe import count_packets
from tasks.io.sources import expand_sources
from tasks.io.store import open_snapshot, read_catalog

SOURCES = ("testsrc2", "mandelbrot", "smptebars", "rgbtestsrc", "testsrc", "cellauto")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> str:
    """3 minutes at 25 fps, 64×48: a scene cut every 20 s (another lavfi source), 3 B-frames, a
    250-frame GOP, so most range starts fall inside a GOP and after reordered frames."""
    path = str(tmp_path_factory.mktemp("long") / "long.mp4")
    inputs, graph = [], ""
    for k in range(9):
        inputs += ["-t", "20", "-f", "lavfi", "-i", f"{SOURCES[k % len(SOURCES)]}=size=64x48:rate=25"]
        graph += f"[{k}:v]format=yuv420p,setsar=1[v{k}];"
    graph += "".join(f"[v{k}]" for k in range(9)) + "concat=n=9:v=1:a=0[out]"
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", *inputs, "-filter_complex", graph, "-map", "[out]",
                    "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "250", "-pix_fmt", "yuv420p", path],
                   check=True, timeout=300)
    return path


def _stored(store: str) -> tuple[np.ndarray, np.ndarray, object]:
    [(video_id, record)] = read_catalog(store).items()
    group = open_snapshot(store).group(video_id)
    return group[FRAMES][:], group[TIMESTAMPS][:], record


def test_the_long_clip_has_b_frames_and_splits_into_ranges(long_clip):
    packets = count_packets(long_clip, 0)
    assert packets.frames == 4500
    spans = ranges.time_ranges(packets.shown_times, 64, 0.0)
    assert len(spans) == 9 and all(s.first % 64 == 0 for s in spans) and spans[-1].stop == 4500
    # Reordered frames: decode order differs from display order somewhere.
    import av

    with av.open(long_clip) as container:
        pts = [p.pts for p in container.demux(container.streams.video[0]) if p.size]
    assert pts != sorted(pts)


def test_time_ranges_store_the_bytes_of_one_decode(long_clip, tmp_path, monkeypatch, caplog):
    [item] = expand_sources([long_clip])
    with caplog.at_level(logging.WARNING, logger="tasks.ingest.container"):
        split = ingest_video(item, str(tmp_path / "split.zarr"), DecodeParams(short_side=0))
    assert not caplog.records, "every range must start where it should (no fallback to one decode)"
    assert split.action == "decoded" and split.frames == 4500
    monkeypatch.setattr(ranges, "RANGE_SHARDS", 10**6)  # one range: a decode from the start
    whole = ingest_video(item, str(tmp_path / "whole.zarr"), DecodeParams(short_side=0))
    assert whole.frames == 4500
    frames_split, times_split, record_split = _stored(str(tmp_path / "split.zarr"))
    frames_whole, times_whole, record_whole = _stored(str(tmp_path / "whole.zarr"))
    assert frames_split.tobytes() == frames_whole.tobytes()
    np.testing.assert_array_equal(times_split, times_whole)
    assert times_whole[0] == 0 and np.allclose(np.diff(times_whole), 0.04, atol=1e-6)
    assert record_split.frames_sha256 == record_whole.frames_sha256
    assert record_split.decode_key == record_whole.decode_key and record_split.frame_rate_mode == "constant"


@pytest.mark.slow
def test_a_long_video_uses_every_dask_worker(long_clip, tmp_path):
    [item] = expand_sources([long_clip])
    store = str(tmp_path / "dask.zarr")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=40) as cluster, Client(cluster) as client:
        outcome = client.submit(ingest_video, item, store, DecodeParams(short_side=0), pure=False).result()
        # Every worker ran range tasks (their keys are kept in each worker's log of tasks).
        ran = client.run(lambda dask_worker: sum(1 for key in dask_worker.state.log if "decode_range" in str(key)))
    assert outcome.action == "decoded" and outcome.frames == 4500
    assert len(ran) == 2 and all(count > 0 for count in ran.values()), ran
    frames, times, _ = _stored(store)
    ingest_video(item, str(tmp_path / "here.zarr"), DecodeParams(short_side=0))
    here_frames, here_times, _ = _stored(str(tmp_path / "here.zarr"))
    assert frames.tobytes() == here_frames.tobytes()
    np.testing.assert_array_equal(times, here_times)


@pytest.fixture(scope="module")
def gop_aligned_clip(tmp_path_factory) -> str:
    """1100 frames, a keyframe every 64 and nowhere else: every range starts on a keyframe."""
    path = str(tmp_path_factory.mktemp("aligned") / "aligned.mp4")
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25",
                    "-frames:v", "1100", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    "-x264-params", "keyint=64:min-keyint=64:scenecut=0", path], check=True, timeout=300)
    return path


def test_a_range_that_cannot_show_its_start_falls_back_to_one_decode(gop_aligned_clip, tmp_path, monkeypatch, caplog):
    # Without overlap, a range that starts on a keyframe is decoded from that frame itself: nothing
    # before it was decoded, so nothing proves that frame was not dropped. The video is decoded
    # from the start, and the ranges' expected outcome leaves no traceback on a worker.
    monkeypatch.setattr(ranges, "OVERLAP_FRAMES", 0)
    [item] = expand_sources([gop_aligned_clip])
    with caplog.at_level(logging.WARNING, logger="tasks.ingest.container"):
        outcome = ingest_video(item, str(tmp_path / "s.zarr"), DecodeParams(short_side=0))
    assert "decoding it from the start instead of in time ranges" in caplog.text
    assert "landed after its first frame" in caplog.text
    assert outcome.action == "decoded" and outcome.frames == 1100


def test_mpeg_ts_seeks_to_the_keyframe_before_each_range(long_clip, tmp_path, caplog):
    """MPEG-TS has no index: a seek lands on a packet near the time and the decode starts at the
    next keyframe, after the range's first frame. Ranges seek to the keyframe before instead, and
    store the bytes of one decode."""
    ts = str(tmp_path / "long.ts")
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-i", long_clip, "-c", "copy", "-f", "mpegts", ts],
                   check=True)
    [item] = expand_sources([ts])
    with caplog.at_level(logging.WARNING, logger="tasks.ingest.container"):
        split = ingest_video(item, str(tmp_path / "split.zarr"), DecodeParams(short_side=0))
    assert not caplog.records, "every range must start where it should (no fallback to one decode)"
    whole = ingest_video(item, str(tmp_path / "whole.zarr"), DecodeParams(short_side=0, shard_frames=4096))
    assert split.action == whole.action == "decoded" and split.frames == whole.frames == 4500
    frames_split, times_split, _ = _stored(str(tmp_path / "split.zarr"))
    frames_whole, times_whole, _ = _stored(str(tmp_path / "whole.zarr"))
    assert frames_split.tobytes() == frames_whole.tobytes()
    np.testing.assert_array_equal(times_split, times_whole)
