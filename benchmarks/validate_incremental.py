"""Incremental validation's cost: the first validation of a store against one with nothing changed.

The store is the real dev clips (as ``benchmarks.integrity``: short side 256, else the synthetic
sample), ingested once. Each repeat runs validate_flow's steps without Prefect (tables, Great
Expectations suites, result files and stamp): first ``full`` (every video read and re-hashed, as
a store's first validation), then the same config again (nothing changed: every row reused).
``--workers`` also times the first validation with its videos read as Dask tasks on a LocalCluster
of 1 and of 2 workers (cluster start included; the issue's goal: 2 workers ≥ 1.7× faster than 1
on a quiet machine). ``--cli`` also times ``vmac validate --full`` and ``vmac validate`` once each as a user runs them
(Python start, Prefect included). Prints one JSON object (``--out FILE`` also writes it); medians
over ``--repeats``, with the load average before and after. The issue's goal: unchanged ≤ 15% of
first.

    .venv/bin/python -m benchmarks.validate_incremental [--out benchmarks/results/validate_incremental.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.integrity import build_store, log  # noqa: E402
from storage_schemas.validation import ValidateConfig  # noqa: E402
from tasks.validate.record import record_summary  # noqa: E402
from tasks.validate.suites import run_suites  # noqa: E402
from tasks.validate.tables import build_tables  # noqa: E402

GOAL = 0.15  # unchanged / first, from issue 23


def validate(store: str, full: bool, workers: int | None = None) -> dict:
    """Seconds of each step of one validation, and how many videos it read and reused."""
    config = ValidateConfig(store=store, full=full, dask_workers=workers)
    started = time.perf_counter()
    tables = build_tables(config)
    built = time.perf_counter()
    results = run_suites(tables, config.thresholds)
    suites = time.perf_counter()
    summary = record_summary(config, tables, results)
    done = time.perf_counter()
    assert summary.passed, summary.failure_text()
    return {"seconds": done - started, "tables_s": built - started, "suites_s": suites - built,
            "record_s": done - suites, "read": summary.stamp.counts.videos_read,
            "reused": summary.stamp.counts.videos_reused}


def cli_seconds(store: str, *extra: str) -> float:
    """Wall seconds of one ``vmac validate`` in a fresh process (its exit status must be 0)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cli.main", "validate", "--store", store, *extra], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - started


def summarise(runs: list[dict]) -> dict:
    return {"seconds": round(statistics.median(r["seconds"] for r in runs), 3),
            **{k: round(statistics.median(r[k] for r in runs), 3) for k in ("tables_s", "suites_s", "record_s")},
            "read": runs[0]["read"], "reused": runs[0]["reused"], "runs_s": [round(r["seconds"], 3) for r in runs]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", action="store_true", help="also time the first validation on 1 and 2 Dask workers")
    parser.add_argument("--cli", action="store_true", help="also time vmac validate (--full, then unchanged)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vmac-validate-incr-") as tmp:
        log("ingesting the store ...")
        store, what = build_store(Path(tmp))
        load_before = os.getloadavg()
        first, unchanged = [], []
        for repeat in range(args.repeats):
            first.append(validate(store, full=True))
            unchanged.append(validate(store, full=False))
            log(f"repeat {repeat + 1}: first {first[-1]['seconds']:.2f} s, unchanged {unchanged[-1]['seconds']:.2f} s")
        dask = {}
        if args.workers:
            for workers in (1, 2):
                runs = [validate(store, full=True, workers=workers) for _ in range(args.repeats)]
                dask[f"workers_{workers}"] = summarise(runs)
                log(f"{workers} Dask worker(s): first {dask[f'workers_{workers}']['seconds']:.2f} s")
            dask["speedup_2_over_1"] = round(dask["workers_1"]["seconds"] / dask["workers_2"]["seconds"], 3)
        cli = {}
        if args.cli:
            cli = {"first_s": round(cli_seconds(store, "--full"), 2), "unchanged_s": round(cli_seconds(store), 2)}
            cli["ratio"] = round(cli["unchanged_s"] / cli["first_s"], 3)
            log(f"vmac validate: --full {cli['first_s']} s, unchanged {cli['unchanged_s']} s")
        load_after = os.getloadavg()
    results = {"first": summarise(first), "unchanged": summarise(unchanged)}
    ratio = results["unchanged"]["seconds"] / results["first"]["seconds"]
    result = {
        "benchmark": "validate_incremental",
        "metric": "validation steps without Prefect (tables, GE suites, result files and stamp), medians: the first "
                  "(every video read, --full) against one with nothing changed (every row reused)",
        "results": results,
        "ratio_unchanged_to_first": round(ratio, 3),
        "goal": {"ratio_max": GOAL, "met": ratio <= GOAL},
        **({"dask": dask} if dask else {}),
        **({"cli": cli} if cli else {}),
        "data": {"store": what, "short_side": 256},
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
