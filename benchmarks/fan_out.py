"""Small videos per Dask task: validation's reading of N tiny clips, one video per task against
batches (``tasks.io.cluster.batches``), with 1 and 2 workers (``vmac bench fan_out``).

The store is N generated distinct clips (``benchmarks/scale.py``'s, 16 frames of 64×48) ingested
through ``vmac ingest``, or ``--store`` an existing one. Timed: ``tasks.validate.reading.read_rows``
for every complete video (the LocalCluster's start included), the two ways alternating, ``--repeats``
times each; medians. Prints one JSON object (``--out FILE`` also writes it).

    .venv/bin/python benchmarks/fan_out.py [--videos 1000] [--store STORE] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
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

from benchmarks.scale import template_clip, write_clips  # noqa: E402


def measure(store: str, repeats: int) -> dict:
    from storage_schemas.records import Status
    from storage_schemas.validation import ValidateConfig
    from tasks.io import cluster
    from tasks.io.store import open_snapshot
    from tasks.validate.reading import read_rows

    snapshot = open_snapshot(store)
    records = {k: v for k, v in snapshot.records().items() if v is not None and v.status is Status.complete}
    times: dict[str, list[float]] = {}
    default = cluster.BATCH_CALLS
    for _ in range(repeats):
        for workers in (1, 2):
            for label, most in (("one_per_task", 1), ("batched", default)):
                cluster.BATCH_CALLS = most
                began = time.perf_counter()
                read_rows(snapshot, records, ValidateConfig(store=store, dask_workers=workers))
                times.setdefault(f"{label}_{workers}w", []).append(round(time.perf_counter() - began, 2))
                print(label, workers, times[f"{label}_{workers}w"][-1], file=sys.stderr, flush=True)
    cluster.BATCH_CALLS = default
    medians = {k: round(statistics.median(v), 2) for k, v in times.items()}
    return {"videos": len(records), "seconds": times, "median_s": medians,
            "batched_over_one_per_task": {w: round(medians[f"batched_{w}"] / medians[f"one_per_task_{w}"], 2)
                                          for w in ("1w", "2w")},
            "speedup_2w_over_1w": {label: round(medians[f"{label}_1w"] / medians[f"{label}_2w"], 2)
                                   for label in ("one_per_task", "batched")},
            "batch_calls": default, "tasks_per_worker": cluster.TASKS_PER_WORKER}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--store", help="an existing store to read (default: ingest --videos generated clips)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="vmac-bench-fan-out-"))
    env = dict(os.environ, PYTHONPATH=str(ROOT), PREFECT_HOME=str(work / "prefect"))
    try:
        store = args.store
        if store is None:
            write_clips(work / "clips", args.videos, template_clip(work))
            store = str(work / "s.zarr")
            subprocess.run([sys.executable, "-m", "cli.main", "ingest", str(work / "clips"), "--store", store,
                            "--no-progress"], cwd=ROOT, env=env, check=True, capture_output=True)
        load = [round(x, 2) for x in os.getloadavg()]
        report = measure(store, args.repeats)
        report.update(load_average_before=load, load_average_after=[round(x, 2) for x in os.getloadavg()],
                      cpu_cores=os.cpu_count())
    finally:
        from vmac_server.supervisor import stop_server

        stop_server(work / "prefect")
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
