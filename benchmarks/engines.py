"""Store engines side by side: the store before snapshots (format 1, commit ``--base``) and this
checkout's (snapshots over version folders), plus Icechunk's read path, in one run.

The base commit's code is extracted from this repository's history (``git archive``) into a
temporary folder, and each part runs each tree's own code in its own processes, alternating
old, new, old, new... so that load from other work on a shared machine falls on both alike:

- ``ingest``: ``benchmarks/ingest.py --part per-core`` of each tree (one process pinned to one
  core: ``ingest_video`` on every clip, each committed alone in this checkout, against plain
  ffmpeg converting to RGB24): the ratio to ffmpeg, on the sample's 8 clips and the real dev
  clips when they are there;
- ``loader``: ``benchmarks/loader.py`` of each tree (its own store of the sample, written by its
  own ingest): pairs/s against the JPEG-folder loader at 0 and 2 workers;
- ``noop``: a ``vmac ingest`` with nothing new to do, each tree with its own ``PREFECT_HOME`` and its
  local Prefect server already running (a warm-up starts it), wall seconds; and the store's own
  share of it (the plan, the started and finished records, without Prefect) in milliseconds;
- ``icechunk`` (when the ``icechunk`` package is installed): the loader's batch reads of one
  store's frames through vmac's direct shard reads against the same frames copied into an
  Icechunk repository and read through its byte-range gets (the measurement that ruled Icechunk
  out as the engine: docs/architecture.md, "Snapshots").

Medians per engine, ratios new/old, the load average before and after each part. One JSON
object on stdout and in ``--out``.

    python benchmarks/engines.py [--base 5f45cbd] [--rounds 2] [--parts ingest loader noop icechunk] [--out FILE]
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

BASE = "5f45cbd"  # the last commit whose stores were format 1 (tests/io/legacy.py)
PARTS = ("ingest", "loader", "noop", "icechunk")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def extract(commit: str, into: Path) -> Path:
    """The tree of ``commit`` (this repository's history) as files under ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def run_json(tree: Path, args: list[str], env: dict | None = None, timeout: float = 3600) -> dict:
    """Run ``python ARGS`` with ``tree``'s code (cwd and PYTHONPATH); its last stdout line as JSON."""
    done = subprocess.run([sys.executable, *args], cwd=tree, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(tree), **(env or {})})
    if done.returncode:
        raise RuntimeError(f"{args[0]} in {tree} failed: {done.stderr[-2000:]}")
    text = done.stdout.strip()
    start = text.rfind("\n{") + 1 if not text.startswith("{") else 0
    return json.loads(text[start:])


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def part_ingest(trees: dict[str, Path], work: Path, rounds: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from benchmarks.ingest import _dev_videos, _sample_clips

    sets = {"sample": [str(c) for c in _sample_clips(work)]}
    real = _dev_videos()
    if real:
        sets["real"] = [str(c) for c in real]
    out: dict = {}
    for name, clips in sets.items():
        runs: dict[str, list[dict]] = {engine: [] for engine in trees}
        load = _load()
        for _ in range(rounds):
            for engine, tree in trees.items():
                (work / f"ingest-{engine}").mkdir(exist_ok=True)  # each engine's own stores
                payload = json.dumps({"clips": clips, "work": str(work / f"ingest-{engine}"), "repeats": 1})
                runs[engine].append(run_json(tree, ["benchmarks/ingest.py", "--part", "per-core", "--pin",
                                                    str(min(os.sched_getaffinity(0))), "--payload", payload]))
                log(f"ingest {name} {engine}: ratio {runs[engine][-1]['ratio']}, cpu {runs[engine][-1]['cpu_ratio']}")
        ratios = {engine: statistics.median(r["ratio"] for r in found) for engine, found in runs.items()}
        # CPU seconds (the worker's and its ffmpeg's against plain ffmpeg's) are what a loaded machine
        # disturbs least: wall time on a shared core moves with whatever else runs.
        cpu = {engine: statistics.median(r["cpu_ratio"] for r in found) for engine, found in runs.items()}
        out[name] = {"clips": len(clips), "load_average_before": load, "load_average_after": _load(),
                     **{f"{engine}_ratio_to_ffmpeg": round(ratio, 3) for engine, ratio in ratios.items()},
                     **{f"{engine}_cpu_ratio_to_ffmpeg": round(value, 3) for engine, value in cpu.items()},
                     **{f"{engine}_ingest_frames_per_s": statistics.median(r["ingest_frames_per_s"] for r in found)
                        for engine, found in runs.items()},
                     "new_vs_old": round(ratios["new"] / ratios["old"], 3),
                     "new_vs_old_cpu": round(cpu["new"] / cpu["old"], 3),
                     "runs": {engine: [{k: r[k] for k in ("ratio", "cpu_ratio", "ingest_frames_per_s",
                                                          "ffmpeg_rgb24_frames_per_s")}
                                       for r in found] for engine, found in runs.items()}}
    return out


def part_loader(trees: dict[str, Path], work: Path, rounds: int) -> dict:
    runs: dict[str, list[dict]] = {engine: [] for engine in trees}
    load = _load()
    for _ in range(rounds):
        for engine, tree in trees.items():
            report = run_json(tree, ["benchmarks/loader.py", "--work", str(work / f"loader-{engine}"),
                                     "--tiny-steps", "0", "--repeats", "5"])
            runs[engine].append(report["results"])
            log(f"loader {engine}: " + ", ".join(f"{k} {v['speedup']}x" for k, v in report["results"].items()))
    out: dict = {"load_average_before": load, "load_average_after": _load()}
    for key in runs["new"][0]:
        speedups = {engine: statistics.median(r[key]["speedup"] for r in found) for engine, found in runs.items()}
        pairs = {engine: statistics.median(r[key]["zarr_pairs_per_s"] for r in found) for engine, found in runs.items()}
        out[key] = {**{f"{engine}_speedup_over_jpeg": round(v, 2) for engine, v in speedups.items()},
                    **{f"{engine}_pairs_per_s": round(v, 1) for engine, v in pairs.items()},
                    "new_vs_old": round(speedups["new"] / speedups["old"], 3)}
    return out


def part_noop(trees: dict[str, Path], work: Path, rounds: int) -> dict:
    """A ``vmac ingest`` of the sample's videos into a store that holds them all, per tree."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.ingest import _sample_clips

    videos = str(_sample_clips(work / "noop-sample")[0].parent)
    envs, argv = {}, {}
    for engine, tree in trees.items():
        home = work / f"prefect-{engine}"
        home.mkdir(parents=True, exist_ok=True)
        envs[engine] = {"PREFECT_HOME": str(home), "PREFECT_API_URL": "", "DO_NOT_TRACK": "1",
                        "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        argv[engine] = [sys.executable, "-m", "cli.main", "ingest", videos, "--store", str(work / f"noop-{engine}.zarr"),
                        "--no-progress"]
        for _ in range(2):  # the first decodes and starts the local server; the second is already a no-op
            subprocess.run(argv[engine], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree), **envs[engine]},
                           capture_output=True, check=True, timeout=1800)
    seconds: dict[str, list[float]] = {engine: [] for engine in trees}
    load = _load()
    try:
        for _ in range(max(rounds, 5)):
            for engine, tree in trees.items():
                started = time.perf_counter()
                subprocess.run(argv[engine], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree), **envs[engine]},
                               capture_output=True, check=True, timeout=600)
                seconds[engine].append(round(time.perf_counter() - started, 2))
            log(f"no-op ingest: {({k: v[-1] for k, v in seconds.items()})}")
    finally:
        for engine, tree in trees.items():
            subprocess.run([sys.executable, "-m", "cli.main", "server", "stop", "--force"], cwd=tree, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(tree), **envs[engine]}, timeout=120)
    medians = {engine: statistics.median(found) for engine, found in seconds.items()}
    work_ms: dict[str, list[dict]] = {engine: [] for engine in trees}
    for _ in range(max(rounds, 5)):  # the store's own share of the no-op, in each engine's process
        for engine, tree in trees.items():
            work_ms[engine].append(run_json(tree, ["-c", STORE_WORK, str(work / f"noop-{engine}.zarr"), videos]))
    store_ms = {engine: {step: statistics.median(r[step] for r in found) for step in ("plan", "started", "finished")}
                for engine, found in work_ms.items()}
    totals = {engine: sum(steps.values()) for engine, steps in store_ms.items()}
    return {"command": "vmac ingest SAMPLE/videos --store STORE --no-progress (8 videos stored)",
            "load_average_before": load, "load_average_after": _load(),
            **{f"{engine}_median_s": round(v, 2) for engine, v in medians.items()},
            "new_vs_old": round(medians["new"] / medians["old"], 3), "runs_s": seconds,
            "store_work": "the no-op's own store work in each engine's process, ms (medians): the plan (sources "
                          "hashed, the catalog read), the started record (the store opened for writing), the "
                          "finished record (the catalog read again); what is left of the command is start-up and "
                          "Prefect",
            "store_work_ms": {engine: {**{k: round(v, 1) for k, v in steps.items()}, "total": round(totals[engine], 1)}
                              for engine, steps in store_ms.items()},
            "store_work_new_vs_old": round(totals["new"] / totals["old"], 3)}


# The store work of a no-op ingest (``flows.ingest`` without Prefect), timed in its tree's own process;
# the snapshot this process already read is forgotten each time, as a new command has not read it.
STORE_WORK = """
import json, statistics, sys, time
from storage_schemas.config import IngestConfig
from tasks.ingest.plan import plan_sources
from tasks.ingest.report import write_finished_record, write_started_record
try:
    from tasks.io.snapshots import forget_snapshots
except ImportError:
    def forget_snapshots():
        pass
config = IngestConfig(sources=[sys.argv[2]], store=sys.argv[1], progress=False)
plan_sources(config)
times = {"plan": [], "started": [], "finished": []}
for _ in range(7):
    forget_snapshots()
    a = time.perf_counter(); plan = plan_sources(config); b = time.perf_counter()
    write_started_record(config, "bench", None); c = time.perf_counter()
    forget_snapshots()
    write_finished_record(config, plan.up_to_date, "bench", None); d = time.perf_counter()
    for step, seconds in (("plan", b - a), ("started", c - b), ("finished", d - c)):
        times[step].append(1000 * seconds)
print(json.dumps({step: statistics.median(found) for step, found in times.items()}))
"""


def part_icechunk(work: Path, rounds: int) -> dict:
    """Loader batches (32 random pairs, 224 px crops, 0 workers) from the same frames: direct shard
    reads against Icechunk byte-range gets (one per chunk, gathered; and get_partial_values)."""
    try:
        import icechunk
    except ImportError:
        return {"skipped": "the icechunk package is not installed (pip install 'vmac[icechunk]')"}
    from benchmarks.icechunk_reads import measure

    return measure(work / "loader-new", work / "icechunk", icechunk, rounds=max(5, 3 * rounds))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=BASE, help="the commit of the old engine (default: the last format-1 one)")
    parser.add_argument("--rounds", type=int, default=2, help="old/new alternations per part")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vmac-engines-") as tmp:
        work = Path(tmp)
        trees = {"old": extract(args.base, work / "old"), "new": ROOT}
        result: dict = {"benchmark": "engines", "base": args.base, "rounds": args.rounds,
                        "engines": {"old": f"format 1 (commit {args.base}): arrays rewritten in place, per-video locks",
                                    "new": "snapshots over immutable version folders (this checkout)"},
                        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                    "load_average_start": _load()}}
        for part in args.parts:
            log(f"== {part}")
            started = time.perf_counter()
            if part == "icechunk":
                result[part] = part_icechunk(work, args.rounds)
            else:
                result[part] = {"ingest": part_ingest, "loader": part_loader, "noop": part_noop}[part](
                    trees, work, args.rounds)
            result[part]["seconds"] = round(time.perf_counter() - started, 1)
        result["machine"]["load_average_end"] = _load()
        shutil.rmtree(work / "old", ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
