"""The fixed cost of a command: a ``vmac ingest`` and a ``vmac run`` with nothing new to do.

Times the ``vmac`` console script (this checkout's code, its own PREFECT_HOME under ``--work``)
with the work already done, so what is measured is start-up, Prefect and the plan, not decoding:

- ``temporary``: Prefect's temporary API server per command (``VMAC_LOCAL_SERVER=0``, what every
  command did before ``vmac_server/supervisor.py``);
- ``local``: vmac's long-lived local server, already running (every command after the first);
- ``local_cold``: the local server stopped first, so the command starts it (the first command).

Each is timed ``--repeats`` times, interleaved, on the machine as found and with ``--busy``
busy-loop processes (started and stopped by this script), with the load average. The goal
(issue 12 §3): a no-op command in ≤ 3 s. One JSON object on stdout and in ``--out``.

    python benchmarks/command.py [--repeats 3] [--busy 2] [--work DIR] [--out benchmarks/results/command.json]
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.pretrain import busy_loops  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "command.json"
VMAC = shutil.which("vmac", path=os.path.dirname(sys.executable)) or "vmac"
GOAL_SECONDS = 3.0
MODES = ("temporary", "local", "local_cold")


def _env(work: Path, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE")}
    env.update(PREFECT_HOME=str(work / "prefect-home"), PYTHONPATH=str(ROOT), DO_NOT_TRACK="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", VMAC_LOCAL_SERVER="0" if mode == "temporary" else "1")
    return env


def _vmac(work: Path, mode: str, args: list[str]) -> float:
    """Seconds of one ``vmac`` command, which must succeed."""
    began = time.perf_counter()
    done = subprocess.run([VMAC, *args], env=_env(work, mode), cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode:
        raise RuntimeError(f"vmac {' '.join(args)} failed ({mode}): {done.stderr.strip().splitlines()[-1:]}")
    return seconds


def commands(out: Path) -> dict[str, list[str]]:
    run = ["run", "--small-sample", "--out", str(out), "--set", "optimiser.max_steps=20", "--no-progress"]
    return {"ingest": ["ingest", str(out / "sample"), "--store", str(out / "train.zarr"), "--no-progress"], "run": run}


def measure(work: Path, repeats: int, busy: int) -> dict:
    out = work / "out"
    todo = commands(out)
    log(f"setting up: vmac {' '.join(todo['run'])} (once; later runs find nothing new)")
    _vmac(work, "local", todo["run"])
    conditions = {}
    for condition, extra in (("as_found", 0), (f"busy_{busy}", busy)):
        with busy_loops(extra):
            load = os.getloadavg()
            seconds: dict[str, dict[str, list[float]]] = {name: {m: [] for m in MODES} for name in todo}
            for k in range(repeats):
                for name, args in todo.items():
                    for mode in MODES:
                        if mode == "local_cold":
                            subprocess.run([VMAC, "server", "stop"], env=_env(work, mode), capture_output=True)
                        seconds[name][mode].append(round(_vmac(work, mode, args), 2))
                        log(f"  {condition} #{k} {name} {mode}: {seconds[name][mode][-1]} s")
            conditions[condition] = {
                "busy_loops": extra, "load_average_before": [round(x, 2) for x in load],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "commands": {name: {mode: {"median_s": statistics.median(v), "runs_s": v} for mode, v in by_mode.items()}
                             | {"local_vs_temporary": round(statistics.median(by_mode["local"])
                                                            / statistics.median(by_mode["temporary"]), 3),
                                "goal_met": statistics.median(by_mode["local"]) <= GOAL_SECONDS}
                             for name, by_mode in seconds.items()},
            }
    subprocess.run([VMAC, "server", "stop"], env=_env(work, "local"), capture_output=True)
    return conditions


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--busy", type=int, default=os.cpu_count() or 1, help="busy-loop processes for the loaded case")
    p.add_argument("--work", type=Path, default=ROOT / "vmac-out" / "bench-command")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    conditions = measure(args.work.resolve(), args.repeats, args.busy)
    report = {
        "benchmark": "command", "goal_seconds": GOAL_SECONDS,
        "commands": {name: "vmac " + " ".join(a) for name, a in commands(Path("WORK/out")).items()},
        "modes": {"temporary": "Prefect's temporary server per command (VMAC_LOCAL_SERVER=0)",
                  "local": "vmac's local Prefect server, already running",
                  "local_cold": "vmac's local Prefect server, started by this command"},
        "repeats": args.repeats, "conditions": conditions,
        "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seconds": round(time.perf_counter() - began, 1),
    }
    text = json.dumps(report, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
