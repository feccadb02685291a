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
  over the RSS before the phase;
- the compute floor of propagation (``compute_floor``): the floating-point operations one
  steady-state step needs at least (every target site against every context site within the
  radius, and against all of frame 0, one multiply-add per channel), the ones the blockwise code
  performs (whole windows per tile, one extra flag channel), this machine's matmul rate (one
  thread, a large square GEMM and the shapes propagation uses, in CPU time), and the ratio of the
  measured step's CPU time to the floor's. CPU time, not wall time: on a shared machine the wall
  time says as much about the neighbours.

    python benchmarks/evaluate.py [--encoders resnet18 convnextv2_atto] [--repeats 3] [--threads 1] [--out FILE]

On a shared machine the torch thread count matters more than anything else: with other jobs on
the cores, 2 OpenMP threads were several times slower than 1. The load average is recorded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
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

from tasks.evaluate.features import Clock, iter_features
from tasks.evaluate.weights import EncoderSpec, load_encoder
from vmac_core.label_grid import geometry_for
from vmac_core.propagation import LabelPropagator, PropagationConfig, window_half_width

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


def propagation_flops(feature_hw: tuple[int, int], channels: int, cfg: PropagationConfig) -> dict:
    """Floating-point operations (2 per multiply-add) of one steady-state CRW step (context full).

    minimal: each target site's dot products with the context sites within the radius (in-image
    pairs counted exactly) in each of the ``context`` frames, plus all of frame 0's sites.
    implemented: what ``LabelPropagator`` multiplies: for each tile, the (tile + 2 * half)^2
    window in each context frame, and frame 0's sites padded to whole groups, all with one extra
    (padding flag) channel. Label averaging (top-k x labels per site) is left out: < 0.1 %.
    """
    h, w = feature_hw
    sites = h * w
    half, t = window_half_width(cfg.radius), cfg.tile
    offsets = [(dy, dx) for dy in range(-half, half + 1) for dx in range(-half, half + 1)
               if dy * dy + dx * dx < cfg.radius ** 2]
    pairs_in_radius = sum(max(h - abs(dy), 0) * max(w - abs(dx), 0) for dy, dx in offsets)
    first = pairs_in_radius if cfg.restrict_first_frame else sites * sites
    minimal = 2 * channels * (cfg.context * pairs_in_radius + first)
    tiles = -(-h // t) * -(-w // t)
    groups = max(1, min(sites // (64 * cfg.topk), 16))
    padded_first = groups * -(-sites // groups)
    # With restrict_first_frame, frame 0 is one more windowed frame instead of a global one.
    windowed = cfg.context + (1 if cfg.restrict_first_frame else 0)
    windows = 2 * (channels + 1) * windowed * tiles * (t + 2 * half) ** 2 * t * t
    frame0 = 0 if cfg.restrict_first_frame else 2 * (channels + 1) * padded_first * sites
    return {"minimal_gflop": minimal / 1e9, "implemented_gflop": (windows + frame0) / 1e9,
            "implemented_windows_gflop": windows / 1e9, "implemented_frame0_gflop": frame0 / 1e9,
            "sites_within_radius": len(offsets), "window_sites": (t + 2 * half) ** 2}


def matmul_gflops(shapes: dict[str, tuple[int, ...]], seconds: float = 1.0) -> dict[str, float]:
    """GFLOP per CPU second of float32 matmuls on this machine, one per named shape: (m, k, n) is
    ``mm`` of (m, k) by (k, n); (b, m, k, n) is ``bmm``. Each runs for about ``seconds`` of CPU."""
    rates = {}
    generator = torch.Generator().manual_seed(0)
    for name, shape in shapes.items():
        *batch, m, k, n = shape
        a, b = torch.randn(*batch, m, k, generator=generator), torch.randn(*batch, k, n, generator=generator)
        out = torch.empty(*batch, m, n)
        product = torch.bmm if batch else torch.mm
        product(a, b, out=out)  # warm-up
        flop, calls, began = 2 * math.prod(shape), 0, time.process_time()
        while time.process_time() - began < seconds or calls < 3:
            product(a, b, out=out)
            calls += 1
        rates[name] = flop * calls / (time.process_time() - began) / 1e9
    return rates


def compute_floor(feature_hw: tuple[int, int], channels: int, cfg: PropagationConfig, step_cpu_s: float) -> dict:
    """Propagation against its compute floor: FLOPs, this machine's matmul rates, the ratio."""
    flops = propagation_flops(feature_hw, channels, cfg)
    half, t = window_half_width(cfg.radius), cfg.tile
    rates = matmul_gflops({"square_2048": (2048, 2048, 2048),
                           "window_bmm": (16, (t + 2 * half) ** 2, channels + 1, t * t),
                           "frame0_mm": (feature_hw[0] * feature_hw[1], channels + 1, 128)})
    floor_s = flops["minimal_gflop"] / max(rates.values())
    # The implemented products at the rates of their own shapes: what the matmuls alone cost.
    matmuls_s = flops["implemented_windows_gflop"] / rates["window_bmm"] + flops["implemented_frame0_gflop"] / rates["frame0_mm"]
    return {**flops, "matmul_gflops_per_cpu_s": rates, "floor_cpu_s": floor_s, "implemented_matmuls_cpu_s": matmuls_s,
            "measured_cpu_s": step_cpu_s, "ratio_to_floor": step_cpu_s / floor_s}


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
    cfg = PropagationConfig()
    labels = torch.softmax(torch.randn(LABELS, *geom.feature, generator=torch.Generator().manual_seed(0)) * 5, dim=0)
    rss = _reset_peak()
    with torch.inference_mode():
        propagator = LabelPropagator(feats[0], labels, cfg)
        began = time.perf_counter()
        for i in range(cfg.context):
            propagator.step(feats[(i + 1) % len(feats)])
        fill = (time.perf_counter() - began) / cfg.context
        steady, steady_cpu = [], []
        for r in range(repeats):
            began, cpu_began = time.perf_counter(), time.process_time()
            for i in range(steady_frames):
                propagator.step(feats[(r + i) % len(feats)])
            steady.append((time.perf_counter() - began) / steady_frames)
            steady_cpu.append((time.process_time() - cpu_began) / steady_frames)
    propagation = {"seconds_per_frame": statistics.median(steady), "runs": steady,
                   "cpu_seconds_per_frame": statistics.median(steady_cpu),
                   "fill_seconds_per_frame": fill, "held_frames": propagator.held_frames, **_peak_mb(rss)}
    return {
        "encoder": name,
        "parameters": info.parameters,
        "feature_grid": list(geom.feature),
        "padded_input": list(geom.padded),
        "features": features,
        "propagation": propagation,
        "total_seconds_per_frame": features["seconds_per_frame"] + propagation["seconds_per_frame"],
        "compute_floor": compute_floor(geom.feature, features["channels"], cfg, propagation["cpu_seconds_per_frame"]),
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
        "protocol": {"stride": 8, **dataclasses.asdict(PropagationConfig()), "labels": LABELS},
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
