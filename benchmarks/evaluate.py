"""Evaluate benchmark: seconds per frame of label propagation at DAVIS 480p on this CPU.

Prints one JSON object on stdout (and writes it with --out). For each encoder (random init; speed
does not depend on the weights), on 854x480 frames through the evaluation's own code
(``tasks.evaluate.features.iter_features`` and ``vmac_core.propagation``), medians over --repeats:

- features: encoder forward at stride 8 (normalise, pad to 864x480, crop to 60x107 cells),
  ``--batch-size`` frames per forward, in s/frame;
- propagation: one CRW step with the context full (frame 0 + 20 previous frames, radius 12,
  top-k 10, 4 labels as for a 3-object DAVIS sequence), in s/frame; the first 20 steps, while
  the context fills, are timed separately (``fill_seconds_per_frame``);
- total: features + propagation per frame at steady state;
- peak memory: the process's peak RSS (VmHWM, reset before each phase) in MB, and its growth
  over the RSS before the phase.

    python benchmarks/evaluate.py [--encoders resnet18 convnextv2_atto] [--repeats 3] [--threads 1] [--out FILE]

On a shared machine the torch thread count matters more than anything else: with other jobs on
the cores, 2 OpenMP threads were several times slower than 1. The load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage_schemas.benchmark import PropagationParams
from tasks.evaluate.features import Clock, iter_features
from tasks.evaluate.weights import EncoderSpec, load_encoder
from vmac_core.label_grid import geometry_for
from vmac_core.propagation import LabelPropagator, PropagationConfig

HEIGHT, WIDTH = 480, 854
LABELS = 4


def _status_kb(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _reset_peak() -> int:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); return the RSS in kB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def _peak_mb(rss_before_kb: int) -> dict:
    peak = _status_kb("VmHWM")
    return {"peak_rss_mb": round(peak / 1024, 1), "peak_growth_mb": round((peak - rss_before_kb) / 1024, 1)}


def _frames(count: int, seed: int = 0) -> np.ndarray:
    """uint8 (count, 480, 854, 3): a blocky random texture panning 3 px per frame."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (HEIGHT // 8 + 1, (WIDTH + 3 * count) // 8 + 2, 3), dtype=np.uint8)
    texture = np.kron(coarse, np.ones((8, 8, 1), np.uint8))
    return np.stack([texture[:HEIGHT, 3 * t:3 * t + WIDTH] for t in range(count)])


def bench_encoder(name: str, repeats: int, batch_size: int, steady_frames: int) -> dict:
    device = torch.device("cpu")
    encoder, info = load_encoder(EncoderSpec(f"random-init-{name}", name, "random-init", seed=0), device)
    geom = geometry_for((HEIGHT, WIDTH), stride=8)
    frames = _frames(batch_size * (repeats + 1))

    # Features: one warm-up batch, then one timed batch per repeat.
    rss = _reset_peak()
    per_frame = []
    for r in range(repeats + 1):
        block = frames[r * batch_size:(r + 1) * batch_size]
        clock = Clock()
        feats = list(iter_features(encoder, block, geom, 8, batch_size, device, clock))
        if r:
            per_frame.append(clock.features / len(block))
    features = {"seconds_per_frame": statistics.median(per_frame), "runs": per_frame,
                "channels": int(feats[0].shape[0]), **_peak_mb(rss)}

    # Propagation: fill the context, then time steady-state steps (content does not change the
    # work, so the few feature maps above are cycled).
    cfg = PropagationConfig(**PropagationParams().model_dump())
    labels = torch.softmax(torch.randn(LABELS, *geom.feature, generator=torch.Generator().manual_seed(0)) * 5, dim=0)
    rss = _reset_peak()
    with torch.inference_mode():
        propagator = LabelPropagator(feats[0], labels, cfg)
        began = time.perf_counter()
        for i in range(cfg.context):
            propagator.step(feats[(i + 1) % len(feats)])
        fill = (time.perf_counter() - began) / cfg.context
        steady = []
        for r in range(repeats):
            began = time.perf_counter()
            for i in range(steady_frames):
                propagator.step(feats[(r + i) % len(feats)])
            steady.append((time.perf_counter() - began) / steady_frames)
    propagation = {"seconds_per_frame": statistics.median(steady), "runs": steady,
                   "fill_seconds_per_frame": fill, "held_frames": propagator.held_frames, **_peak_mb(rss)}
    return {
        "encoder": name,
        "parameters": info.parameters,
        "feature_grid": list(geom.feature),
        "padded_input": list(geom.padded),
        "features": features,
        "propagation": propagation,
        "total_seconds_per_frame": features["seconds_per_frame"] + propagation["seconds_per_frame"],
        "peak_rss_mb": max(features["peak_rss_mb"], propagation["peak_rss_mb"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", nargs="+", default=["resnet18", "convnextv2_atto"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4, help="frames per encoder forward (as evaluate)")
    parser.add_argument("--steady-frames", type=int, default=2, help="propagation steps per timed repeat")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1; see the docstring)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_before = os.getloadavg()
    results = [bench_encoder(name, args.repeats, args.batch_size, args.steady_frames) for name in args.encoders]
    report = {
        "benchmark": "evaluate",
        "frame_size": [HEIGHT, WIDTH],
        "protocol": {"stride": 8, **PropagationParams().model_dump(), "labels": LABELS},
        "repeats": args.repeats,
        "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "encoders": {r["encoder"]: r for r in results},
        "seconds": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
