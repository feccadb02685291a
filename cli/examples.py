"""What ``vmac <command> --help`` shows below the options: the README's examples of that command,
and for ``bench`` every script in ``benchmarks/``.

``tests/cli/test_readme.py`` holds the two together: every ``vmac`` line of a README code block is
here under its command and parses, and every line here is in the README.
"""

from __future__ import annotations

import ast
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

EXAMPLES: dict[str, list[str]] = {
    "run": [
        "vmac run                                         # the embedded sample, tiny-cpu preset",
        "vmac run --source /data/new_clips --store data/train.zarr      # reprocess a new dataset",
        "vmac run --source /data/yt --eval-source /data/DAVIS --preset paper-r50 --pretrain-on deployment",
        "vmac run --reevaluate                            # evaluate again even though nothing changed",
    ],
    "sample": [
        "vmac sample data/sample            # 8 H.264 clips + DAVIS/VIP/JHMDB exports, from seed 0",
        "vmac sample data/sample --seed 3   # another deterministic sample",
    ],
    "ingest": [
        "vmac ingest data/sample/videos --store data/sample.zarr",
        "vmac ingest 'clips/**/*.mp4' /data/DAVIS --store data/mixed.zarr --short-side 0",
        "vmac ingest s3://bucket/videos --store s3://bucket/frames.zarr --dask-address tcp://sched:8786",
        "vmac ingest data/new_clips --store data/sample.zarr --fps 15 --dask-workers 2",
        "vmac ingest data/new_clips --store data/sample.zarr --dry-run   # the plan; nothing is written",
        "vmac ingest /data/videos --store data/train.zarr --motion      # + a motion map per frame (motion masking)",
        "vmac ingest /data/videos --store data/small.zarr --frame-codec jpeg-95   # lossy, ~8x smaller",
        "vmac ingest s3://bucket/videos --store s3://bucket/frames.zarr",
        "vmac ingest /data/videos --store s3://bucket/frames.zarr --dask-address tcp://HOST:8786",
    ],
    "validate": [
        "vmac validate --store data/sample.zarr",
        "vmac validate --store data/sample.zarr --max-frozen-run 12 --fps-range 5 120",
        "vmac validate --store s3://bucket/frames.zarr",
    ],
    "pretrain": [
        "vmac pretrain --store data/sample.zarr --preset tiny-cpu --out runs/tiny",
        "vmac pretrain --store data/sample.zarr --preset tiny-cpu --out runs/tiny --resume",
        "vmac pretrain --store data/sample.zarr@6b16150738f82319 --preset tiny-cpu --out runs/old   # an earlier snapshot",
        "vmac pretrain --store a.zarr --store b.zarr --preset paper-r50 --out runs/r50 --set base_lr=1.5e-3 "
        "--set clip_grad=3",
        "torchrun --nproc-per-node 2 -m cli.main pretrain --store data/sample.zarr --preset tiny-cpu --out runs/ddp",
        "vmac pretrain --store s3://bucket/frames.zarr --preset tiny-cpu --out runs/s3",
        "vmac pretrain --store data/train.zarr --out runs/adaptive --set mask_strategy=adaptive",
        "vmac pretrain --store data/train.zarr --out runs/motion --set mask_strategy=motion --set motion_temperature=0.5",
        "vmac pretrain --store data/train.zarr --preset real-cpu --out runs/real --set 'run.milestones=[0,0.25,0.5]'   "
        "# checkpoints kept for a learning curve",
    ],
    "evaluate": [
        "vmac evaluate --checkpoint runs/tiny/encoder.pt --data data/sample --out eval/tiny --save-masks",
        "vmac evaluate --baseline random-init --encoder resnet18 --data /data/DAVIS --out eval/floor",
        "vmac evaluate --checkpoint weights/r50/encoder.pt --data /data/DAVIS --out eval/official-r50",
        "vmac evaluate --baseline pixels --data /data/DAVIS --out eval/pixels          # the raw-pixel floor alone",
        "vmac evaluate --checkpoint runs/real/checkpoints/ckpt-*.pt runs/real/encoder.pt --data eval.zarr --out eval/curve",
    ],
    "import-weights": [
        "vmac import-weights checkpoint-99.pth --encoder resnet50 --out weights/r50/encoder.pt",
        "vmac import-weights mac-small.pth --encoder convnextv2_small --out weights/cnxv2-s/encoder.pt",
    ],
    "lineage": [
        "vmac lineage vmac-out/eval/tiny-cpu-001/benchmark-tiny-cpu-001.json     # a tree back to the sources",
        "vmac lineage vmac-out/runs/tiny-cpu-001/encoder.pt --json",
        "vmac lineage weights/r50/encoder.pt          # the imported file's sha256",
    ],
    "audit": [
        "vmac audit vmac-out/train.zarr          # re-hash sources, stored frames and motion maps; exit 1 on drift",
        "vmac audit vmac-out/runs/tiny-cpu-001   # re-hash checkpoints, encoder and the input stores' frames",
        "vmac audit s3://bucket/k400.zarr --dask-address tls://HOST:PORT   # each video re-hashed on the cluster",
    ],
    "history": [
        "vmac history data/sample.zarr              # its snapshots: time, command, videos added/changed/removed",
    ],
    "gc": [
        "vmac gc data/sample.zarr --older-than 30   # expire untagged snapshots older than 30 days, free their frames",
    ],
    "migrate": [
        "vmac migrate data/old.zarr                 # a store written before snapshots, converted in place",
    ],
    "server": [
        "vmac server status    # the local Prefect server vmac commands record in (started on first use)",
        "vmac server stop      # stop it now; it also stops after 15 minutes without a command",
    ],
    "bench": [
        "vmac bench ingest --out bench-ingest.json     # same as: python benchmarks/ingest.py",
        "vmac bench model -- --quick                   # benchmarks/model.py",
        "vmac bench loader                             # benchmarks/loader.py",
        "vmac bench evaluate                           # benchmarks/evaluate.py",
        "vmac bench pretrain                           # benchmarks/pretrain.py (time per step of each preset; threads under load)",
        "vmac bench learning                           # benchmarks/learning.py (real video: pre-training against the floors)",
        "vmac bench masking                            # benchmarks/masking.py (mask strategies on real video)",
        "vmac bench command                            # benchmarks/command.py (the fixed cost of a command with nothing to do)",
        "vmac bench scale -- --sizes 100 1000          # benchmarks/scale.py (each stage's cost against the number of videos)",
    ],
}


def epilog(command: str) -> str:
    """The ``examples:`` block of ``command``'s help (shown as written: RawDescriptionHelpFormatter)."""
    return "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[command])


def benchmarks() -> dict[str, str]:
    """Benchmark name → the first line of its script's docstring, for every ``benchmarks/*.py``
    (read with ``ast``: listing them imports nothing). Empty outside a source checkout."""
    found = {}
    for script in sorted(BENCHMARKS.glob("*.py")):
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
        found[script.stem] = doc.strip().splitlines()[0] if doc.strip() else ""
    return found


def bench_description() -> str:
    listed = benchmarks()
    if not listed:
        return "Run a benchmark script from benchmarks/ (none found: they run from a source checkout)."
    width = max(map(len, listed))
    lines = [f"  {name:<{width}}  {summary}" for name, summary in listed.items()]
    return "Run a benchmark script from benchmarks/ (the README's results and benchmarks/README.md quote them).\n\nbenchmarks:\n" + "\n".join(lines)
