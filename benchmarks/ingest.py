"""Ingest benchmark: prints one JSON object on stdout (and writes it with --out).

Measured side by side in one run, medians over --repeats, on the embedded sample's 8 clips and,
when the dev set is there (``benchmarks/learning.py``'s ``find_dev_data``), its real videos:

- **per core**: one process pinned to one core (``os.sched_setaffinity`` on a child process,
  inherited by the ffmpeg it starts) runs ``ingest_video`` (hash, probe, count packets, decode,
  compress, write) on each clip, then plain ffmpeg on the same clips. Plain ffmpeg decodes,
  scales to the same size (bicubic) and converts to RGB24 as ingest's ffmpeg does, into ffmpeg's
  null muxer (``-f null``: no pipe, nothing kept): that is the decoder's per-core limit the ratio
  is taken against. The same without the RGB24 conversion (what the first version of this
  benchmark compared with) is reported beside it. Both sides run ffmpeg with one decoding and
  one filter thread.
- **scaling**: the same clips on a Dask LocalCluster of 1 worker pinned to one core against 2
  workers on 2 cores (each cluster in a child process pinned to those cores; cluster start-up
  excluded); parallel efficiency = frames/s(2 workers) / (2 × frames/s(1 worker)).
- **dask address**: the same clips through ``--dask-address``'s client (``tasks.ingest.cluster.
  dask_client``) against ``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` that the
  benchmark starts on 127.0.0.1 and stops (their process group, killed if need be).
- the frames decoded and the time of an ``ingest_flow`` re-run with nothing new, against the
  first run (Prefect's one-off API start-up excluded by a warm-up flow);
- with ``--codecs``: every frame codec (``storage_schemas.codecs``) on one sample clip and one
  real clip: ingest frames/s, stored bytes per frame, frames/s read back through Zarr.

    python benchmarks/ingest.py [--clips-dir DIR] [--repeats 3] [--quick] [--codecs] [--only-codecs] [--out FILE]

``--quick`` (a smoke test: 1 repeat, 6 real videos, no re-run) is not a measurement to quote.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Goals of issue 12: ingest per core against the decoder's, and parallel efficiency on 2 cores.
GOAL_RATIO = {"sample": 0.5, "real": 0.8}
GOAL_EFFICIENCY = 0.85
QUICK_REAL_VIDEOS = 6


def _sample_clips(work: Path) -> list[Path]:
    from tasks.sample.write import write_sample

    write_sample(work / "sample", seed=0)
    return sorted((work / "sample" / "videos").glob("*.mp4"))


def _dev_videos() -> list[Path]:
    """The dev set's real videos (854×480 H.264), found as ``benchmarks/learning.py`` finds them."""
    from benchmarks.learning import find_dev_data

    data = find_dev_data()
    return sorted((data / "videos").glob("*.mp4")) if data else []


def _cpu_s() -> tuple[float, float]:
    """(this process, its finished children): user + system CPU seconds so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def _plain_ffmpeg_s(path: Path, width: int, height: int, rgb24: bool) -> float:
    """Seconds for plain ffmpeg to decode ``path`` and scale it as ingest does, one thread for
    decoding and one for filtering, into the null muxer; ``rgb24`` converts to RGB24 as ingest's
    ffmpeg does before its frames go down the pipe."""
    from tasks.io.ffmpeg import ffmpeg_exe

    chain = f"scale={width}:{height}:flags=bicubic" + (",format=rgb24" if rgb24 else "")
    args = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-filter_threads", "1", "-threads", "1", "-i", str(path),
            "-vf", chain, "-threads", "1", "-f", "null", "-"]
    started = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - started


def per_core(clips: list[str], work: str, repeats: int) -> dict:
    """Runs in a process pinned to one core: ``ingest_video`` on every clip against plain ffmpeg."""
    from storage_schemas.records import DecodeParams
    from tasks.ingest.video import ingest_video
    from tasks.io.ffmpeg import output_size
    from tasks.io.probe import probe
    from tasks.io.sources import expand_sources

    items = expand_sources(clips)
    sizes = [output_size(*probe(c).display_size, 256) for c in clips]
    ingest_video(items[0], str(Path(work) / "warm-up.zarr"), DecodeParams())  # first-call imports and caches
    ours, rgb, yuv, python_cpu, ffmpeg_cpu, plain_cpu = [], [], [], [], [], []
    for i in range(repeats):
        store = Path(work) / f"per-core-{i}.zarr"
        before, started = _cpu_s(), time.perf_counter()
        frames = sum(ingest_video(item, str(store), DecodeParams()).frames for item in items)
        ours.append(time.perf_counter() - started)
        after = _cpu_s()
        python_cpu.append(after[0] - before[0])
        ffmpeg_cpu.append(after[1] - before[1])
        shutil.rmtree(store)
        rgb.append(sum(_plain_ffmpeg_s(Path(c), w, h, True) for c, (w, h) in zip(clips, sizes)))
        plain_cpu.append(_cpu_s()[1] - after[1])
        yuv.append(sum(_plain_ffmpeg_s(Path(c), w, h, False) for c, (w, h) in zip(clips, sizes)))
    med = statistics.median
    return {
        "clips": len(clips), "frames": frames, "size_out": sorted({f"{w}x{h}" for w, h in sizes}),
        "ingest_frames_per_s": round(frames / med(ours), 1),
        "ffmpeg_rgb24_frames_per_s": round(frames / med(rgb), 1),
        "ffmpeg_yuv_frames_per_s": round(frames / med(yuv), 1),
        "ratio": round(med(rgb) / med(ours), 3),
        "ratio_to_yuv": round(med(yuv) / med(ours), 3),
        # The same ratio in CPU seconds (ffmpeg's and the worker's together), which a loaded machine
        # disturbs far less than wall time; on an idle pinned core the two should agree.
        "cpu_ratio": round(med(plain_cpu) / (med(python_cpu) + med(ffmpeg_cpu)), 3),
        "cpu_s": {"ingest_python": round(med(python_cpu), 3), "ingest_ffmpeg": round(med(ffmpeg_cpu), 3),
                  "plain_ffmpeg_rgb24": round(med(plain_cpu), 3)},
        "samples_s": {"ingest": ours, "ffmpeg_rgb24": rgb, "ffmpeg_yuv": yuv},
    }


def cluster(clips: list[str], work: str, repeats: int, workers: int, address: str | None = None) -> list[float]:
    """Seconds to ingest ``clips`` on Dask, per repeat: ``workers`` single-threaded LocalCluster
    workers, or the scheduler at ``address``; the client is ``--dask-address``'s, start-up excluded."""
    from distributed import wait

    from storage_schemas.config import IngestConfig
    from storage_schemas.records import DecodeParams
    from tasks.ingest.cluster import dask_client, longest_first
    from tasks.ingest.plan import expected_frames
    from tasks.ingest.video import ingest_video
    from tasks.io.sources import expand_sources

    # Submitted as ``decode_all`` submits a run's videos: the longest first.
    found = expand_sources(clips)
    items = longest_first(found, {item.video_id: expected_frames(item, DecodeParams()) for item in found})
    config = IngestConfig(sources=clips, store=str(Path(work) / "cluster.zarr"), dask_workers=workers,
                          dask_address=address, progress=False)
    times = []
    with dask_client(config) as client:
        client.run(lambda: __import__("tasks.ingest.video"))  # import cost is not decode cost
        for i in range(repeats):
            store = str(Path(work) / f"cluster{workers}-{i}.zarr")
            started = time.perf_counter()
            futures = [client.submit(ingest_video, item, store, DecodeParams(), pure=False) for item in items]
            wait(futures)
            times.append(time.perf_counter() - started)
            assert all(f.result().action == "decoded" for f in futures), [f.result() for f in futures]
            shutil.rmtree(store)
    return times


def _in_child(part: str, cores: int, **payload) -> dict | list:
    """``part`` run by this script in a child process pinned to the first ``cores`` cores this
    process may use (as ``taskset -c`` would); everything it starts (ffmpeg, Dask workers)
    inherits the pinning. The child pins itself before it starts anything."""
    pinned = ",".join(map(str, sorted(os.sched_getaffinity(0))[:cores]))
    done = subprocess.run([sys.executable, __file__, "--part", part, "--pin", pinned, "--payload", json.dumps(payload)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{part} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def dask_cli_cluster(work: Path, workers: int):
    """``dask scheduler`` and ``dask worker --nworkers N --nthreads 1`` on 127.0.0.1; yields the
    scheduler's address and stops both process groups (SIGTERM, then SIGKILL) whatever happens."""
    from distributed import Client

    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    file, log = work / "scheduler.json", open(work / "dask-cli.log", "w")  # noqa: SIM115 - closed below
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> None:
        procs.append(subprocess.Popen([dask, *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                      start_new_session=True, stdin=subprocess.DEVNULL))
    try:
        start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(file))
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline and procs[0].poll() is None:
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        start("worker", address, "--host", "127.0.0.1", "--nworkers", str(workers), "--nthreads", "1", "--no-dashboard")
        with Client(address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            _stop_group(proc)
        log.close()


def _stop_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def codec_table(clip: Path, work: Path, repeats: int) -> dict:
    """Per frame codec: ingest frames/s (one worker, short side 256, not pinned) and its ratio to
    plain ffmpeg decoding, scaling and converting the same clip to RGB24, bytes per stored frame,
    read-back frames/s."""
    from storage_schemas.codecs import FRAME_CODECS
    from storage_schemas.layout import FRAMES
    from storage_schemas.records import DecodeParams
    from tasks.ingest.video import ingest_video
    from tasks.io.ffmpeg import output_size
    from tasks.io.probe import probe
    from tasks.io.sources import expand_sources
    from tasks.io.store import open_snapshot

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
            plain.append(outcome.frames / _plain_ffmpeg_s(clip, width, height, rgb24=True))
            snapshot = open_snapshot(str(store))
            [video_id] = list(snapshot.entries)
            started = time.perf_counter()
            frames = snapshot.group(video_id)[FRAMES][:]
            read.append(len(frames) / (time.perf_counter() - started))
            folder = store / snapshot.path(video_id) / FRAMES
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(store)
        rows[name] = {
            "lossless": codec.lossless,
            "ingest_frames_per_s": round(statistics.median(ingest), 1),
            "ffmpeg_rgb24_frames_per_s": round(statistics.median(plain), 1),
            "ratio": round(statistics.median(ingest) / statistics.median(plain), 3),
            "bytes_per_frame": round(size / outcome.frames),
            "raw_bytes_per_frame": width * height * 3,
            "read_frames_per_s": round(statistics.median(read), 1),
        }
    return {"clip": str(clip), "frames": outcome.frames, "size_out": [width, height], "codecs": rows}


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


def scaling(clips: list[Path], frames: int, work: Path, repeats: int) -> dict:
    """1 worker pinned to one core against 2 workers on 2 cores, and 2 workers of the ``dask`` CLI."""
    paths = [str(c) for c in clips]
    one = _in_child("cluster", 1, clips=paths, work=str(work), repeats=repeats, workers=1)
    two = _in_child("cluster", 2, clips=paths, work=str(work), repeats=repeats, workers=2)
    with dask_cli_cluster(work, 2) as address:
        cli = cluster(paths, str(work), repeats, 2, address)
    fps = {name: frames / statistics.median(times) for name, times in
           (("one_worker_pinned", one), ("two_workers", two), ("dask_address_two_workers", cli))}
    efficiency = fps["two_workers"] / (2 * fps["one_worker_pinned"])
    return {
        "clips": len(clips), "frames": frames,
        **{f"{name}_frames_per_s": round(value, 1) for name, value in fps.items()},
        "parallel_efficiency": round(efficiency, 3),
        "dask_address_efficiency": round(fps["dask_address_two_workers"] / (2 * fps["one_worker_pinned"]), 3),
        "goal_efficiency": GOAL_EFFICIENCY, "met": efficiency >= GOAL_EFFICIENCY,
        "samples_s": {"one_worker_pinned": one, "two_workers": two, "dask_address_two_workers": cli},
    }


PARTS = {"per-core": per_core, "cluster": cluster}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-dir", type=Path, default=None, help="a folder of clips (default: the embedded sample's 8)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a smoke test: 1 repeat, 6 real videos, no re-run")
    parser.add_argument("--codecs", action="store_true", help="also measure every frame codec")
    parser.add_argument("--only-codecs", action="store_true", help="measure the frame codecs only")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # one part, run in a pinned child
    parser.add_argument("--pin", default="0", help=argparse.SUPPRESS)  # the cores a part runs on
    parser.add_argument("--payload", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        os.sched_setaffinity(0, {int(core) for core in args.pin.split(",")})
        print(json.dumps(PARTS[args.part](**json.loads(args.payload))))
        return
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    repeats = 1 if args.quick else args.repeats
    host = _host()
    with tempfile.TemporaryDirectory(prefix="vmac-bench-ingest-") as tmp:
        work = Path(tmp)
        clips = sorted(args.clips_dir.glob("*.mp4")) if args.clips_dir else _sample_clips(work)
        real = _dev_videos()[: QUICK_REAL_VIDEOS if args.quick else None]
        codecs = None
        if args.codecs or args.only_codecs:
            codecs = {"sample": codec_table(clips[0], work, repeats),
                      "real": codec_table(real[0], work, repeats) if real else "no dev data found"}
            if args.only_codecs:
                _emit({"benchmark": "ingest-codecs", "host": host, "repeats": repeats, "codecs": codecs}, args.out)
                return
        sets = {"clips" if args.clips_dir else "sample": clips, **({"real": real} if real else {})}
        result = {"benchmark": "ingest", "quick": args.quick, "host": host, "repeats": repeats,
                  "per_core": {}, "scaling": {}}
        for name, group in sets.items():
            one = _in_child("per-core", 1, clips=[str(c) for c in group], work=str(work), repeats=repeats)
            goal = GOAL_RATIO.get(name, GOAL_RATIO["real"])
            result["per_core"][name] = {**one, "goal_ratio": goal, "met": one["ratio"] >= goal}
            result["scaling"][name] = scaling(group, one["frames"], work, repeats)
        if not real:
            result["real"] = "no dev data found"
        if not args.quick:
            result["rerun"] = _rerun(clips[0].parent, work, repeats)
        result["codecs"] = codecs
    result["host"]["load_average_end"] = list(os.getloadavg())
    _emit(result, args.out)


def _host() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
            "load_average": list(os.getloadavg())}


def _emit(result: dict, out: Path | None) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
