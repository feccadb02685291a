"""Time per optimiser step of each pre-training preset on this machine, and the thread policy
under load: one JSON object on stdout.

Presets: for each, one micro-batch training step (online + target + losses + backward + AdamW +
EMA) is timed on random inputs at the preset's input size, median over --repeats after a warm-up.
The optimiser step of the preset is the micro-batch time × accumulation (batch / micro-batch),
which is what gradient accumulation does. On CPU the paper presets' micro-batch of 64 is timed at
--paper-micro (default 8) and scaled linearly; the JSON says which.

Threads (``--threads-preset NAME``, skipped with ``--no-threads``): the same step of that preset,
timed in a fresh process per setting (OpenMP reads ``OMP_WAIT_POLICY`` when torch loads it), for
torch threads 1 and all cores, OpenMP's default wait policy and PASSIVE, on the machine as found
and with ``--busy`` extra busy-loop processes started (and stopped, by PID) by this script:
pairs/s (median over --thread-steps steps) and CPU seconds per step. The load average is recorded
before and after each setting.

    python benchmarks/pretrain.py [--repeats 3] [--paper-micro 8] [--threads-preset tiny-cpu] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _step_seconds(config, micro: int, repeats: int) -> list[float]:
    import torch

    from vmac_core.masking import random_patch_mask
    from vmac_core.schedules import ema_momentum_at
    from vmac_core.videomac import VideoMAC

    torch.manual_seed(0)
    model = VideoMAC(config.model)
    optimizer = torch.optim.AdamW(model.param_groups(config.optimiser.weight_decay), lr=1e-4,
                                  betas=config.optimiser.betas)
    size = config.model.input_size
    grid = config.model.grid_size
    generator = torch.Generator().manual_seed(0)
    frame1 = torch.randn(micro, 3, size, size, generator=generator)
    frame2 = torch.randn(micro, 3, size, size, generator=generator)
    times = []
    for i in range(repeats + 1):
        mask = random_patch_mask(micro, grid, grid, config.model.mask_ratio, generator)
        started = time.perf_counter()
        out = model(frame1, frame2, mask)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        model.update_target(ema_momentum_at(i, 100, config.model.ema_momentum_base))
        if i:  # the first step is the warm-up
            times.append(time.perf_counter() - started)
    return times


def _worker(preset: str, threads: int, steps: int) -> None:
    """In a fresh process (the parent set OMP_WAIT_POLICY before torch loads): time ``steps``
    training steps of ``preset`` with ``threads`` torch threads; print one JSON line."""
    import torch

    from storage_schemas.config import build_pretrain_config
    from tasks.pretrain.plan import batch_geometry

    torch.set_num_threads(threads)
    config = build_pretrain_config(preset, {"stores": ["unused"], "out": "unused"})
    micro = batch_geometry(config.optimiser, 1).micro_batch
    cpu = time.process_time()
    times = _step_seconds(config, micro, steps)
    print(json.dumps({"step_s": times, "micro_batch": micro, "threads": torch.get_num_threads(),
                      "cpu_s_per_step": (time.process_time() - cpu) / (steps + 1)}))


@contextlib.contextmanager
def busy_loops(count: int) -> Iterator[None]:
    """``count`` processes that spin on one core each while the block runs (given 2 s to start),
    stopped by PID at its end; also for ``benchmarks/command.py``."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(2.0 if count else 0.0)
        yield
    finally:
        for loop in loops:
            loop.terminate()
            loop.wait(timeout=30)


def threads_under_load(preset: str, busy: int, steps: int) -> dict:
    """Pairs/s of ``preset``'s step per (threads, wait policy), as found and with ``busy`` busy loops."""
    cores = os.cpu_count() or 1
    settings = [(threads, policy) for threads in sorted({1, cores}) for policy in ("default", "PASSIVE")]
    results: dict[str, dict] = {}
    for condition, extra in (("as_found", 0), (f"busy_{busy}", busy)):
        with busy_loops(extra):
            for threads, policy in settings:
                env = dict(os.environ)
                env.pop("OMP_WAIT_POLICY", None)
                if policy != "default":
                    env["OMP_WAIT_POLICY"] = policy
                load_before = os.getloadavg()
                began = time.perf_counter()
                out = subprocess.run([sys.executable, __file__, "--worker", preset, str(threads), str(steps)],
                                     env=env, capture_output=True, text=True, check=True, cwd=ROOT)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                micro = row["micro_batch"]
                results[f"{condition}/threads_{threads}/{policy}"] = {
                    "condition": condition, "busy_loops": extra, "threads": threads, "omp_wait_policy": policy,
                    "pairs_per_s": round(micro / statistics.median(row["step_s"]), 1),
                    "pairs_per_s_runs": [round(micro / t, 1) for t in row["step_s"]],
                    "cpu_s_per_step": round(row["cpu_s_per_step"], 3),
                    "seconds": round(time.perf_counter() - began, 1),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                }
    return {"preset": preset, "steps": steps, "busy_loops": busy, "cores": cores, "settings": results}


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paper-micro", type=int, default=8, help="micro-batch timed for the paper presets on CPU")
    parser.add_argument("--presets", nargs="*", default=None)
    parser.add_argument("--threads-preset", default="tiny-cpu", help="preset timed per thread setting")
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 1, help="busy-loop processes for the loaded case")
    parser.add_argument("--thread-steps", type=int, default=10, help="timed steps per thread setting")
    parser.add_argument("--no-threads", action="store_true", help="skip the thread settings")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from storage_schemas.config import PRETRAIN_PRESETS, build_pretrain_config
    from tasks.pretrain.plan import batch_geometry

    results = {}
    for name in [] if args.presets == [] else args.presets or list(PRETRAIN_PRESETS):
        config = build_pretrain_config(name, {"stores": ["unused"], "out": "unused"})
        micro_preset = batch_geometry(config.optimiser, 1).micro_batch
        micro = micro_preset if name == "tiny-cpu" else min(micro_preset, args.paper_micro)
        times = _step_seconds(config, micro, args.repeats)
        per_sample = statistics.median(times) / micro
        batch_size = config.optimiser.batch_size
        accumulation = batch_size / micro_preset
        results[name] = {
            "encoder": config.model.encoder, "input_size": config.model.input_size,
            "mask_ratio": config.model.mask_ratio, "batch_size": batch_size, "micro_batch": micro_preset,
            "timed_micro_batch": micro, "micro_step_s_samples": times, "micro_step_s": statistics.median(times),
            "optimizer_step_s": per_sample * batch_size,
            "extrapolated": micro != micro_preset, "accumulation": accumulation,
        }
    report = {
        "benchmark": "pretrain_presets",
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                 "threads": torch.get_num_threads(), "load_average": list(os.getloadavg())},
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "repeats": args.repeats,
        "presets": results,
    }
    if not args.no_threads:
        report["threads"] = threads_under_load(args.threads_preset, args.busy, args.thread_steps)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
