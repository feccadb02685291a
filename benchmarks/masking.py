"""Masking strategies side by side on real video: pre-train one preset per strategy, score each.

For every seed and every mask strategy (``symmetric``, ``independent``, ``motion``, ``adaptive``;
docs/model.md, "Mask strategies"), the same preset is pre-trained for the same number of steps on
the same real videos (the DAVIS-2016 development set's unlabelled MP4s, ingested once with
``--motion``), then scored by label propagation on the labelled development sequences, with the
same protocol for every row. The random-init floor of the same architecture is scored with the
same seeds. One JSON object goes to ``--out`` (default benchmarks/results/masking.json) and stdout:
J&F, J and F per strategy and seed, means and spreads over seeds, each strategy's difference from
``symmetric`` seed by seed, and the cost of each strategy (wall and CPU seconds per step, medians).

Everything lands in ``--work`` (stores, runs, evaluations); a run or evaluation already there is
reused, so a killed benchmark continues where it stopped. Torch runs ``--threads`` threads (1 by
default: on a shared machine one thread degrades far more gently than two).

    python benchmarks/masking.py [--steps 400] [--seeds 0 1 2] [--eval-short-side 240] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# Before torch loads GNU OpenMP (docs/learning.md, "Threads"); Prefect offline, as vmac runs it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from storage_schemas.benchmark import BenchmarkReport, EvaluateConfig  # noqa: E402
from storage_schemas.config import build_pretrain_config, nest_overrides  # noqa: E402
from storage_schemas.records import DecodeParams  # noqa: E402
from tasks.evaluate.evaluation import evaluate_encoder  # noqa: E402
from tasks.evaluate.outputs import report_path  # noqa: E402
from tasks.evaluate.plan import make_plan  # noqa: E402
from tasks.ingest.video import ingest_video  # noqa: E402
from tasks.io.sources import expand_sources  # noqa: E402
from tasks.pretrain.train import train  # noqa: E402
from vmac_core.model_config import MASK_STRATEGIES  # noqa: E402

PRESET = "tiny-cpu"
# The development set's place beside the project (or beside a worktree's parent folder).
METRICS = {"J&F": "J&F-Mean", "J": "J-Mean", "F": "F-Mean"}


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (ffmpeg), user + system."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def find_data(given: str | None) -> Path:
    """The dev set (``benchmarks/learning.py``'s lookup: ``--data``, $VMAC_DEV_DATA, or beside the
    checkout); exits saying where it looked when absent."""
    from benchmarks.learning import DATA_NAME, find_dev_data

    found = find_dev_data(given)
    if found is None:
        sys.exit(f"no DAVIS-2016 development set (videos/ and labelled/) at {given or '$VMAC_DEV_DATA'} "
                 f"or {DATA_NAME} above {ROOT}")
    return found


def ingest(sources: list[str], store: str, params: DecodeParams) -> dict:
    """Ingest (incrementally) every item of ``sources``; what it did and how long it took."""
    started = time.perf_counter()
    outcomes = [ingest_video(item, store, params) for item in expand_sources(sources)]
    failed = [f"{o.video_id}: {o.reason}" for o in outcomes if o.action == "failed"]
    if failed:
        sys.exit("ingest failed: " + "; ".join(failed))
    return {"store": store, "videos": len(outcomes), "frames_decoded": sum(o.frames for o in outcomes),
            "seconds": round(time.perf_counter() - started, 1), "decode": params.model_dump(mode="json")}


def pretrain(store: str, run_dir: Path, strategy: str, seed: int, args) -> dict:
    """Pre-train (or reuse) one run; its timing: wall and CPU seconds, per-step medians."""
    timing_file = run_dir / "bench-timing.json"
    if (run_dir / "encoder.pt").exists() and timing_file.exists():
        return json.loads(timing_file.read_text())
    overrides = {"stores": [store], "out": str(run_dir), "mask_strategy": strategy, "seed": seed,
                 "max_steps": args.steps, "threads": args.threads, "resume": (run_dir / "checkpoints").exists(),
                 "skip_validation_check": True, "progress": False, "checkpoint_every": args.checkpoint_every,
                 "preview_every": args.steps, "plot_every": args.steps, "log_every": 50}
    config = build_pretrain_config(PRESET, nest_overrides(overrides))
    load, wall, cpu = os.getloadavg()[0], time.perf_counter(), cpu_seconds()
    result = train(config, log=lambda message: print(f"  [{strategy} seed {seed}] {message}", flush=True))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steady = rows[1:] or rows  # the first step pays for warm-up
    timing = {"steps": result.steps, "resumed_from": result.resumed_from, "final_loss": result.final_loss,
              "wall_s": round(time.perf_counter() - wall, 1), "cpu_s": round(cpu_seconds() - cpu, 1),
              "step_wall_s_median": statistics.median(r["step_s"] for r in steady),
              "step_cpu_s_median": statistics.median(r["step_cpu_s"] for r in steady),
              "load_average_at_start": round(load, 2), "load_average_at_end": round(os.getloadavg()[0], 2),
              "model_config": config.model.to_dict()}
    timing_file.write_text(json.dumps(timing, indent=2) + "\n")
    return timing


def evaluate(store: str, out: Path, args, checkpoint: str | None = None, seed: int = 0, pixels: bool = False) -> dict:
    """Score one encoder (a checkpoint, the random-init floor with ``seed``, or raw pixels); reuse its JSON."""
    values = {"data": store, "out": str(out), "threads": args.threads, "random_init_seed": seed,
              "features": {"short_side": args.eval_short_side} if args.eval_short_side else {}}
    if checkpoint:
        values["checkpoints"] = [checkpoint]
    elif pixels:
        values["pixels"] = True
    else:
        values.update({"random_init": True, "encoder": args.encoder})
    config = EvaluateConfig.model_validate(values)
    plan = make_plan(config, store)
    spec = plan.encoders[0]  # the checkpoint, or the floor when there is none
    path = report_path(config.out, spec.name)
    wall, cpu = time.perf_counter(), cpu_seconds()
    if not path.exists():
        evaluate_encoder(spec, plan, config, run_id=f"bench-masking-{out.name}")
    report = BenchmarkReport.model_validate_json(path.read_text())
    davis = report.summary["davis"]
    return {"json": str(path), "sequences": davis.sequences,
            **{name: round(100 * davis.metrics[key], 2) for name, key in METRICS.items()},
            "eval_wall_s": round(time.perf_counter() - wall, 1), "eval_cpu_s": round(cpu_seconds() - cpu, 1)}


def raw_pixel_floor(store: str, out: Path, args) -> dict:
    """The raw-pixel floor (CRW's label propagation on Lab pixels, ``vmac evaluate --baseline pixels``)."""
    return evaluate(store, out / "pixels", args, pixels=True) | {"baseline": "pixels"}


def spread(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 2), "std": round(statistics.stdev(values), 2) if len(values) > 1 else None,
            "min": min(values), "max": max(values), "n": len(values)}


def summarise(runs: dict, floors: dict, seeds: list[int]) -> dict:
    """Per strategy: J&F, J, F over seeds; the difference from symmetric, seed by seed; costs."""
    table = {}
    for strategy, by_seed in runs.items():
        row = {name: spread([by_seed[s]["scores"][name] for s in seeds]) for name in METRICS}
        row["step_wall_s_median"] = statistics.median(by_seed[s]["pretrain"]["step_wall_s_median"] for s in seeds)
        row["step_cpu_s_median"] = statistics.median(by_seed[s]["pretrain"]["step_cpu_s_median"] for s in seeds)
        if strategy != "symmetric" and "symmetric" in runs:
            diffs = [round(by_seed[s]["scores"]["J&F"] - runs["symmetric"][s]["scores"]["J&F"], 2) for s in seeds]
            row["J&F_minus_symmetric"] = {"per_seed": diffs, **spread(diffs), "seeds_ahead": sum(d > 0 for d in diffs)}
        table[strategy] = row
    table["random-init floor"] = {name: spread([floors[s][name] for s in seeds]) for name in METRICS}
    ranked = sorted(runs, key=lambda k: table[k]["J&F"]["mean"], reverse=True)
    best, second = ranked[0], ranked[1] if len(ranked) > 1 else None
    return {"table": table, "ranking": ranked, "best": best,
            "best_margin_over_second": round(table[best]["J&F"]["mean"] - table[second]["J&F"]["mean"], 2) if second else None,
            "best_seeds_ahead_of_second": sum(runs[best][s]["scores"]["J&F"] > runs[second][s]["scores"]["J&F"]
                                              for s in seeds) if second else None}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="the DAVIS-2016 development set (videos/, labelled/)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/vmac-bench-masking"))
    parser.add_argument("--strategies", nargs="+", default=list(MASK_STRATEGIES), choices=MASK_STRATEGIES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=400, help="pre-training steps per run")
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, training and evaluation")
    parser.add_argument("--eval-short-side", type=int, default=240, help="evaluate at this short side (0: stored 480p)")
    parser.add_argument("--encoder", default="convnextv2_atto", help="the floor's architecture (the preset's)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/masking.json")
    return parser.parse_args()


def write_report(args, data: Path, ingested: dict, runs: dict, floors: dict, clock: dict, complete: bool) -> dict:
    """The JSON so far (after every run, so that a stopped benchmark still leaves its results)."""
    seeds = [s for s in args.seeds if s in floors and all(s in by_seed for by_seed in runs.values())]
    pixels = raw_pixel_floor(str(args.work / "eval.zarr"), args.work / "eval", args) if complete else None
    report = {
        "benchmark": "masking", "complete": complete, "preset": PRESET, "steps": args.steps, "seeds": seeds,
        "strategies": args.strategies, "data": str(data), "ingest": ingested,
        "evaluation": {"sequences": floors[args.seeds[0]]["sequences"], "short_side": args.eval_short_side or "stored (480p)",
                       "protocol": "CRW label propagation, vmac evaluate defaults (docs/evaluate.md)"},
        "summary": summarise(runs, floors, seeds) if seeds else None, "runs": runs, "floors": {"random_init": floors},
        "raw_pixel_floor": pixels or {"available": False, "why": "scored once every run is done"},
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                 "threads": args.threads, "load_average_before": clock["load_before"],
                 "load_average_now": [round(x, 2) for x in os.getloadavg()]},
        "wall_s": round(time.perf_counter() - clock["wall"], 1), "cpu_s": round(cpu_seconds() - clock["cpu"], 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    clock = {"wall": time.perf_counter(), "cpu": cpu_seconds(), "load_before": [round(x, 2) for x in os.getloadavg()]}
    data = find_data(args.data)
    train_store, eval_store = str(args.work / "train.zarr"), str(args.work / "eval.zarr")
    ingested = {"train": ingest([str(data / "videos")], train_store, DecodeParams(motion=True)),
                "eval": ingest([str(data / "labelled")], eval_store, DecodeParams(short_side=0))}
    runs: dict[str, dict[int, dict]] = {s: {} for s in args.strategies}
    floors: dict[int, dict] = {}
    for seed in args.seeds:
        floors[seed] = evaluate(eval_store, args.work / "eval" / f"floor-s{seed}", args, seed=seed)
        for strategy in args.strategies:
            run_dir = args.work / "runs" / f"{strategy}-s{seed}"
            timing = pretrain(train_store, run_dir, strategy, seed, args)
            scores = evaluate(eval_store, args.work / "eval" / run_dir.name, args, str(run_dir / "encoder.pt"))
            runs[strategy][seed] = {"pretrain": timing, "scores": scores}
            print(f"{strategy} seed {seed}: J&F {scores['J&F']:.2f} ({timing['step_wall_s_median']:.3f} s/step wall, "
                  f"{timing['step_cpu_s_median']:.3f} s CPU)", flush=True)
            write_report(args, data, ingested, runs, floors, clock, complete=False)
    print(json.dumps(write_report(args, data, ingested, runs, floors, clock, complete=True), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
