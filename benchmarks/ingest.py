"""Ingest benchmark: prints one JSON object on stdout (and writes it with --out).

Measured side by side in one run, medians over --repeats:
- per-worker throughput: ``ingest_video`` (hash, probe, decode, compress, write) on one clip in
  frames/s, next to plain ``ffmpeg -threads 1 -i IN -vf scale=W:H -f null -`` on the same file;
- the speedup of decoding the 8 sample clips on a Dask LocalCluster with 2 workers over 1
  (cluster start-up excluded: both clusters are up before the clock starts);
- the frames decoded and the time of an ``ingest_flow`` re-run with nothing new, against the
  first run (Prefect's one-off API start-up excluded by a warm-up flow);
- with ``--codecs``: every frame codec (``storage_schemas.codecs``) on one sample clip and, when
  the dev data is there, one real 854×480 clip: ingest frames/s against plain ffmpeg, stored
  bytes per frame, and frames/s read back through Zarr.

    python benchmarks/ingest.py [--clips-dir DIR] [--repeats 3] [--codecs] [--only-codecs] [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _sample_clips(work: Path) -> list[Path]:
    from tasks.sample.write import write_sample

    write_sample(work / "sample", seed=0)
    return sorted((work / "sample" / "videos").glob("*.mp4"))


def _plain_ffmpeg_fps(path: str, width: int, height: int, frames: int) -> float:
    from tasks.io.ffmpeg import ffmpeg_exe

    args = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-threads", "1", "-i", path,
            "-vf", f"scale={width}:{height}:flags=bicubic", "-threads", "1", "-f", "null", "-"]
    started = time.perf_counter()
    subprocess.run(args, check=True)
    return frames / (time.perf_counter() - started)


def _one_worker(clip: Path, work: Path, repeats: int) -> dict:
    from storage_schemas.records import DecodeParams
    from tasks.ingest.video import ingest_video
    from tasks.io.ffmpeg import output_size
    from tasks.io.probe import probe
    from tasks.io.sources import expand_sources

    info = probe(str(clip))
    width, height = output_size(*info.display_size, 256)
    ours, plain = [], []
    for i in range(repeats):
        store = work / f"one-{i}.zarr"
        [item] = expand_sources([str(clip)])
        started = time.perf_counter()
        outcome = ingest_video(item, str(store), DecodeParams())
        ours.append(outcome.frames / (time.perf_counter() - started))
        plain.append(_plain_ffmpeg_fps(str(clip), width, height, outcome.frames))
        shutil.rmtree(store)
    return {
        "clip": clip.name,
        "frames": info.listed_frames,
        "size_in": list(info.display_size),
        "size_out": [width, height],
        "vmac_frames_per_s": statistics.median(ours),
        "plain_ffmpeg_frames_per_s": statistics.median(plain),
        "ratio": statistics.median(ours) / statistics.median(plain),
        "goal_ratio": 0.8,
    }


def _codecs(clip: Path, work: Path, repeats: int) -> dict:
    """Per frame codec: ingest frames/s (one worker, short side 256) and its ratio to plain
    ffmpeg decoding and scaling the same clip, bytes per stored frame, read-back frames/s."""
    import zarr

    from storage_schemas.codecs import FRAME_CODECS
    from storage_schemas.layout import FRAMES, VIDEOS_GROUP
    from storage_schemas.records import DecodeParams
    from tasks.ingest.video import ingest_video
    from tasks.io.ffmpeg import output_size
    from tasks.io.probe import probe
    from tasks.io.sources import expand_sources

    info = probe(str(clip))
    width, height = output_size(*info.display_size, 256)
    [item] = expand_sources([str(clip)])
    rows = {}
    for name, codec in FRAME_CODECS.items():
        ingest, plain, read, size = [], [], [], 0
        for i in range(repeats):
            store = work / f"codec-{name}-{i}.zarr"
            started = time.perf_counter()
            outcome = ingest_video(item, str(store), DecodeParams(frame_codec=name))
            ingest.append(outcome.frames / (time.perf_counter() - started))
            plain.append(_plain_ffmpeg_fps(str(clip), width, height, outcome.frames))
            group = zarr.open_group(str(store), mode="r")[VIDEOS_GROUP]
            [video_id] = list(group.group_keys())
            started = time.perf_counter()
            frames = group[video_id][FRAMES][:]
            read.append(len(frames) / (time.perf_counter() - started))
            folder = store / VIDEOS_GROUP / video_id / FRAMES
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(store)
        rows[name] = {
            "lossless": codec.lossless,
            "ingest_frames_per_s": round(statistics.median(ingest), 1),
            "plain_ffmpeg_frames_per_s": round(statistics.median(plain), 1),
            "ratio": round(statistics.median(ingest) / statistics.median(plain), 3),
            "bytes_per_frame": round(size / outcome.frames),
            "raw_bytes_per_frame": width * height * 3,
            "read_frames_per_s": round(statistics.median(read), 1),
        }
    return {"clip": str(clip), "frames": outcome.frames, "size_out": [width, height], "codecs": rows}


def _dev_clip() -> Path | None:
    """The first dev video (854×480 H.264), found as ``benchmarks/learning.py`` finds the dev set."""
    from benchmarks.learning import find_dev_data

    data = find_dev_data()
    return min((data / "videos").glob("*.mp4"), default=None) if data else None


def _cluster_seconds(clips: list[Path], work: Path, workers: int, repeats: int) -> list[float]:
    from distributed import Client, LocalCluster, wait

    from storage_schemas.records import DecodeParams
    from tasks.ingest.video import ingest_video
    from tasks.io.sources import expand_sources

    items = expand_sources([str(c) for c in clips])
    times = []
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=40) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("tasks.ingest.video"))  # import cost is not decode cost
        for i in range(repeats):
            store = str(work / f"cluster{workers}-{i}.zarr")
            started = time.perf_counter()
            futures = [client.submit(ingest_video, item, store, DecodeParams(), pure=False) for item in items]
            wait(futures)
            times.append(time.perf_counter() - started)
            assert all(f.result().action == "decoded" for f in futures)
            shutil.rmtree(store)
    return times


def _rerun(clips_dir: Path, work: Path, repeats: int) -> dict:
    from prefect import flow

    from flows.ingest import ingest_flow
    from storage_schemas.config import IngestConfig

    @flow
    def warm_up() -> None:
        return None

    warm_up()
    firsts, reruns, rerun_frames = [], [], []
    for i in range(repeats):
        config = IngestConfig(sources=[str(clips_dir)], store=str(work / f"flow-{i}.zarr"), progress=False)
        started = time.perf_counter()
        first = ingest_flow(config)
        firsts.append(time.perf_counter() - started)
        started = time.perf_counter()
        again = ingest_flow(config)
        reruns.append(time.perf_counter() - started)
        rerun_frames.append(again.frames_decoded)
        assert first.frames_decoded > 0
    return {
        "first_run_s": statistics.median(firsts),
        "rerun_s": statistics.median(reruns),
        "rerun_frames_decoded": max(rerun_frames),
        "rerun_fraction": statistics.median(reruns) / statistics.median(firsts),
        "goal_fraction": 0.10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-dir", type=Path, default=None, help="a folder of clips (default: the embedded sample's 8)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--codecs", action="store_true", help="also measure every frame codec")
    parser.add_argument("--only-codecs", action="store_true", help="measure the frame codecs only")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    with tempfile.TemporaryDirectory(prefix="vmac-bench-ingest-") as tmp:
        work = Path(tmp)
        clips = sorted(args.clips_dir.glob("*.mp4")) if args.clips_dir else _sample_clips(work)
        clips_dir = clips[0].parent
        codecs = None
        if args.codecs or args.only_codecs:
            real = _dev_clip()
            codecs = {"sample": _codecs(clips[0], work, args.repeats),
                      "real": _codecs(real, work, args.repeats) if real else "no dev data found"}
            if args.only_codecs:
                _emit({"benchmark": "ingest-codecs", "host": _host(), "repeats": args.repeats, "codecs": codecs}, args.out)
                return
        one = _one_worker(clips[0], work, args.repeats)
        t1 = _cluster_seconds(clips, work, 1, args.repeats)
        t2 = _cluster_seconds(clips, work, 2, args.repeats)
        rerun = _rerun(clips_dir, work, args.repeats)
        frames = sum(_frame_count(c) for c in clips)

    result = {
        "benchmark": "ingest",
        "host": _host(),
        "repeats": args.repeats,
        "one_worker": one,
        "dask_scaling": {
            "clips": len(clips),
            "frames": frames,
            "one_worker_s": statistics.median(t1),
            "two_workers_s": statistics.median(t2),
            "one_worker_frames_per_s": frames / statistics.median(t1),
            "two_workers_frames_per_s": frames / statistics.median(t2),
            "speedup": statistics.median(t1) / statistics.median(t2),
            "goal_speedup": 1.7,
            "samples_s": {"one_worker": t1, "two_workers": t2},
        },
        "rerun": rerun,
        "codecs": codecs,
    }
    _emit(result, args.out)


def _host() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
            "load_average": os.getloadavg()}


def _emit(result: dict, out: Path | None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")


def _frame_count(clip: Path) -> int:
    from tasks.io.probe import probe

    return probe(str(clip)).listed_frames


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
