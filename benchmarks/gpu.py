"""GPU readiness in one command: the paper presets' step time, the loader against what one GPU eats,
evaluation on CUDA against the CPU, and DDP with nccl (``vmac bench gpu``).

With CUDA:
1. **Steps.** One VideoMAC training step (online and EMA-target forwards, the three losses,
   backward, AdamW, EMA update) of each paper preset's encoder (ResNet-50, ConvNeXt V2-S) at
   224 px on a micro-batch of 64 under bf16 autocast, masked (ratio 0.75) and dense (ratio 0):
   median seconds over ``--repeats`` after ``--warmup``, synchronised; pairs/s = batch / step.
2. **Loader.** vmac's pair loader (``tasks.pretrain.loader``) on a store of the embedded sample at
   the same input size, with 0 workers and one per core: pairs/s, against the GPU's masked
   pairs/s: how many loader cores one GPU needs.
3. **Evaluation.** The sample's labelled DAVIS sequences, random-init ConvNeXt V2-atto of seed 0
   (the same weights on both devices), scored on CUDA and on the CPU: J&F must agree within 0.1.
4. **DDP.** ``torchrun --nproc-per-node N -m cli.main pretrain`` of the tiny preset for a few
   steps on the sample with every visible GPU (nccl when N > 1): seconds per step, and that the
   run finished with the replicas' weights equal after every step (``run.check_replicas``).

Prints one JSON object (``--out FILE`` also writes it). Without CUDA it prints one line and exits 0.
``--device cpu --tiny`` runs the same code at toy sizes on the CPU (gloo for DDP): the test of
this script, not a figure.

    .venv/bin/python benchmarks/gpu.py [--out FILE] [--repeats N] [--device cuda|cpu] [--tiny]
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
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads GNU OpenMP, as vmac does
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vmac_core.masking import random_patch_mask  # noqa: E402
from vmac_core.model_config import ModelConfig  # noqa: E402
from vmac_core.videomac import VideoMAC  # noqa: E402

PAPER = {"paper-r50": "resnet50", "paper-cnxv2-s": "convnextv2_small"}
J_AND_F_TOLERANCE = 0.1  # points: CUDA and CPU label propagation agree to this


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_seconds(encoder: str, size: int, batch: int, ratio: float, device: torch.device, amp: torch.dtype | None,
                 warmup: int, repeats: int) -> list[float]:
    """Seconds per full training step of ``encoder`` at ``size`` px on ``batch`` pairs, ``repeats``
    of them after ``warmup`` untimed ones."""
    torch.manual_seed(0)
    cfg = ModelConfig(encoder=encoder, input_size=size, mask_ratio=ratio)
    model = VideoMAC(cfg).to(device).train()
    optimizer = torch.optim.AdamW(model.param_groups(0.05), lr=1.5e-4, betas=(0.9, 0.95), fused=True)
    g = torch.Generator().manual_seed(0)
    frame1 = torch.randn(batch, 3, size, size, generator=g).to(device)
    frame2 = torch.randn(batch, 3, size, size, generator=g).to(device)
    times = []
    for i in range(warmup + repeats):
        mask_bl = random_patch_mask(batch, cfg.grid_size, cfg.grid_size, ratio, g).to(device)
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = model(frame1, frame2, mask_bl)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        model.update_target(0.996)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def bench_steps(encoders: dict[str, str], size: int, batch: int, device: torch.device, amp, warmup: int,
                repeats: int) -> list[dict]:
    rows = []
    for preset, encoder in encoders.items():
        row = {"preset": preset, "encoder": encoder, "input_size": size, "micro_batch": batch,
               "amp": str(amp).replace("torch.", "") if amp else "off"}
        for name, ratio in (("masked", 0.75), ("dense", 0.0)):
            seconds = statistics.median(step_seconds(encoder, size, batch, ratio, device, amp, warmup, repeats))
            row[f"{name}_step_s"] = round(seconds, 4)
            row[f"{name}_pairs_per_s"] = round(batch / seconds, 1)
            log(f"steps: {preset} {name}: {seconds * 1000:.1f} ms")
        row["dense_over_masked"] = round(row["dense_step_s"] / row["masked_step_s"], 2)
        rows.append(row)
    return rows


def sample_stores(work: Path, tiny: bool) -> tuple[str, str]:
    """The embedded sample's clips (training store, short side 256) and its DAVIS export (native)."""
    from storage_schemas.records import DecodeParams
    from tasks.ingest.video import ingest_video
    from tasks.io.sources import expand_sources
    from tasks.sample.write import write_sample

    data = work / "sample"
    write_sample(str(data), seed=0, small=tiny)
    train, labelled = str(work / "train.zarr"), str(work / "eval.zarr")
    for sources, store, side in (([str(data / "videos")], train, 256), ([str(data / "davis")], labelled, 0)):
        for item in expand_sources(sources):
            outcome = ingest_video(item, store, DecodeParams(short_side=side))
            if outcome.action != "decoded":
                raise RuntimeError(f"the sample did not ingest: {item.uri}: {outcome.reason}")
    return train, labelled


def loader_pairs_per_s(store: str, size: int, batch: int, workers: int, batches: int) -> float:
    """Pairs/s of vmac's pair loader (crops, flips and uint8 batches as training gets them)."""
    from tasks.pretrain.loader import make_pair_loader

    loader, _ = make_pair_loader([store], size, batch, workers, seed=0)
    batches_iter = iter(loader)
    next(batches_iter)  # workers started, caches warm
    start = time.perf_counter()
    for _ in range(batches):
        next(batches_iter)
    return batch * batches / (time.perf_counter() - start)


def evaluate_on(device: str, store: str, out: Path) -> float:
    """J&F (points) of a random-init ConvNeXt V2-atto (seed 0) on the sample's labelled DAVIS sequences."""
    from storage_schemas.benchmark import EvaluateConfig
    from tasks.evaluate.evaluation import evaluate_encoder
    from tasks.evaluate.plan import make_plan
    from tasks.evaluate.report import read_report
    from tasks.io.lineage import run_id

    config = EvaluateConfig(random_init=True, encoder="convnextv2_atto", data=store, out=str(out), device=device,
                            pixel_floor=False)
    plan = make_plan(config, store)
    report = read_report(evaluate_encoder(plan.encoders[0], plan, config, run_id()))
    return 100 * report.summary["davis"].metrics["J&F-Mean"]


def ddp_steps(store: str, gpus: int, device: str, steps: int, work: Path) -> dict:
    """torchrun of the tiny preset on ``gpus`` processes; seconds per step from its metrics."""
    out = work / f"ddp-{gpus}"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
               "-m", "cli.main", "pretrain", "--store", store, "--preset", "tiny-cpu", "--out", str(out),
               "--set", f"optimiser.max_steps={steps}", "--set", f"run.device={device}", "--set", "run.progress=false",
               "--set", "run.check_replicas=true", "--set", "run.tensorboard=false", "--skip-validation-check"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), VMAC_LOCAL_SERVER="0")
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    (work / f"ddp-{gpus}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("vmac ")]
        return {"processes": gpus, "ok": False, "error": lines[-1] if lines else f"exit code {done.returncode}",
                "log": str(work / f"ddp-{gpus}.log")}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    step_s = [r["step_s"] for r in rows[1:] if "step_s" in r] or [r.get("wall_s", 0) for r in rows[-1:]]
    return {"processes": gpus, "backend": "nccl" if device == "cuda" and gpus > 1 else ("gloo" if gpus > 1 else "none"),
            "ok": True, "steps": len(rows), "median_step_s": round(statistics.median(step_s), 4) if step_s else None,
            "seconds": round(time.perf_counter() - began, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (ConvNeXt V2-atto at 64 px, batch 2): a test")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--work", help="a folder for the sample and runs (default: a temporary one)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("vmac bench gpu: no CUDA device here (torch.cuda.is_available() is False); nothing measured")
        return 0
    device = torch.device(args.device)
    amp = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else None
    encoders = {"tiny": "convnextv2_atto"} if args.tiny else PAPER
    size, batch = (64, 2) if args.tiny else (224, 64)
    warmup, repeats = (1, 2) if args.tiny else (args.warmup, args.repeats)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vmac-bench-gpu-"))
    try:
        report = {"environment": {"python": platform.python_version(), "torch": torch.__version__,
                                  "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                                  "gpus": torch.cuda.device_count() if device.type == "cuda" else 0,
                                  "cpu_cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}}
        report["steps"] = bench_steps(encoders, size, batch, device, amp, warmup, repeats)
        train, labelled = sample_stores(work, args.tiny)
        gpu_rate = max(row["masked_pairs_per_s"] for row in report["steps"])
        loader = {}
        for workers in sorted({0, os.cpu_count() or 1} if not args.tiny else {0}):
            rate = loader_pairs_per_s(train, size, batch, workers, 2 if args.tiny else 20)
            loader[str(workers)] = round(rate, 1)
            log(f"loader: {workers} workers: {rate:.0f} pairs/s")
        report["loader"] = {"pairs_per_s_by_workers": loader, "gpu_masked_pairs_per_s": gpu_rate,
                            "gpu_over_loader": round(gpu_rate / max(loader.values()), 2)}
        cpu_score = evaluate_on("cpu", labelled, work / "eval-cpu")
        dev_score = evaluate_on(device.type, labelled, work / f"eval-{device.type}")
        report["evaluate"] = {"device": device.type, "cpu_j_and_f": round(cpu_score, 2),
                              "device_j_and_f": round(dev_score, 2),
                              "agree_within": J_AND_F_TOLERANCE, "agree": abs(cpu_score - dev_score) <= J_AND_F_TOLERANCE}
        gpus = report["environment"]["gpus"] or (2 if args.tiny else 1)
        report["ddp"] = ddp_steps(train, gpus, device.type, 3 if args.tiny else 30, work)
        report["goals"] = {"evaluation_agrees": report["evaluate"]["agree"], "ddp_ran": report["ddp"]["ok"]}
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
