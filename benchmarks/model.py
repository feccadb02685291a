"""Time one VideoMAC training step on CPU and print one JSON object.

A step is what pre-training does per batch: online forward, target forward (no grad), the three
losses, backward, AdamW step and EMA update. For each encoder x input size x mask ratio (and the
minkowski backend at the masked ratio when MinkowskiEngine is importable) it reports the median
of `--repeats` timed steps after `--warmup` untimed ones, plus the ratios the model issue asks
for: step(0.75) / step(0) per backend, and masked_dense / minkowski at 0.75.

    .venv/bin/python benchmarks/model.py [--quick] [--out FILE]

The machine may be shared: medians resist outliers, but re-run if a number looks off.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

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
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
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
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return report


if __name__ == "__main__":
    main()
