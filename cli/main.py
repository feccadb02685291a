"""The ``vmac`` command: one subcommand per flow; each builds its config (``cli.args``), runs the
flow and renders the result (``cli.render``).

The flows are imported inside each ``cmd_*``: they load Prefect, torch and Zarr (several
seconds), which ``vmac --help``, a usage error or ``vmac lineage`` should not wait for.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from pathlib import Path

from rich.console import Console

from cli import render
from cli.args import (
    ConfigError,
    default_of,
    evaluate_config_from_args,
    ingest_config_from_args,
    pipeline_config_from_args,
    pretrain_config_from_args,
    validate_config_from_args,
)
from storage_schemas.benchmark import FeatureParams, PropagationParams
from storage_schemas.config import DEFAULT_PRESET, PRETRAIN_PRESETS, PipelineConfig
from storage_schemas.records import DecodeParams

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


# --- commands ------------------------------------------------------------------------------------


def cmd_sample(args: argparse.Namespace) -> int:
    from flows.sample import sample_flow

    manifest = sample_flow(args.dir, seed=args.seed, small=args.small)
    print(f"wrote the sample ({len(manifest['clips'])} clips, seed {args.seed}) to {args.dir}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from flows.ingest import ingest_flow

    return render.print_ingest(ingest_flow(ingest_config_from_args(args)))


def cmd_run(args: argparse.Namespace) -> int:
    config = pipeline_config_from_args(args)  # before the slow import: a config error exits at once
    from flows.pipeline import pipeline_flow

    result = pipeline_flow(config)
    print(f"pretraining: {result.pretrain_action} ({result.run_dir}); frames decoded: {result.frames_decoded}")
    print(f"report: {result.report}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Run validate_flow; print the summary; 1 when a critical rule failed, 2 without a store."""
    from flows.validate import ValidationFailedError, validate_flow

    config = validate_config_from_args(args)
    try:
        summary = validate_flow(config)
    except ValidationFailedError as exc:
        summary = exc.summary
    except FileNotFoundError as exc:
        print(f"vmac validate: {exc}")
        return 2
    render.print_validation_summary(summary)
    return 0 if summary.passed else 1


def cmd_pretrain(args: argparse.Namespace) -> int:
    config = pretrain_config_from_args(args)
    if int(os.environ.get("RANK", "0")) != 0:
        # Under torchrun only rank 0 runs the Prefect flow; the other ranks train directly.
        from tasks.pretrain.train import train

        train(config, log=lambda message: None)
        return 0
    from flows.pretrain import pretrain_flow

    result = pretrain_flow(config)
    print(f"trained {result.steps} steps, final loss {result.final_loss:.4f}")
    print(f"run directory: {result.run_dir}\nencoder: {result.encoder}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from flows.evaluate import evaluate_flow

    result = evaluate_flow(evaluate_config_from_args(args))
    print(result.comparison_markdown)
    print(f"report: {result.out}/comparison.md ({len(result.reports)} benchmark files, lineage {result.lineage})")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    """Print the lineage tree (rich, or JSON with --json); 2 when nothing is at PATH.

    Runs the task function directly, not lineage_flow: it only reads, and an interactive query
    should not wait for a Prefect API to start.
    """
    from tasks.audit.tree import lineage_tree

    try:
        tree = lineage_tree(args.path)
    except FileNotFoundError as exc:
        print(f"vmac lineage: {exc}")
        return 2
    if args.json:
        print(json.dumps(tree, indent=2))
    else:
        Console().print(render.render_tree(tree))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Run audit_flow; print the drift table (or JSON); 1 when anything drifted, 2 for a bad path."""
    from flows.audit import audit_flow

    try:
        report = audit_flow(args.path, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as exc:
        print(f"vmac audit: {exc}")
        return 2
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        render.print_audit_report(report)
    return 1 if report.drifted else 0


def cmd_bench(args: argparse.Namespace) -> int:
    script = BENCHMARKS / f"{args.name}.py"
    if not script.exists():
        print(f"no benchmark {args.name!r} (looked for {script}; benchmarks run from a source checkout)", file=sys.stderr)
        return 2
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


# --- parsers -------------------------------------------------------------------------------------


def add_decode_options(p: argparse.ArgumentParser) -> None:
    """Decoding and Dask options shared by ``ingest`` and ``run``."""
    p.add_argument("--short-side", type=int, default=None,
                   help=f"resize the short side (0 keeps native; default {default_of(DecodeParams, 'short_side')})")
    p.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: native)")
    p.add_argument("--shard-frames", type=int, default=None,
                   help=f"frames per shard along time (default {default_of(DecodeParams, 'shard_frames')})")
    p.add_argument("--on-decode-error", default=None, choices=["fail", "keep"],
                   help="a video whose decode logged errors (ffmpeg conceals them) fails (default), or is kept "
                        "with the error count in its record")
    p.add_argument("--motion", action="store_true",
                   help="keep a motion map beside the frames (codec motion vectors, else frame differences): "
                        "what --set mask_strategy=motion masks by")
    p.add_argument("--dask-address", default=None, help="attach to a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="write the embedded synthetic sample dataset")
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--small", action="store_true", help="a smaller, faster variant (for tests)")
    p.set_defaults(func=cmd_sample)


def add_ingest_parser(sub) -> None:
    p = sub.add_parser("ingest", help="decode videos and frame folders into a Zarr store (Dask-parallel, incremental)")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="files, folders, globs or fsspec URLs")
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    add_decode_options(p)
    p.set_defaults(func=cmd_ingest)


def add_run_parser(sub) -> None:
    out = default_of(PipelineConfig, "out")
    p = sub.add_parser("run", help="the whole pipeline: ingest, validate, pretrain, evaluate (default: the embedded sample)")
    p.add_argument("--source", action="append", default=None, help="train on this instead of the sample (repeatable)")
    p.add_argument("--eval-source", action="append", default=None, help="a labelled DAVIS/VIP/JHMDB folder (repeatable)")
    p.add_argument("--store", default=None, help=f"training store (default {out}/train.zarr)")
    p.add_argument("--eval-store", default=None, help=f"evaluation store (default {out}/eval.zarr)")
    p.add_argument("--out", default=None, help=f"output folder (default {out})")
    p.add_argument("--seed", type=int, default=None,
                   help=f"seed of the embedded sample (default {default_of(PipelineConfig, 'seed')})")
    p.add_argument("--small-sample", action="store_true", help="the small embedded sample (a quick smoke run)")
    p.add_argument("--preset", default=None, choices=list(PRETRAIN_PRESETS),
                   help=f"pre-training preset (default {default_of(PipelineConfig, 'preset')})")
    p.add_argument("--set", action="append", default=[], metavar="[SECTION.]FIELD=VALUE",
                   help="override a pre-training field, as for vmac pretrain, e.g. --set optimiser.base_lr=5e-4")
    p.add_argument("--on-new-data", default=None, choices=["continue", "new-run"],
                   help="after new data: warm-start from the last checkpoint (default) or start a new run")
    p.add_argument("--pretrain-on", default=None, choices=["local", "deployment"],
                   help="train here (default), or hand over to the pretrain_flow deployment (gpu work pool)")
    p.add_argument("--reevaluate", action="store_true", help="evaluate again even if this encoder was evaluated")
    add_decode_options(p)
    p.set_defaults(func=cmd_run)


def add_validate_parser(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="run the expectation suites on a store; stamp the result into it (pretraining checks the stamp)",
    )
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    p.add_argument("--sample-frames", type=int, default=None, help="frames sampled per video (default 64)")
    p.add_argument("--sample-windows", type=int, default=None, help="contiguous windows the sample is split into (default 4)")
    p.add_argument("--max-frozen-run", type=int, default=None, metavar="K", help="longest frozen run allowed (default 8)")
    p.add_argument("--fps-range", type=float, nargs=2, default=None, metavar=("MIN", "MAX"), help="accepted stored fps (default 1 240)")
    p.add_argument("--frame-count-tolerance", type=float, default=None, help="relative frame-count slack vs the probe (default 0.05)")
    p.set_defaults(func=cmd_validate)


def add_pretrain_parser(sub) -> None:
    p = sub.add_parser("pretrain", help="VideoMAC pre-training on validated stores (resumable; DDP under torchrun)")
    p.add_argument("--store", action="append", required=True, help="a validated store (repeatable)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRETRAIN_PRESETS),
                   help=f"the recipe the options below change (default {DEFAULT_PRESET})")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    p.add_argument("--skip-validation-check", action="store_true", help="train on a store that has not passed validation")
    # Unset options leave the preset's value, or the config's default where the preset has none.
    p.add_argument("--encoder", default=None, help="model.encoder")
    p.add_argument("--input-size", type=int, default=None, help="model.input_size, a multiple of 32")
    p.add_argument("--batch-size", type=int, default=None, help="optimiser.batch_size: effective batch per step")
    p.add_argument("--max-steps", type=int, default=None, help="optimiser.max_steps")
    p.add_argument("--epochs", type=float, default=None, help="optimiser.epochs")
    p.add_argument("--loader-workers", type=int, default=None, help="data.loader_workers: DataLoader workers per process")
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"], help="run.device")
    p.add_argument("--pretrain-seed", type=int, default=None, help="run.seed")
    p.add_argument("--set", action="append", default=[], metavar="[SECTION.]FIELD=VALUE",
                   help="override any PretrainConfig field (sections model, data, optimiser, run; a bare FIELD when "
                        "one section has it), e.g. --set optimiser.base_lr=5e-4 --set clip_grad=3")
    p.set_defaults(func=cmd_pretrain)


def add_evaluate_parser(sub) -> None:
    prop = PropagationParams()
    p = sub.add_parser(
        "evaluate", help="label propagation (DAVIS J&F, VIP mIoU, JHMDB PCK) with a random-init floor",
        description="Evaluate encoders by CRW label propagation; every architecture is also run with "
                    "random weights as the floor.",
    )
    p.add_argument("--checkpoint", action="append", default=[], metavar="CKPT",
                   help="RUN/encoder.pt or RUN/checkpoints/ckpt-*.pt (repeatable; several per flag allowed)", nargs="+")
    p.add_argument("--random-init", action="store_true",
                   help="evaluate a random-init --encoder even without checkpoints")
    p.add_argument("--encoder", default=None, help="architecture of the random-init floor (default convnextv2_atto)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random-init weights (default 0)")
    p.add_argument("--data", required=True, help="a vmac store, or a folder of DAVIS/VIP/JHMDB layouts to ingest")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default=None, help="only videos of this split (e.g. val)")
    p.add_argument("--save-masks", action="store_true", help="write predicted masks in the DAVIS results layout")
    p.add_argument("--context", type=int, default=None, help=f"previous frames in the context (default {prop.context})")
    p.add_argument("--radius", type=float, default=None, help=f"spatial radius in feature cells (default {prop.radius:g})")
    p.add_argument("--topk", type=int, default=None, help=f"affinities kept per site (default {prop.topk})")
    p.add_argument("--temperature", type=float, default=None, help=f"softmax temperature (default {prop.temperature:g})")
    p.add_argument("--stage-stride", type=int, default=None, choices=[8, 16, 32],
                   help="read this encoder stage and upsample it to stride 8 (default: the stride-8 stage)")
    p.add_argument("--short-side", type=int, default=None, help="resize frames (default: stored resolution)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"frames per encoder forward (default {default_of(FeatureParams, 'batch_size')})")
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"], help="default auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.set_defaults(func=cmd_evaluate)


def add_lineage_parser(sub) -> None:
    p = sub.add_parser(
        "lineage",
        help="the chain from an artifact (store, video, run, checkpoint, encoder, benchmark) back to its source hashes",
    )
    p.add_argument("path", metavar="PATH", help="a store, <store>/videos/<id>, run directory, .pt file, "
                                                "evaluation folder or benchmark JSON")
    p.add_argument("--json", action="store_true", help="print the tree as JSON")
    p.set_defaults(func=cmd_lineage)


def add_audit_parser(sub) -> None:
    p = sub.add_parser(
        "audit", help="re-hash a store's sources and frames, or a run's checkpoints and input frames; report drift",
    )
    p.add_argument("path", metavar="STORE_OR_RUN", help="a store or a pre-training run directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_audit)


def add_bench_parser(sub) -> None:
    names = ", ".join(sorted(p.stem for p in BENCHMARKS.glob("*.py"))) or "none found"
    p = sub.add_parser("bench", help=f"run a benchmark script from benchmarks/ ({names})")
    p.add_argument("name", help=names)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmac", description="VideoMAC pipeline: ingest, validate, pretrain, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_sample_parser, add_ingest_parser, add_run_parser, add_validate_parser, add_evaluate_parser,
                add_lineage_parser, add_audit_parser, add_pretrain_parser, add_bench_parser):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        for line in exc.lines:
            print(f"vmac {args.command}: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
