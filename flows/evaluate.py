"""evaluate_flow: label propagation with frozen encoders on DAVIS, VIP and JHMDB-style videos.

``vmac evaluate --checkpoint CKPT... [--random-init] --data STORE_OR_FOLDER --out DIR`` writes::

    DIR/benchmark-<name>.json            one per encoder (storage_schemas.benchmark.BenchmarkReport)
    DIR/comparison.md                    every encoder side by side, random-init floor included;
                                         also the Prefect artifact "evaluation-comparison"
    DIR/overlays/<name>/<seq>.png        a few frames: prediction | ground truth
    DIR/masks/<name>/<seq>/00000.png     with --save-masks: DAVIS results layout (palette PNGs)
    DIR/lineage/*.json                   the run's lineage record
    DIR/data.zarr                        when --data is a folder: its videos, ingested at native size
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from prefect import flow
from prefect.runtime import flow_run

from storage_schemas.benchmark import EvaluateConfig
from tasks.evaluate import (
    evaluate_encoder,
    ingest_config_for,
    is_store,
    plan_evaluation,
    publish_comparison,
    record_evaluation_lineage,
)
from tasks.lineage import run_id as new_run_id


@dataclass(frozen=True)
class EvaluationResult:
    out: str
    store: str
    reports: list[str]
    comparison_markdown: str
    lineage: str


@flow(name="evaluate_flow")
def evaluate_flow(config: EvaluateConfig) -> EvaluationResult:
    """Ingest --data if it is a folder, then evaluate every encoder and its random-init floor."""
    from flows.ingest import ingest_flow

    store = config.data if is_store(config.data) else ingest_flow(ingest_config_for(config)).store
    plan = plan_evaluation(config, store)
    run_id, parent = new_run_id(), str(flow_run.id) if flow_run.id else None
    reports = [evaluate_encoder(spec, plan, config, run_id, parent) for spec in plan.encoders]
    markdown = publish_comparison(reports, config.out)
    record = record_evaluation_lineage(config, plan, reports, run_id, parent)
    return EvaluationResult(config.out, store, reports, markdown, record)


# --- CLI ---------------------------------------------------------------------------------------------


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``vmac evaluate`` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "evaluate", help="label propagation (DAVIS J&F, VIP mIoU, JHMDB PCK) with a random-init floor",
        description="Evaluate encoders by CRW label propagation; every architecture is also run with "
                    "random weights as the floor.",
    )
    p.add_argument("--checkpoint", action="append", default=[], metavar="CKPT",
                   help="RUN/encoder.pt or RUN/checkpoints/ckpt-*.pt (repeatable; several per flag allowed)", nargs="+")
    p.add_argument("--random-init", action="store_true",
                   help="evaluate a random-init --encoder even without checkpoints")
    p.add_argument("--encoder", default=None, help="architecture of the random-init floor (default convnextv2_atto)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random-init weights (default 0)")
    p.add_argument("--data", required=True, help="a vmac store, or a folder of DAVIS/VIP/JHMDB layouts to ingest")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default=None, help="only videos of this split (e.g. val)")
    p.add_argument("--save-masks", action="store_true", help="write predicted masks in the DAVIS results layout")
    p.add_argument("--context", type=int, default=20)
    p.add_argument("--radius", type=float, default=12.0)
    p.add_argument("--topk", type=int, default=10)
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--stage-stride", type=int, default=None, choices=[8, 16, 32],
                   help="read this encoder stage and upsample it to stride 8 (default: the stride-8 stage)")
    p.add_argument("--short-side", type=int, default=None, help="resize frames (default: stored resolution)")
    p.add_argument("--batch-size", type=int, default=4, help="frames per encoder forward (default 4)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.set_defaults(func=cmd_evaluate)
    return p


def evaluate_config_from_args(args: argparse.Namespace) -> EvaluateConfig:
    """The EvaluateConfig for CLI arguments, through the validation prefect.yaml parameters get."""
    checkpoints = [path for group in args.checkpoint for path in (group if isinstance(group, list) else [group])]
    return EvaluateConfig.model_validate(
        {
            "checkpoints": checkpoints,
            "random_init": args.random_init,
            "encoder": args.encoder,
            "random_init_seed": args.seed,
            "data": args.data,
            "out": args.out,
            "split": args.split,
            "save_masks": args.save_masks,
            "device": args.device,
            "threads": args.threads,
            "propagation": {"context": args.context, "radius": args.radius, "topk": args.topk,
                            "temperature": args.temperature},
            "features": {"stage_stride": args.stage_stride, "short_side": args.short_side,
                         "batch_size": args.batch_size},
        }
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    config = evaluate_config_from_args(args)
    result = evaluate_flow(config)
    print(result.comparison_markdown)
    print(f"report: {result.out}/comparison.md ({len(result.reports)} benchmark files, lineage {result.lineage})")
    return 0
