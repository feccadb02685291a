"""Where validation's content heuristics draw their lines, measured on real and realistic footage.

The 20 real dev clips (``shared/data/davis2016-dev/videos``, when present) and the generated
scenes of ``benchmarks/slow_scenes.py`` (healthy slow footage: pans, zooms, static cameras, a
fading title card, a screen recording; and broken footage: a frozen camera, black) are ingested
at short side 256, as a training store holds them. For every stored frame and every pair of
consecutive frames it measures what the heuristics look at (``tasks.validate.frames``): each
frame's mean and standard deviation (0-255 levels, over pixels and channels) and each pair's mean
absolute difference. It prints one JSON object (``--out FILE`` also writes it) with each video's
distribution, the longest run of "identical" pairs and the share of such pairs at candidate
thresholds, and draws the distribution (``--plot FILE``, docs/img/validation_thresholds.png).

    .venv/bin/python -m benchmarks.validation_thresholds [--out benchmarks/results/validation_thresholds.json]
        [--plot docs/img/validation_thresholds.png]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.slow_scenes import BROKEN, HEALTHY, write_scenes  # noqa: E402
from storage_schemas.layout import FRAMES  # noqa: E402
from storage_schemas.records import DecodeParams, Status  # noqa: E402
from storage_schemas.validation import ValidateConfig  # noqa: E402
from tasks.ingest.video import ingest_video  # noqa: E402
from tasks.io.sources import expand_sources  # noqa: E402
from tasks.io.store import open_snapshot  # noqa: E402
from tasks.validate.frames import frame_statistics, sample_windows  # noqa: E402

DEV_VIDEOS = next((p / "shared" / "data" / "davis2016-dev" / "videos" for p in ROOT.parents
                   if (p / "shared" / "data" / "davis2016-dev" / "videos").is_dir()), None)
LEVELS = (2, 4, 8, 16)  # candidate frozen_level_max values


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def longest_run(identical: np.ndarray) -> int:
    """Frames in the longest run of consecutive identical pairs (a run of n pairs is n + 1 frames; 1 without)."""
    longest = run = 0
    for same in identical:
        run = run + 1 if same else 0
        longest = max(longest, run)
    return longest + 1


def same_picture_runs(flat_tn: np.ndarray, level: float) -> int:
    """Frames in the longest run whose frames all lie within ``level`` of the run's first frame at
    every sample (validation's frozen run, over the whole video instead of sampled windows)."""
    longest, anchor = 1, 0
    for t in range(1, len(flat_tn)):
        if np.abs(flat_tn[t].astype(np.int16) - flat_tn[anchor]).max() > level:
            anchor = t
        longest = max(longest, t - anchor + 1)
    return longest


def measure(frames_thwc: np.ndarray, config: ValidateConfig) -> dict:
    """What each heuristic looks at: per-frame means and stds, consecutive frames' mean absolute
    difference (the old frozen measure), the largest change of any sample over K frames (the new
    one), the longest same-picture run at candidate levels, and validation's own statistics of its
    sample at the default thresholds."""
    flat = frames_thwc.reshape(len(frames_thwc), -1)
    k = config.thresholds.max_frozen_run
    mean_t = flat.mean(1, dtype=np.float64)
    std_t = flat.std(1, dtype=np.float64)
    diff_t = np.array([np.abs(flat[t].astype(np.int16) - flat[t - 1]).mean() for t in range(1, len(flat))])
    change_k = np.array([np.abs(flat[t].astype(np.int16) - flat[t - k]).max() for t in range(k, len(flat))])
    windows = [(a, frames_thwc[a:b]) for a, b in sample_windows(len(frames_thwc), config)]
    stats = frame_statistics(windows, config.thresholds)
    t = config.thresholds
    return {
        "frames": len(flat),
        "mean_abs_diff": diff_t.round(4).tolist(),
        "mean_abs_diff_percentiles": {p: round(float(np.percentile(diff_t, p)), 4) for p in (0, 5, 50)},
        f"max_change_over_{k}_frames": change_k.astype(int).tolist(),
        "max_change_percentiles": {p: float(np.percentile(change_k, p)) for p in (0, 5, 50)},
        "same_picture_run_at_level": {str(level): same_picture_runs(flat, level) for level in LEVELS},
        "mean_min": round(float(mean_t.min()), 2), "std_min": round(float(std_t.min()), 2),
        "black_share_all_frames": round(float((mean_t <= t.black_mean_max).mean()), 3),
        "validation_sample": {key: stats[key] for key in ("sampled_frames", "black_frame_fraction",
                                                          "constant_frame_fraction", "longest_frozen_run")},
        "marked_at_defaults": sorted(rule for rule, broken in (
            ("no_black_frames", stats["black_frame_fraction"] > t.max_black_frame_fraction),
            ("no_constant_frames", stats["constant_frame_fraction"] > t.max_constant_frame_fraction),
            ("no_long_frozen_runs", stats["longest_frozen_run"] > t.max_frozen_run)) if broken),
    }


def ingest_all(work: Path) -> tuple[str, dict[str, str]]:
    """The store holding the dev clips and the generated scenes; video_id → its class (real, healthy, broken)."""
    scenes = write_scenes(work / "scenes", DEV_VIDEOS)
    sources = [str(DEV_VIDEOS)] if DEV_VIDEOS else []
    store = str(work / "thresholds.zarr")
    classes = {}
    for item in expand_sources(sources + [str(p) for p in scenes]):
        outcome = ingest_video(item, store, DecodeParams(short_side=256))
        name = Path(item.uri).stem
        classes[outcome.video_id] = "healthy" if name in HEALTHY else "broken" if name in BROKEN else "real"
        log(f"{outcome.action} {name}: {outcome.frames} frames")
    return store, classes


def plot(videos: dict, config: ValidateConfig, path: Path) -> None:
    """Two panels per video row, by class: consecutive frames' mean absolute difference with the
    old frozen threshold (1.0), and the largest change of any sample over K frames with
    ``frozen_level_max``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, level = config.thresholds.max_frozen_run, config.thresholds.frozen_level_max
    order = sorted(videos, key=lambda v: ({"broken": 0, "healthy": 1, "real": 2}[videos[v]["class"]],
                                          videos[v]["mean_abs_diff_percentiles"][50]))
    colours = {"real": "tab:blue", "healthy": "tab:green", "broken": "tab:red"}
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.27 * len(order) + 1.8), sharey=True)
    panels = ((axes[0], "mean_abs_diff", 1.0, "old frozen threshold: mean |diff| ≤ 1.0",
               "consecutive frames: mean absolute difference (levels)"),
              (axes[1], f"max_change_over_{k}_frames", level, f"frozen_level_max = {level:g}",
               f"largest change of any sample over {k} frames (levels)"))
    for ax, key, line, label, xlabel in panels:
        for row, video in enumerate(order):
            values = np.maximum(np.asarray(videos[video][key], np.float64), 1e-2)
            jitter = np.random.default_rng(row).uniform(-0.25, 0.25, len(values))
            ax.scatter(values, row + jitter, s=3, alpha=0.4, color=colours[videos[video]["class"]])
        ax.axvline(line, color="black", linestyle="--", linewidth=1)
        ax.text(line * 1.1, len(order) - 0.6, label, fontsize=8, va="top")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel + "; 0 drawn at 0.01", fontsize=8)
    axes[0].set_yticks(range(len(order)), [f"{videos[v]['name']}" + (" *" if videos[v]["marked_at_defaults"] else "")
                                           for v in order], fontsize=7)
    axes[0].set_ylim(-1, len(order))
    fig.suptitle("20 real dev clips (blue), generated healthy slow scenes (green), broken footage (red); "
                 "* marked by validation at the defaults", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    started, load_before = time.time(), os.getloadavg()
    config = ValidateConfig(store="unused")
    with tempfile.TemporaryDirectory() as tmp:
        store, classes = ingest_all(Path(tmp))
        snapshot = open_snapshot(store)
        root = snapshot.root()
        videos = {}
        for video_id, record in snapshot.records().items():
            if record is None or record.status is not Status.complete:
                continue
            frames = snapshot.group(video_id, root)[FRAMES][:]
            videos[video_id] = {"name": Path(record.source_uri).stem, "class": classes[video_id],
                                "fps": record.fps, **measure(frames, config)}
    marked = {c: sorted(v["name"] for v in videos.values() if v["class"] == c and v["marked_at_defaults"])
              for c in ("real", "healthy", "broken")}
    result = {
        "benchmark": "validation_thresholds", "dev_videos": str(DEV_VIDEOS) if DEV_VIDEOS else None,
        "thresholds": config.thresholds.model_dump(), "marked_at_defaults": marked,
        "seconds": round(time.time() - started, 1), "load_before": load_before, "load_after": os.getloadavg(),
        "videos": videos,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.plot:
        plot(videos, config, args.plot)


if __name__ == "__main__":
    main()
