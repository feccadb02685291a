"""Time per optimiser step of each pre-training preset on this machine: one JSON object on stdout.

For each preset, one micro-batch training step (online + target + losses + backward + AdamW +
EMA) is timed on random inputs at the preset's input size, median over --repeats after a warm-up.
The optimiser step of the preset is the micro-batch time × accumulation (batch / micro-batch),
which is what gradient accumulation does. On CPU the paper presets' micro-batch of 64 is timed at
--paper-micro (default 8) and scaled linearly; the JSON says which.

    python benchmarks/pretrain.py [--repeats 3] [--paper-micro 8] [--out FILE]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paper-micro", type=int, default=8, help="micro-batch timed for the paper presets on CPU")
    parser.add_argument("--presets", nargs="*", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from storage_schemas.config import PRETRAIN_PRESETS, build_pretrain_config
    from tasks.pretrain.plan import batch_geometry

    results = {}
    for name in args.presets or list(PRETRAIN_PRESETS):
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
        "repeats": args.repeats,
        "presets": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
