"""Learning on real video: does pre-training beat no pre-training, and by how much for how much compute?

Ingests the DAVIS-2016 dev set (``shared/data/davis2016-dev``: 20 unlabelled MP4s for
pre-training, 10 other labelled sequences for evaluation), validates the training store,
pre-trains a preset once per seed, and evaluates by label propagation, with one protocol for
every row:

- the pre-trained encoder of each seed (J&F, J, F; mean, spread and range over seeds);
- its random-init twin (same architecture, random weights) and raw pixels (Lab colour averaged
  over each stride cell): the floors;
- a learning curve: checkpoints of the first seed's run at ``--curve`` fractions of its steps,
  against steps and CPU minutes (``learning_curve.png`` beside ``comparison.md``);
- every score also per half of the labelled sequences (``halves``), and with ``--native`` the
  seeds and floors again at the stored resolution, so that a change is kept only where it
  generalises. Floors come from the floor cache when already scored (``tasks.evaluate.floors``).

Pre-training steps, wall time and CPU time (the training process and its loader workers, from
``metrics.jsonl``), the torch threads and the load average go into the JSON. Pre-training runs
with a fixed thread count (``--threads``, default: all cores), so a seed gives the same weights
on every run. Work (stores, runs, evaluations) lives under ``--work`` and is reused: ingest is
incremental, a finished run is not trained again, and an encoder already scored with the same
weights and protocol is not scored again.

    python benchmarks/learning.py [--preset real-cpu] [--seeds 0 1 2] [--curve 0 0.125 0.25 0.5 0.75 1]
        [--eval-short-side N [--native]] [--set FIELD=VALUE ...] [--work DIR] [--out benchmarks/results/learning.json]

``--videos``, ``--sequences`` and ``--frames`` take a subset (the first K videos and sequences,
their first N frames), for a quick end-to-end check. Without the dev data it exits 2 and says
where it looked.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads GNU OpenMP (docs/learning.md)
# Offline, as the vmac command runs Prefect: no telemetry attempts from the temporary API server.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA_NAME = "shared/data/davis2016-dev"
RESULTS = ROOT / "benchmarks" / "results" / "learning.json"
METRICS = ("J&F-Mean", "J-Mean", "F-Mean")
GOAL_MARGIN = 13  # J&F points above both floors (issue 24)


def find_dev_data(explicit: str | None = None) -> Path | None:
    """The dev set: ``explicit``, else $VMAC_DEV_DATA, else ``shared/data/davis2016-dev`` beside
    the checkout or beside any folder above it; None when absent."""
    given = explicit or os.environ.get("VMAC_DEV_DATA")
    candidates = [Path(given)] if given else [folder / DATA_NAME for folder in ROOT.parents]
    return next((c for c in candidates if (c / "videos").is_dir() and (c / "labelled").is_dir()), None)


def take_subset(data: Path, work: Path, videos: int | None, sequences: int | None, frames: int | None) -> Path:
    """``data`` itself, or a copy under ``work/subset`` of its first ``videos`` MP4s and
    ``sequences`` labelled sequences, each cut to its first ``frames`` frames."""
    if videos is None and sequences is None and frames is None:
        return data
    from tasks.io.ffmpeg import ffmpeg_exe

    out = work / "subset"
    shutil.rmtree(out, ignore_errors=True)
    (out / "videos").mkdir(parents=True)
    for mp4 in sorted((data / "videos").glob("*.mp4"))[:videos]:
        cut = ["-frames:v", str(frames)] if frames else []
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(mp4), *cut, "-c:v", "libx264", "-crf", "18",
                        "-pix_fmt", "yuv420p", str(out / "videos" / mp4.name)], check=True)
    images = data / "labelled" / "JPEGImages" / "480p"
    chosen = sorted(p.name for p in images.iterdir())[:sequences]
    for seq in chosen:
        for kind, suffix in (("JPEGImages", ".jpg"), ("Annotations", ".png")):
            target = out / "labelled" / kind / "480p" / seq
            target.mkdir(parents=True)
            for file in sorted((data / "labelled" / kind / "480p" / seq).glob(f"*{suffix}"))[:frames]:
                shutil.copy(file, target / file.name)
    # The split lists too, cut to what was copied: the subset's tree is the dev set's shape (its
    # sequences listed in ImageSets/480p/dev.txt, no val list: evaluation scores them all).
    for listed in sorted((data / "labelled" / "ImageSets").rglob("*.txt")):
        target = out / "labelled" / listed.relative_to(data / "labelled")
        target.parent.mkdir(parents=True, exist_ok=True)
        kept = [line for line in listed.read_text().splitlines() if _listed_sequence(line) in chosen]
        target.write_text("".join(f"{line}\n" for line in kept))
    return out


def _listed_sequence(line: str) -> str:
    """The sequence a split-list line names: '/JPEGImages/480p/bear/00000.jpg ...' or 'bear'."""
    first = line.split()[0] if line.split() else ""
    return first.strip("/").split("/")[2] if first.startswith("/JPEGImages/") else first


def prepare_stores(data: Path, work: Path, short_side: int) -> tuple[str, str]:
    """Ingest (incremental) and validate: the training store at ``short_side``, the labelled one native."""
    from flows.ingest import ingest_flow
    from flows.validate import validate_flow
    from storage_schemas.config import IngestConfig
    from storage_schemas.records import DecodeParams
    from storage_schemas.validation import ValidateConfig

    train, evaluation = str(work / "train.zarr"), str(work / "eval.zarr")
    for sources, store, side in (([data / "videos"], train, short_side), ([data / "labelled"], evaluation, 0)):
        result = ingest_flow(IngestConfig(sources=[str(s) for s in sources], store=store,
                                          decode=DecodeParams(short_side=side), progress=False))
        if result.failed:
            raise RuntimeError(f"ingest failed for {[o.video_id for o in result.failed]}")
    validate_flow(ValidateConfig(store=train))
    return train, evaluation


def pretrain(preset: str, overrides: dict, store: str, run_dir: Path, seed: int, threads: int,
             milestones: list[float]) -> dict:
    """Train one seed (or finish a run already trained); its steps, CPU and wall seconds, threads."""
    from storage_schemas.config import build_pretrain_config, merge
    from tasks.pretrain.metrics import read_metrics
    from tasks.pretrain.train import train

    run = {"seed": seed, "threads": threads, "progress": False, "milestones": milestones,
           "resume": (run_dir / "checkpoints").is_dir()}
    config = build_pretrain_config(preset, merge(overrides, {"stores": [store], "out": str(run_dir), "run": run}))
    load = os.getloadavg()
    began = time.perf_counter()
    result = train(config, log=lambda line: print(f"  [{run_dir.name}] {line}", flush=True))
    rows = read_metrics(run_dir / "metrics.jsonl")
    last = rows[-1]
    pairs = [r["pairs_per_s"] for r in rows]
    return {"seed": seed, "run_dir": str(run_dir), "steps": result.steps, "cpu_s": round(last["cpu_s"], 1),
            "cpu_minutes": round(last["cpu_s"] / 60, 2), "wall_s": round(last["wall_s"], 1),
            "cpu_per_wall": round(last["cpu_s"] / max(last["wall_s"], 1e-9), 2),
            "threads": last["threads"], "omp_wait_policy": last["omp_wait_policy"],
            "pairs_per_s_median": round(statistics.median(pairs), 1), "final_loss": round(result.final_loss, 4),
            "load_average_before": [round(x, 2) for x in load], "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "seconds_this_call": round(time.perf_counter() - began, 1), "config": config.model_dump(mode="json")}


def _reusable(path: Path, spec, config) -> bool:
    """An existing report scored the same weights with the same protocol (floors: the floor cache
    decides, ``tasks.evaluate.floors``)."""
    from tasks.evaluate.report import read_report
    from tasks.io.files import file_sha256

    if not path.exists() or spec.path is None:
        return False
    try:
        old = read_report(str(path))
    except ValueError:
        return False
    same_weights = old.checkpoint.kind == spec.kind and old.checkpoint.sha256 == file_sha256(spec.path)
    same_protocol = (old.config.features, old.config.propagation) == (config.features, config.propagation)
    videos = {v.video_id for v in old.data.videos} | {s.video_id for s in old.data.skipped}
    return same_weights and same_protocol and bool(videos)


def evaluate(checkpoints: list[str], store: str, out: Path, short_side: int | None, threads: int | None) -> list:
    """Score every checkpoint and the two floors with one protocol; comparison.md and the curve."""
    from storage_schemas.benchmark import EvaluateConfig
    from tasks.evaluate.comparison import write_comparison
    from tasks.evaluate.evaluation import evaluate_encoder
    from tasks.evaluate.outputs import report_path
    from tasks.evaluate.plan import make_plan
    from tasks.evaluate.report import read_report
    from tasks.io.lineage import run_id

    config = EvaluateConfig(checkpoints=checkpoints, random_init=True, data=store, out=str(out), threads=threads,
                            features={"short_side": short_side}, floor_cache=str(out.parent))
    plan = make_plan(config, store)
    paths, run = [], run_id()
    for spec in plan.encoders:
        path = report_path(config.out, spec.name)
        if not _reusable(path, spec, config):
            began = time.perf_counter()
            evaluate_encoder(spec, plan, config, run)
            print(f"  evaluated {spec.name} in {time.perf_counter() - began:.0f} s", flush=True)
        paths.append(str(path))
    write_comparison(paths, config.out)
    return [read_report(p) for p in paths]


def _scores(report) -> dict:
    davis = report.summary["davis"].metrics
    return {key: round(100 * davis[key], 2) for key in METRICS}


def halves(sequences) -> dict[str, list[str]]:
    """The labelled sequences cut in two, to check that a change generalises: sorted names,
    alternating (A: the 1st, 3rd, ...; B: the 2nd, 4th, ...)."""
    names = sorted(set(sequences))
    return {half: part for half, part in (("A", names[0::2]), ("B", names[1::2])) if part}


def _half_scores(report, parts: dict[str, list[str]]) -> dict[str, float]:
    """J&F (%) of each half: the DAVIS mean over the objects of its sequences."""
    from tasks.evaluate.scores import davis_metrics

    out = {}
    for half, names in parts.items():
        objects = [o for seq in report.sequences if seq.sequence in names for o in seq.per_object.values()]
        out[half] = round(100 * davis_metrics(objects)["J&F-Mean"], 2)
    return out


def scores_at(runs: list[dict], reports: list) -> dict:
    """At one resolution: each seed's scores (J&F, J, F and per half), their mean, spread and
    range, the floors and the margins over them, overall and per half."""
    by_name = {r.name: r for r in reports}
    parts = halves(v.sequence for v in reports[0].data.videos)
    floor_reports = {"random-init": next(r for r in reports if r.random_init),
                     "pixels": next(r for r in reports if r.checkpoint.kind == "pixels")}
    floors = {k: {"name": r.name, **_scores(r), "halves": _half_scores(r, parts),
                  "reused_from_cache": bool(r.floor_cache and r.floor_cache.reused), "scored_by_run": r.run_id}
              for k, r in floor_reports.items()}
    seeds = [{"seed": run["seed"], **_scores(by_name[Path(run["run_dir"]).name]),
              "halves": _half_scores(by_name[Path(run["run_dir"]).name], parts)} for run in runs]
    values = [s["J&F-Mean"] for s in seeds]
    mean = statistics.mean(values)
    headline = {"J&F-Mean": round(mean, 2), "J&F-std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
                "J&F-min": min(values), "J&F-max": max(values), "seeds": len(values),
                **{k: round(statistics.mean(s[k] for s in seeds), 2) for k in METRICS[1:]},
                "halves": {h: round(statistics.mean(s["halves"][h] for s in seeds), 2) for h in parts}}
    margins = {k: round(mean - f["J&F-Mean"], 2) for k, f in floors.items()}
    half_margins = {h: {k: round(headline["halves"][h] - f["halves"][h], 2) for k, f in floors.items()} for h in parts}
    return {"halves_sequences": parts, "headline": headline, "floors": floors, "margins": margins,
            "half_margins": half_margins, "per_seed": seeds}


def summarise(runs: list[dict], reports: list, curve_steps: dict[int, float]) -> dict:
    """Headline (mean, spread, range over seeds), floors, margins (also per half of the
    sequences), the curve and the goals."""
    at = scores_at(runs, reports)
    for run, seed in zip(runs, at["per_seed"]):
        run.update({k: v for k, v in seed.items() if k != "seed"})
    floors, margins = at["floors"], at["margins"]
    headline = {**at["headline"],
                "cpu_minutes_mean": round(statistics.mean(run["cpu_minutes"] for run in runs), 2),
                "wall_minutes_mean": round(statistics.mean(run["wall_s"] for run in runs) / 60, 2)}
    first = runs[0]
    curve = []
    for rep in reports:
        run_dir = Path(first["run_dir"])
        if rep.checkpoint.path and Path(rep.checkpoint.path).is_relative_to(run_dir):
            curve.append({"step": rep.checkpoint.step, "fraction": round(rep.checkpoint.step / first["steps"], 4),
                          "cpu_minutes": round(curve_steps.get(rep.checkpoint.step, 0.0) / 60, 2), **_scores(rep)})
    curve.sort(key=lambda p: p["step"])
    end = next((p["J&F-Mean"] for p in curve if p["fraction"] == 1.0), None)
    # The last quarter: from the latest curve point at or before 3/4 of the steps to the end.
    before = [p for p in curve if p["fraction"] <= 0.75 + 1e-6]
    three_quarters = before[-1]["J&F-Mean"] if before else None
    goals = {f"beats_both_floors_by_{GOAL_MARGIN}": min(margins.values()) >= GOAL_MARGIN,
             "within_60_cpu_minutes": max(run["cpu_minutes"] for run in runs) <= 60.0,
             "curve_rises_over_last_quarter": None if end is None or three_quarters is None else end > three_quarters}
    return {"headline": headline, "floors": floors, "margins": margins, "half_margins": at["half_margins"],
            "halves_sequences": at["halves_sequences"], "curve": curve, "goals": goals}


def table(preset: str, summary: dict, runs: list[dict]) -> str:
    """The README table: the preset (mean over seeds), each seed, the two floors."""
    h = summary["headline"]
    lines = ["| model | J&F | J | F | pre-training |", "|---|---:|---:|---:|---|",
             f"| **{preset}**, mean of {h['seeds']} seeds (± s.d., range) | **{h['J&F-Mean']:.1f}** ± {h['J&F-std']:.1f} "
             f"({h['J&F-min']:.1f}–{h['J&F-max']:.1f}) | {h['J-Mean']:.1f} | {h['F-Mean']:.1f} | "
             f"{runs[0]['steps']} steps, {h['cpu_minutes_mean']:.1f} CPU-min, {h['wall_minutes_mean']:.1f} min wall |"]
    for run in runs:
        lines.append(f"| {preset} seed {run['seed']} | {run['J&F-Mean']:.1f} | {run['J-Mean']:.1f} | {run['F-Mean']:.1f} | "
                     f"{run['cpu_minutes']:.1f} CPU-min, {run['wall_s'] / 60:.1f} min wall, {run['threads']} threads |")
    for key, label in (("random-init", "random-init twin (floor)"), ("pixels", "raw pixels, Lab (floor)")):
        f = summary["floors"][key]
        lines.append(f"| {label} | {f['J&F-Mean']:.1f} | {f['J-Mean']:.1f} | {f['F-Mean']:.1f} | none |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help=f"the dev set (default: $VMAC_DEV_DATA or {DATA_NAME} above the checkout)")
    p.add_argument("--work", type=Path, default=ROOT / "vmac-out" / "bench-learning")
    p.add_argument("--preset", default="real-cpu")
    p.add_argument("--set", action="append", default=[], metavar="[SECTION.]FIELD=VALUE", help="as vmac pretrain --set")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--curve", type=float, nargs="*", default=[0, 0.125, 0.25, 0.5, 0.75, 1.0],
                   help="fractions of the first seed's steps evaluated for the learning curve")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of pre-training")
    p.add_argument("--short-side", type=int, default=256, help="decode size of the training videos")
    p.add_argument("--eval-short-side", type=int, default=None, help="evaluation input size (default: stored, 480p)")
    p.add_argument("--eval-threads", type=int, default=None, help="torch threads of evaluation (default: torch's)")
    p.add_argument("--native", action="store_true",
                   help="also score each seed's encoder and the floors at the stored resolution (480p)")
    p.add_argument("--videos", type=int, default=None, help="only the first K training videos")
    p.add_argument("--sequences", type=int, default=None, help="only the first K labelled sequences")
    p.add_argument("--frames", type=int, default=None, help="only the first N frames of each")
    p.add_argument("--tag", default=None, help="name of the evaluation folder (default: the preset)")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    data = find_dev_data(args.data)
    if data is None:
        print(f"no dev data: looked for $VMAC_DEV_DATA and {DATA_NAME} above {ROOT}", file=sys.stderr)
        return 2
    import torch

    from cli.args import parse_overrides

    began, load = time.perf_counter(), os.getloadavg()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    source = take_subset(data, work, args.videos, args.sequences, args.frames)
    train_store, eval_store = prepare_stores(source, work, args.short_side)
    overrides = parse_overrides(args.set)
    runs = []
    for k, seed in enumerate(args.seeds):
        milestones = [f for f in args.curve if f < 1.0] if k == 0 else []
        runs.append(pretrain(args.preset, overrides, train_store, work / "runs" / f"{args.preset}-seed{seed}", seed,
                             args.threads, milestones))
    first = Path(runs[0]["run_dir"])
    curve_ckpts = [str(p) for p in sorted((first / "checkpoints").glob("ckpt-*.pt"))
                   if int(p.stem.rpartition("-")[2]) in {int(round(f * runs[0]["steps"])) for f in args.curve if f < 1.0}]
    checkpoints = [str(Path(run["run_dir"]) / "encoder.pt") for run in runs] + curve_ckpts
    reports = evaluate(checkpoints, eval_store, work / "eval" / (args.tag or args.preset), args.eval_short_side,
                       args.eval_threads)
    cpu_by_step = {int(r["step"]): r["cpu_s"] for r in map(json.loads, (first / "metrics.jsonl").read_text().splitlines())}
    summary = summarise(runs, reports, cpu_by_step)
    if args.native and args.eval_short_side is not None:
        native = evaluate(checkpoints[:len(runs)], eval_store, work / "eval" / f"{args.tag or args.preset}-native",
                          None, args.eval_threads)
        summary["native"] = scores_at(runs, native)
    report = {
        "benchmark": "learning", "preset": args.preset, "overrides": overrides, "seeds": args.seeds,
        "data": {"root": str(data), "subset": source != data, "train_store": train_store, "eval_store": eval_store,
                 "train_short_side": args.short_side,
                 "sequences": sorted({v.sequence for v in reports[0].data.videos}),
                 "selection_notes": list(reports[0].data.notes),
                 "frames_evaluated": reports[0].timing.frames},
        "protocol": {"eval_short_side": args.eval_short_side, **dataclasses.asdict(reports[0].protocol.propagation),
                     "stride": reports[0].protocol.features.stride, "eval_threads": args.eval_threads},
        **summary, "runs": runs,
        "comparison": str(work / "eval" / (args.tag or args.preset) / "comparison.md"),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                 "load_average_start": [round(x, 2) for x in load],
                 "load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "seconds": round(time.perf_counter() - began, 1),
    }
    report["table_markdown"] = table(args.preset, summary, runs)
    text = json.dumps(report, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(report["table_markdown"])
    print(json.dumps({"goals": summary["goals"], "margins": summary["margins"], "out": str(args.out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
