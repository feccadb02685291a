"""How each stage's cost grows with the number of videos (``vmac bench scale``).

For N generated distinct clips (each the same tiny H.264 clip with its own title, so every file
has its own bytes and is its own video, and the bytes stay small), each stage is run as a user
runs it, through the ``vmac`` command, and timed:

- ``ingest``: the first ``vmac ingest`` of the folder;
- ``ingest_noop``: the same command again (nothing changed);
- ``validate``: the first ``vmac validate``; ``validate_noop``: again, nothing changed;
- ``audit``: ``vmac audit STORE`` (on the same number of workers);
- ``pretrain_start``: ``vmac pretrain`` of the tiny preset for one step (the plan, the pair index,
  the loader's first batch and one step).

with ``--workers`` Dask workers (ingest, validate and audit). Then ``per_video_overhead``: what vmac
adds to ffmpeg's own decode of one tiny clip, in one process (the goal: under 30 ms). Per-video time = stage time / N; the growth
of a stage is its per-video time at the largest N over that at the smallest (the goal: at most 1.2).
``--big GB`` adds files of that many gigabytes in all (raw 4K frames, a few of them) beside the
clips for the no-op check: a no-op ingest must not read them again (its time against one tiny clip's).

Prints one JSON object (``--out FILE`` also writes it) and draws cost against N (``--plot PNG``).

    .venv/bin/python benchmarks/scale.py [--sizes 100 1000 10000] [--workers 1 2] [--big 1.6] [--quick]
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tasks.io.ffmpeg_binary import ffmpeg_exe  # noqa: E402

TITLE = b"vmac-scale-000000000"  # a fixed-length title each clip's copy overwrites with its own number
STAGES = ("ingest", "ingest_noop", "validate", "validate_noop", "audit", "pretrain_start")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def template_clip(work: Path) -> bytes:
    """16 frames of 64×48 H.264 in MP4 with the placeholder title."""
    path = work / "template.mp4"
    subprocess.run([ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=16,scroll=horizontal=0.05", "-frames:v", "16", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p",
                    "-metadata", f"title={TITLE.decode()}", str(path)], check=True)
    data = path.read_bytes()
    if data.count(TITLE) != 1:
        raise RuntimeError("the template clip does not hold its title once")
    return data


def write_clips(folder: Path, count: int, template: bytes) -> None:
    """``count`` distinct clips: the template with a title of its own each (same length)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        title = f"vmac-scale-{k:09d}".encode()
        (folder / f"clip-{k:06d}.mp4").write_bytes(template.replace(TITLE, title))


def write_big(folder: Path, gigabytes: float) -> int:
    """Files of raw 3840×2160 frames (a few seconds each) summing to ``gigabytes``; their bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = 3840 * 2160 * 3 // 2  # yuv420p
    frames_per_file = 64
    files = max(1, round(gigabytes * 1e9 / (frame * frames_per_file)))
    for k in range(files):
        subprocess.run([ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=3840x2160:rate=25", "-frames:v", str(frames_per_file),
                        "-metadata", f"title=big-{k}", "-c:v", "rawvideo", "-pix_fmt", "yuv420p",
                        str(folder / f"big-{k}.nut")], check=True)
    return sum(p.stat().st_size for p in folder.glob("big-*.nut"))


def vmac(args: list[str], env: dict) -> float:
    """Seconds one ``vmac`` command takes; raises when it fails."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"vmac {' '.join(args[:3])} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return seconds


def run_stages(clips: Path, work: Path, workers: int, env: dict) -> dict[str, float]:
    store, run = str(work / "s.zarr"), str(work / "run")
    ingest = ["ingest", str(clips), "--store", store, "--workers", str(workers), "--no-progress"]
    times = {"ingest": vmac(ingest, env), "ingest_noop": vmac(ingest, env)}
    validate = ["validate", "--store", store, "--workers", str(workers)]
    try:
        times["validate"] = vmac(validate, env)
    except RuntimeError as exc:  # an older vmac without validate --workers
        if "--workers" not in str(exc):
            raise
        validate = validate[:3]
        times["validate"] = vmac(validate, env)
    times["validate_noop"] = vmac(validate, env)
    times["audit"] = vmac(["audit", store, "--workers", str(workers), "--no-progress"], env)
    times["pretrain_start"] = vmac(["pretrain", "--store", store, "--preset", "tiny-cpu", "--out", run,
                                    "--set", "optimiser.max_steps=1", "--set", "run.progress=false",
                                    "--set", "run.tensorboard=false"], env)
    return times


def growth(rows: list[dict], workers: int) -> dict[str, float]:
    """Per-video time at the largest N over the smallest, by stage, for ``workers``."""
    mine = sorted((r for r in rows if r["workers"] == workers), key=lambda r: r["videos"])
    if len(mine) < 2:
        return {}
    small, large = mine[0], mine[-1]
    return {stage: round(large["per_video_ms"][stage] / max(small["per_video_ms"][stage], 1e-9), 2) for stage in STAGES}


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = dict(zip(STAGES, plt.get_cmap("tab10").colors))  # a colour per stage, a line style per worker count
    styles = ("-", "--", ":", "-.")
    for n, workers in enumerate(sorted({r["workers"] for r in rows})):
        mine = sorted((r for r in rows if r["workers"] == workers), key=lambda r: r["videos"])
        for stage in STAGES:
            style = dict(color=colours[stage], linestyle=styles[n % len(styles)], marker="o")
            axes[0].plot([r["videos"] for r in mine], [r["seconds"][stage] for r in mine],
                         label=f"{stage}, {workers} worker{'s' if workers > 1 else ''}", **style)
            axes[1].plot([r["videos"] for r in mine], [r["per_video_ms"][stage] for r in mine], **style)
    for ax, title, unit in ((axes[0], "stage time", "seconds"), (axes[1], "per video", "milliseconds per video")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("videos in the store")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    fig.suptitle("vmac: cost of each stage against the number of videos")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 1000, 10000])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--big", type=float, default=0.0, help="gigabytes of large files for the no-op check")
    parser.add_argument("--quick", action="store_true", help="N = 20 and 60, 1 worker (a smoke test, not a figure)")
    parser.add_argument("--work", help="a folder for the clips and stores (default: a temporary one)")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--plot", help="draw cost against N into this PNG")
    parser.add_argument("--add-to", metavar="JSON", help="an earlier report of this script: its rows and sections "
                        "are kept beside the new ones (a row measured again replaces its own), so a long N can be "
                        "added later")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.workers = [20, 60], [1]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vmac-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    # A Prefect home of the benchmark's own: its local server is started (untimed) before the first
    # stage and stopped at the end.
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_WAIT_POLICY="PASSIVE", PREFECT_HOME=str(work / "prefect"))
    rows: list[dict] = []
    try:
        template = template_clip(work)
        write_clips(work / "warm-up", 1, template)
        vmac(["ingest", str(work / "warm-up"), "--store", str(work / "warm-up.zarr"), "--no-progress"], env)
        for videos in sorted(args.sizes):
            clips = work / f"clips-{videos}"
            write_clips(clips, videos, template)
            for workers in args.workers:
                folder = work / f"n{videos}-w{workers}"
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
                load = [round(x, 2) for x in os.getloadavg()]
                log(f"N={videos}, {workers} worker(s), load {load}")
                seconds = run_stages(clips, folder, workers, env)
                rows.append({"videos": videos, "workers": workers, "load_average_before": load,
                             "load_average_after": [round(x, 2) for x in os.getloadavg()],
                             "seconds": {k: round(v, 2) for k, v in seconds.items()},
                             "per_video_ms": {k: round(1000 * v / videos, 2) for k, v in seconds.items()}})
                log(json.dumps(rows[-1]["seconds"]))
            shutil.rmtree(clips, ignore_errors=True)
        earlier = json.loads(Path(args.add_to).read_text()) if args.add_to else {}
        measured = {(r["videos"], r["workers"]) for r in rows}
        rows = sorted([r for r in earlier.get("rows", []) if (r["videos"], r["workers"]) not in measured] + rows,
                      key=lambda r: (r["workers"], r["videos"]))
        report = {**earlier,
                  "environment": {"python": platform.python_version(), "cpu_cores": os.cpu_count(),
                                  "machine": platform.machine()},
                  "clip": "16 frames of 64x48 H.264 (MP4), a distinct title each", "rows": rows,
                  "growth": {str(w): growth(rows, w) for w in sorted({r["workers"] for r in rows})},
                  "goal_growth_at_most": 1.2}
        report["per_video_overhead"] = per_video_overhead(work, template)
        log(f"per-video overhead: {report['per_video_overhead']}")
        if args.big:
            report["noop_with_big_files"] = noop_with_big(work, args.big, template, env)
    finally:
        from vmac_server.supervisor import stop_server

        stop_server(work / "prefect")
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.plot and rows:
        plot(rows, args.plot)
    return 0


def per_video_overhead(work: Path, template: bytes, videos: int = 41) -> dict:
    """What vmac adds to ffmpeg's own decode of one tiny clip, in one process: the median time of
    ``store_video`` (probe, decode, shards, record; no Dask, no commit) against the median of
    ``ffmpeg -i CLIP -f rawvideo -`` on the same clips (the goal: under 30 ms)."""
    from storage_schemas.config import IngestConfig
    from tasks.ingest.plan import plan_sources
    from tasks.ingest.video import store_video

    clips = work / "overhead"
    write_clips(clips, videos, template)
    own = []
    for path in sorted(clips.glob("*.mp4")):
        began = time.perf_counter()
        subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-f", "rawvideo",
                        "-pix_fmt", "rgb24", "-"], capture_output=True, check=True)
        own.append(time.perf_counter() - began)
    config = IngestConfig(sources=[str(clips)], store=str(work / "overhead.zarr"), progress=False)
    plan = plan_sources(config)
    stored = []
    for item in plan.todo:
        began = time.perf_counter()
        store_video(item, config.store, plan.decode, "bench")
        stored.append(time.perf_counter() - began)
    own_ms, stored_ms = 1000 * statistics.median(own[1:]), 1000 * statistics.median(stored[1:])  # the first warms up
    return {"videos": videos - 1, "ffmpeg_decode_ms": round(own_ms, 1), "store_video_ms": round(stored_ms, 1),
            "overhead_ms": round(stored_ms - own_ms, 1), "goal_overhead_ms_under": 30,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def noop_with_big(work: Path, gigabytes: float, template: bytes, env: dict) -> dict:
    """A no-op ``vmac ingest`` of 1,000 clips plus ``gigabytes`` of large files, against one of a
    single tiny clip (the goal: at most 2×)."""
    one, many = work / "one", work / "many"
    write_clips(one, 1, template)
    write_clips(many / "clips", 1000, template)
    size = write_big(many / "big", gigabytes)
    out = {"big_bytes": size}
    for name, folder in (("one_clip", one), ("clips_and_big", many)):
        store = str(work / f"noop-{name}.zarr")
        ingest = ["ingest", str(folder), "--store", store, "--workers", "2", "--no-progress", "--short-side", "64"]
        vmac(ingest, env)
        out[f"{name}_noop_s"] = round(min(vmac(ingest, env) for _ in range(3)), 2)
    out["ratio"] = round(out["clips_and_big_noop_s"] / out["one_clip_noop_s"], 2)
    out["goal_at_most"] = 2.0
    return out


if __name__ == "__main__":
    sys.exit(main())
