"""Loader benchmark: pairs/s into training batches, vmac's Zarr pair loader vs a JPEG-folder loader.

The JPEG-folder loader is what a user of the official VideoMAC code has: one JPEG file per frame
read with PIL, one PIL RandomResizedCrop (scale 0.2–1, ratio 3/4–4/3, bicubic) and one flip applied
to both frames, then to-tensor and normalisation as torchvision does them, one pair per
``__getitem__`` and default collation. torchvision is not used (docs/architecture.md): its PIL path is
reproduced with PIL calls. Both loaders read the same frames (the store's frames, exported as
JPEG quality 95), produce the same output size, batch size and number of workers.

Then the ``tiny-cpu`` preset trains ``--tiny-steps`` steps on the same store through
``tasks.pretrain.train`` at each worker count: the time each step waits in ``next(batch)``.

Prints one JSON object on stdout (``--out FILE`` also writes it). Medians over ``--repeats``;
the repeats of the two loaders are interleaved so that load from other processes on a shared
machine falls on both alike.

    .venv/bin/python -m benchmarks.loader [--work DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads GNU OpenMP, as vmac does (docs/learning.md)
import torch  # noqa: E402
from PIL import Image
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from storage_schemas.layout import FRAMES  # noqa: E402
from storage_schemas.records import DecodeParams  # noqa: E402
from tasks.ingest.video import ingest_video  # noqa: E402
from tasks.io.sources import expand_sources  # noqa: E402
from tasks.io.store import open_snapshot  # noqa: E402
from tasks.pretrain.index import PairIndex  # noqa: E402
from tasks.pretrain.loader import make_pair_loader  # noqa: E402
from vmac_core.augment import IMAGENET_MEAN, IMAGENET_STD, sample_crop_box  # noqa: E402

JPEG_QUALITY = 95
GOAL_SPEEDUP = 2.0  # issue 12: at least 2x the JPEG-folder loader at every worker count
WARM_STEPS = 5


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- data -------------------------------------------------------------------------------------

def write_videos(folder: Path) -> str:
    """The project's synthetic sample when ``tasks.sample`` exists, else panning textures."""
    try:
        from tasks.sample.write import write_sample
    except ImportError:
        write_sample = None
    if write_sample is not None:
        write_sample(folder / "sample", seed=0, small=False)
        return "tasks.sample.write_sample(seed=0, small=False)"
    from tasks.io.ffmpeg import encode_h264
    from tests.conftest import moving_frames

    (folder / "sample" / "videos").mkdir(parents=True, exist_ok=True)
    for index in range(8):
        frames = moving_frames(96, 288, 512, seed=index)
        encode_h264(frames, str(folder / "sample" / "videos" / f"clip-{index}.mp4"), 24)
    return "tests.conftest.moving_frames, 8 clips of 96 frames at 288x512"


def build_data(work: Path) -> dict:
    """The store (ingested sample) and its JPEG-folder export, built once per work folder."""
    done = work / "data.json"
    if done.exists():
        return json.loads(done.read_text())
    shutil.rmtree(work / "sample", ignore_errors=True)
    shutil.rmtree(work / "store.zarr", ignore_errors=True)
    shutil.rmtree(work / "jpeg", ignore_errors=True)
    started = time.perf_counter()
    source = write_videos(work)
    store = str(work / "store.zarr")
    for item in expand_sources([str(work / "sample" / "videos")]):
        outcome = ingest_video(item, store, DecodeParams())
        if outcome.action == "failed":
            raise RuntimeError(f"ingest failed for {item}: {outcome.reason}")
    index = PairIndex([store])
    snapshot = open_snapshot(store)
    for entry in index.videos:
        frames_thwc = snapshot.group(entry.video_id)[FRAMES][:]
        folder = work / "jpeg" / entry.video_id
        folder.mkdir(parents=True, exist_ok=True)
        for t, frame_hwc in enumerate(frames_thwc):
            Image.fromarray(frame_hwc).save(folder / f"{t:05d}.jpg", quality=JPEG_QUALITY)
    data = {"source": source, "store": store, "jpeg_root": str(work / "jpeg"),
            "videos": len(index.videos), "frames": sum(v.frames for v in index.videos),
            "frame_sizes": sorted({f"{v.height}x{v.width}" for v in index.videos}),
            "build_seconds": round(time.perf_counter() - started, 1)}
    done.write_text(json.dumps(data))
    return data


def disk_bytes(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# --- the JPEG-folder baseline -----------------------------------------------------------------

class JpegFolderPairs(Dataset):
    """One pair per item, as the official code's loader: PIL open, shared RandomResizedCrop and
    flip (torchvision's PIL path: crop, resize bicubic, then flip), to-tensor, normalise."""

    def __init__(self, jpeg_root: str, index: PairIndex, size: int):
        self.folders = [os.path.join(jpeg_root, v.video_id) for v in index.videos]
        self.video_of, self.t_of = index.video_of, index.t_of
        self.size = size
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.video_of)

    def _to_tensor(self, image: Image.Image) -> torch.Tensor:
        # torchvision.transforms.functional.to_tensor, then Normalize (which clones: inplace=False).
        chw = torch.from_numpy(np.array(image, np.uint8, copy=True)).permute(2, 0, 1).contiguous()
        return chw.to(torch.float32).div(255).clone().sub_(self.mean).div_(self.std)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        folder, t = self.folders[self.video_of[item]], int(self.t_of[item])
        images = [Image.open(os.path.join(folder, f"{k:05d}.jpg")).convert("RGB") for k in (t, t + 1)]
        width, height = images[0].size
        # torchvision draws from torch's global generator, which the DataLoader seeds per worker.
        top, left, crop_h, crop_w = sample_crop_box(height, width, torch.default_generator)
        flip = torch.rand(1).item() < 0.5
        out = []
        for image in images:
            image = image.crop((left, top, left + crop_w, top + crop_h)).resize((self.size, self.size), Image.BICUBIC)
            if flip:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
            out.append(self._to_tensor(image))
        return {"frame1_bchw": out[0], "frame2_bchw": out[1]}


# --- measuring --------------------------------------------------------------------------------

def time_batches(loader, batches: int, before=None) -> float:
    """Pairs/s from a fresh iterator to the ``batches``-th batch, pipeline fill included."""
    if before is not None:
        before()
    pairs = 0
    started = time.perf_counter()
    for number, batch in enumerate(loader, 1):
        pairs += batch["frame1_bchw"].shape[0]
        if number == batches:
            break
    return pairs / (time.perf_counter() - started)


def data_wait_at_tiny(store: str, workers: int, steps: int, work: Path) -> dict:
    """The ``tiny-cpu`` preset trained for ``steps`` steps on ``store`` with ``workers`` loader
    workers, through ``tasks.pretrain.train`` itself: per step, the seconds the loop spent in
    ``next(batch)`` (``data_wait_s`` in metrics.jsonl) against the whole step. The first steps
    (workers starting, first batches) are left out of the medians but reported."""
    # Deferred: the model and training stack are only needed for this part of the benchmark.
    from storage_schemas.config import build_pretrain_config
    from tasks.pretrain.train import train

    out = work / f"tiny-cpu-workers-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    config = build_pretrain_config("tiny-cpu", {
        "stores": [store], "out": str(out), "data": {"loader_workers": workers},
        "optimiser": {"max_steps": steps},
        "run": {"progress": False, "tensorboard": False, "checkpoint_every": 10_000, "preview_every": 10_000,
                "plot_every": 10_000, "log_every": 10_000, "milestones": ()},
    })
    threads = torch.get_num_threads()
    train(config, log=lambda message: None)
    torch.set_num_threads(threads)  # train() sets its own; the rest of the benchmark keeps ours
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    warm = rows[WARM_STEPS:]
    waits, step_seconds = [r["data_wait_s"] for r in warm], [r["step_s"] for r in warm]
    return {"steps_measured": len(warm), "threads": rows[-1]["threads"],
            "data_wait_ms_median": round(1000 * statistics.median(waits), 1),
            "data_wait_ms_max": round(1000 * max(waits), 1),
            "step_ms_median": round(1000 * statistics.median(step_seconds), 1),
            "data_wait_share": round(sum(waits) / sum(step_seconds), 3),
            "first_steps_data_wait_ms": [round(1000 * r["data_wait_s"], 1) for r in rows[:WARM_STEPS]]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="folder for the sample, store and JPEG export (kept; reused when present)")
    parser.add_argument("--out", help="also write the JSON object here")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=10, help="batches per timed run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--tiny-steps", type=int, default=30,
                        help="steps of the tiny-cpu preset per worker count for the data-wait figures (0: skip)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads of the main process (DataLoader workers always use 1)")
    args = parser.parse_args(argv)
    # On a shared, oversubscribed machine two OpenMP threads per process spend most of their time
    # in barriers waiting for each other; one thread measures the loaders, not the scheduler.
    torch.set_num_threads(args.threads)

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vmac-loader-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"data in {work}")
    data = build_data(work)
    started = time.perf_counter()
    load_before = os.getloadavg()
    results = {}
    for workers in args.workers:
        zarr_loader, sampler = make_pair_loader([data["store"]], args.size, args.batch_size, workers, seed=0)
        index = zarr_loader.dataset.index
        torch.manual_seed(0)
        jpeg_loader = DataLoader(
            JpegFolderPairs(data["jpeg_root"], index, args.size), batch_size=args.batch_size, shuffle=True,
            drop_last=True, num_workers=workers, persistent_workers=workers > 0,
        )
        if len(sampler) < args.batches:
            raise SystemExit(f"only {len(sampler)} batches per epoch; lower --batches or --batch-size")
        epochs = iter(range(1, 10_000))
        zarr_run = lambda loader=zarr_loader: time_batches(loader, args.batches, lambda: sampler.set_epoch(next(epochs)))  # noqa: E731
        jpeg_run = lambda loader=jpeg_loader: time_batches(loader, args.batches)  # noqa: E731
        # Warm-up: starts persistent workers, opens stores, fills the page cache for both.
        for run in (zarr_run, jpeg_run):
            run()
        runs = {"zarr": [], "jpeg": []}
        for repeat in range(args.repeats):
            for name, run in (("zarr", zarr_run), ("jpeg", jpeg_run)):
                runs[name].append(round(run(), 1))
            log(f"workers={workers} repeat {repeat}: zarr {runs['zarr'][-1]} pairs/s, jpeg {runs['jpeg'][-1]} pairs/s")
        medians = {name: round(statistics.median(values), 1) for name, values in runs.items()}
        results[f"workers_{workers}"] = {
            "zarr_pairs_per_s": medians["zarr"],
            "jpeg_pairs_per_s": medians["jpeg"],
            "speedup": round(medians["zarr"] / medians["jpeg"], 2),
            "runs": runs,
        }
        del zarr_loader, jpeg_loader, zarr_run, jpeg_run
    threads_main = torch.get_num_threads()
    data_wait = {}
    for workers in args.workers if args.tiny_steps else ():
        data_wait[f"workers_{workers}"] = data_wait_at_tiny(data["store"], workers, args.tiny_steps, work)
        log(f"tiny-cpu, workers={workers}: {data_wait[f'workers_{workers}']}")
    report = {
        "benchmark": "loader",
        "metric": "pairs/s delivered into training batches (median over repeats)",
        "results": results,
        "goal": {"speedup_at_least": GOAL_SPEEDUP,
                 **{key: "met" if value["speedup"] >= GOAL_SPEEDUP else "not met" for key, value in results.items()}},
        "tiny_cpu_data_wait": {
            "what": "tiny-cpu preset trained through tasks.pretrain.train on the store: time in next(batch) "
                    f"per optimiser step, first {WARM_STEPS} steps left out of the medians",
            **data_wait},
        "disk_bytes": {"zarr_store": disk_bytes(data["store"]), "jpeg_folder": disk_bytes(data["jpeg_root"]),
                       "jpeg_quality": JPEG_QUALITY},
        "data": {key: data[key] for key in ("source", "videos", "frames", "frame_sizes")},
        "config": {"input_size": args.size, "batch_size": args.batch_size, "batches_per_run": args.batches,
                   "repeats": args.repeats, "gap": 1},
        "machine": {"cpus": os.cpu_count(), "torch_threads_main": threads_main,
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version(), "torch": torch.__version__},
        "seconds": {"build_data": data["build_seconds"], "measure": round(time.perf_counter() - started, 1)},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
