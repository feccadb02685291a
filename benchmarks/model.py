"""Time one VideoMAC training step on CPU and print one JSON object.

A step is what pre-training does per batch: online forward, target forward (no grad), the three
losses, backward, AdamW step and EMA update. For each encoder x input size x mask ratio (and the
minkowski backend at the masked ratio when MinkowskiEngine is importable) it reports the median
of `--repeats` timed steps after `--warmup` untimed ones, plus the ratios the model issue asks
for: step(0.75) / step(0) per backend, and masked_dense / minkowski at 0.75.

    .venv/bin/python benchmarks/model.py [--quick] [--out FILE]

The machine may be shared: medians resist outliers, but re-run if a number looks off. Steps
run on one thread unless --threads says otherwise (see the option's comment).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _threads_from_argv(argv: list[str]) -> int:
    """--threads, read before torch is imported (see the option's comment in main)."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


# OpenMP pools size themselves when their library loads: torch's, and MinkowskiEngine's when the
# minkowski backend is used. torch.set_num_threads alone does not reach the second one, so the
# thread count goes into the environment before anything is imported.
if _threads_from_argv(sys.argv[1:]) > 0:
    os.environ["OMP_NUM_THREADS"] = str(_threads_from_argv(sys.argv[1:]))

import torch  # noqa: E402

from vmac_core.masking import random_patch_mask  # noqa: E402
from vmac_core.model_config import ModelConfig  # noqa: E402
from vmac_core.videomac import VideoMAC  # noqa: E402


def minkowski_available() -> bool:
    try:
        from vmac_core.sparse.minkowski import import_minkowski

        import_minkowski()
        return True
    except ImportError:
        return False


def time_steps(cfg: ModelConfig, batch: int, warmup: int, repeats: int, seed: int = 0) -> tuple[list[float], list[float]]:
    """(wall seconds, process CPU seconds) per full training step, `repeats` of each after
    `warmup` untimed steps. CPU time counts every thread of this process: on a shared machine it
    is steadier than wall time, which also counts waiting for a core."""
    torch.manual_seed(seed)
    model = VideoMAC(cfg).train()
    # fused=True: one kernel for all parameters (CPU supports it); the per-parameter loop costs
    # the same at every mask ratio and would only blur the comparison.
    optimizer = torch.optim.AdamW(model.param_groups(0.05), lr=1.5e-4, betas=(0.9, 0.95), fused=True)
    g = torch.Generator().manual_seed(seed)
    size, grid = cfg.input_size, cfg.grid_size
    frame1 = torch.randn(batch, 3, size, size, generator=g)
    frame2 = torch.randn(batch, 3, size, size, generator=g)
    times, cpu_times = [], []
    for i in range(warmup + repeats):
        mask_bl = random_patch_mask(batch, grid, grid, cfg.mask_ratio, g)
        start, cpu_start = time.perf_counter(), time.process_time()
        out = model(frame1, frame2, mask_bl)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        model.update_target(0.996)
        elapsed, cpu_elapsed = time.perf_counter() - start, time.process_time() - cpu_start
        if i >= warmup:
            times.append(elapsed)
            cpu_times.append(cpu_elapsed)
    return times, cpu_times


def markdown_table(report: dict) -> str:
    """The README/docs table: one row per encoder and size (median seconds per step)."""
    def find(encoder, size, backend, ratio):
        for r in report["results"]:
            if (r["encoder"], r["input_size"], r["backend"], r["mask_ratio"]) == (encoder, size, backend, ratio):
                return r["median_s"]
        return None

    lines = [
        "| encoder | px | step, ratio 0.75 (s) | step, ratio 0 (s) | 0.75 / 0 | minkowski, 0.75 (s) | masked_dense / minkowski |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["ratios"]:
        enc, size, masked = row["encoder"], row["input_size"], row["mask_ratio"]
        cells = [find(enc, size, "masked_dense", masked), find(enc, size, "masked_dense", 0.0), row.get("masked_over_unmasked"),
                 find(enc, size, "minkowski", masked), row.get("masked_dense_over_minkowski")]
        lines.append(f"| {enc} | {size} | " + " | ".join("-" if c is None else f"{c:g}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", nargs="+", default=["resnet18", "convnextv2_atto", "convnextv2_tiny"])
    # 128, not 112: inputs must be multiples of the encoder stride and patch size (32);
    # 112 px is 3.5 patches and has no stride-32 grid.
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 224])
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.75, 0.0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-minkowski", action="store_true", help="skip the minkowski backend even if importable")
    parser.add_argument("--quick", action="store_true", help="128 px only, 1 warm-up, 3 repeats")
    # One thread by default: on a shared 2-core machine, 2-thread steps spent most of their time
    # in OpenMP barriers waiting for a descheduled thread (dense steps up to 7x slower than
    # 1-thread ones, outliers of 10x), which says nothing about the model.
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1; 0 = torch's choice)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.warmup, args.repeats = [128], 1, 3
    if args.threads:
        torch.set_num_threads(args.threads)

    backends = ["masked_dense"] + ([] if args.no_minkowski or not minkowski_available() else ["minkowski"])
    results = []
    for encoder in args.encoders:
        for size in args.sizes:
            for backend in backends:
                # The minkowski backend is compared at the masked ratio only; unmasked it is just a
                # slower dense network.
                ratios = args.ratios if backend == "masked_dense" else [r for r in args.ratios if r > 0]
                for ratio in ratios:
                    cfg = ModelConfig(encoder=encoder, backend=backend, input_size=size, mask_ratio=ratio)
                    times, cpu_times = time_steps(cfg, args.batch, args.warmup, args.repeats)
                    row = {
                        "encoder": encoder,
                        "input_size": size,
                        "backend": backend,
                        "mask_ratio": ratio,
                        "median_s": round(statistics.median(times), 4),
                        "times_s": [round(t, 4) for t in times],
                        "median_cpu_s": round(statistics.median(cpu_times), 4),
                    }
                    results.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)

    def median(encoder, size, backend, ratio, key="median_s"):
        for r in results:
            if (r["encoder"], r["input_size"], r["backend"], r["mask_ratio"]) == (encoder, size, backend, ratio):
                return r[key]
        return None

    ratios = []
    masked = max(args.ratios)
    for encoder in args.encoders:
        for size in args.sizes:
            row = {"encoder": encoder, "input_size": size, "mask_ratio": masked}
            dense0 = median(encoder, size, "masked_dense", 0.0)
            sparse = median(encoder, size, "masked_dense", masked)
            if dense0 and sparse:
                row["masked_over_unmasked"] = round(sparse / dense0, 3)
                cpu0 = median(encoder, size, "masked_dense", 0.0, "median_cpu_s")
                row["masked_over_unmasked_cpu"] = round(median(encoder, size, "masked_dense", masked, "median_cpu_s") / cpu0, 3)
            mink = median(encoder, size, "minkowski", masked)
            if mink and sparse:
                row["masked_dense_over_minkowski"] = round(sparse / mink, 3)
            ratios.append(row)

    report = {
        "benchmark": "vmac VideoMAC training step (online + target + losses + backward + AdamW + EMA)",
        "batch": args.batch,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "statistic": "median seconds per step",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "backends": backends,
        "results": results,
        "ratios": ratios,
    }
    text = json.dumps(report, indent=2)
    print(markdown_table(report), file=sys.stderr)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return report


if __name__ == "__main__":
    main()
