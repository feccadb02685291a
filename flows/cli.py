"""The ``vmac`` command: every subcommand builds a flow config and runs the flow."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path

DEFAULT_OUT = "vmac-out"


def _ingest_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--short-side", type=int, default=256, help="resize the short side (0 keeps native; default 256)")
    parser.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: native)")
    parser.add_argument("--shard-frames", type=int, default=64, help="frames per shard along time (default 64)")
    parser.add_argument("--dask-address", default=None, help="attach to a running Dask scheduler, e.g. tcp://host:8786")
    parser.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: one per core)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def ingest_config_from_args(args: argparse.Namespace, sources: list[str], store: str):
    """The IngestConfig for CLI arguments, through the same validation prefect.yaml parameters get."""
    from storage_schemas.config import IngestConfig

    return IngestConfig.model_validate(
        {
            "sources": sources,
            "store": store,
            "decode": {"short_side": args.short_side, "fps": args.fps, "shard_frames": args.shard_frames},
            "dask_address": args.dask_address,
            "workers": args.workers,
            "progress": not args.no_progress,
        }
    )


def _print_ingest(result) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    counts = {a: sum(o.action == a for o in result.outcomes) for a in ("decoded", "skipped", "failed")}
    table = Table(title=f"ingest into {result.store}")
    for column in ("video_id", "outcome", "frames", "seconds", "reason"):
        table.add_column(column, overflow="fold")
    for o in sorted(result.outcomes, key=lambda o: (o.action != "failed", o.video_id)):
        style = "red" if o.action == "failed" else None
        table.add_row(o.video_id, o.action, str(o.frames), f"{o.seconds:.2f}", o.reason or "", style=style)
    console.print(table)
    console.print(
        f"{counts['decoded']} decoded ({result.frames_decoded} frames), {counts['skipped']} up to date, "
        f"{counts['failed']} failed"
    )
    return 1 if counts["failed"] else 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from flows.ingest import ingest_flow

    config = ingest_config_from_args(args, args.sources, args.store)
    return _print_ingest(ingest_flow(config))


def cmd_sample(args: argparse.Namespace) -> int:
    from flows.sample import sample_flow

    manifest = sample_flow(args.dir, seed=args.seed, small=args.small)
    print(f"wrote the sample ({len(manifest['clips'])} clips, seed {args.seed}) to {args.dir}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from flows.pipeline import pipeline_flow
    from storage_schemas.config import PipelineConfig

    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip().replace("-", "_")] = _parse_value(value)
    config = PipelineConfig.model_validate(
        {
            "sources": args.source, "eval_sources": args.eval_source, "out": args.out, "store": args.store,
            "eval_store": args.eval_store, "seed": args.seed, "sample_small": args.small_sample,
            "preset": args.preset, "pretrain": overrides,
            "decode": {"short_side": args.short_side, "fps": args.fps, "shard_frames": args.shard_frames},
            "dask_address": args.dask_address, "workers": args.workers, "progress": not args.no_progress,
            "on_new_data": args.on_new_data, "pretrain_on": args.pretrain_on, "reevaluate": args.reevaluate,
        }
    )
    result = pipeline_flow(config)
    print(f"pretraining: {result.pretrain_action} ({result.run_dir}); frames decoded: {result.frames_decoded}")
    print(f"report: {result.report}")
    return 0


def _parse_value(text: str):
    """A --set value: YAML scalars and lists (1e-3, true, [0.9, 0.95]); anything else stays a string."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def pretrain_config_from_args(args: argparse.Namespace, stores: list[str], out: str):
    """The PretrainConfig for CLI arguments: preset, then named flags, then --set FIELD=VALUE."""
    from storage_schemas.config import build_pretrain_config

    overrides = {
        "stores": stores, "out": out, "resume": args.resume or None,
        "skip_validation_check": args.skip_validation_check or None,
        "encoder": args.encoder, "input_size": args.input_size, "batch_size": args.batch_size,
        "max_steps": args.max_steps, "epochs": args.epochs, "workers": args.loader_workers,
        "device": args.device, "seed": args.pretrain_seed,
    }
    for item in args.set:
        if "=" not in item:
            raise SystemExit(f"--set takes FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip().replace("-", "_")] = _parse_value(value)
    return build_pretrain_config(args.preset, overrides)


def _pretrain_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="tiny-cpu", help="tiny-cpu, paper-r50 or paper-cnxv2-s (default tiny-cpu)")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    parser.add_argument("--skip-validation-check", action="store_true", help="train on a store that has not passed validation")
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="effective batch per optimiser step")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--loader-workers", type=int, default=None, help="DataLoader workers per process")
    parser.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"])
    parser.add_argument("--pretrain-seed", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override any PretrainConfig field, e.g. --set base_lr=5e-4 --set clip_grad=3")


def cmd_pretrain(args: argparse.Namespace) -> int:
    config = pretrain_config_from_args(args, args.store, args.out)
    if int(os.environ.get("RANK", "0")) != 0:
        # Under torchrun only rank 0 runs the Prefect flow; the other ranks train directly.
        from tasks.train import train

        train(config, log=lambda message: None)
        return 0
    from flows.pretrain import pretrain_flow

    result = pretrain_flow(config)
    print(f"trained {result.steps} steps, final loss {result.final_loss:.4f}")
    print(f"run directory: {result.run_dir}\nencoder: {result.encoder}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / f"{args.name}.py"
    if not script.exists():
        print(f"no benchmark {args.name!r} (looked for {script}; benchmarks run from a source checkout)", file=sys.stderr)
        return 2
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmac", description="VideoMAC pipeline: ingest, validate, pretrain, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample", help="write the embedded synthetic sample dataset")
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--small", action="store_true", help="a smaller, faster variant (for tests)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("ingest", help="decode videos and frame folders into a Zarr store (Dask-parallel, incremental)")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="files, folders, globs or fsspec URLs")
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    _ingest_args(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("run", help="the whole pipeline: ingest, validate, pretrain, evaluate (default: the embedded sample)")
    p.add_argument("--source", action="append", default=[], help="train on this instead of the sample (repeatable)")
    p.add_argument("--eval-source", action="append", default=[], help="a labelled DAVIS/VIP/JHMDB folder (repeatable)")
    p.add_argument("--store", default=None, help=f"training store (default {DEFAULT_OUT}/train.zarr)")
    p.add_argument("--eval-store", default=None, help=f"evaluation store (default {DEFAULT_OUT}/eval.zarr)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--seed", type=int, default=0, help="seed of the embedded sample")
    p.add_argument("--small-sample", action="store_true", help="the small embedded sample (a quick smoke run)")
    p.add_argument("--preset", default="tiny-cpu", help="pre-training preset (default tiny-cpu)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a pre-training field")
    p.add_argument("--on-new-data", default="continue", choices=["continue", "new-run"],
                   help="after new data: warm-start from the last checkpoint (default) or start a new run")
    p.add_argument("--pretrain-on", default="local", choices=["local", "deployment"],
                   help="train here, or hand over to the pretrain_flow deployment (gpu work pool)")
    p.add_argument("--reevaluate", action="store_true", help="evaluate again even if this encoder was evaluated")
    _ingest_args(p)
    p.set_defaults(func=cmd_run)

    from flows.audit import add_audit_parser, add_lineage_parser
    from flows.evaluate import add_evaluate_parser
    from flows.validate import add_validate_parser

    add_validate_parser(sub)
    add_evaluate_parser(sub)
    add_lineage_parser(sub)
    add_audit_parser(sub)

    p = sub.add_parser("pretrain", help="VideoMAC pre-training on validated stores (resumable; DDP under torchrun)")
    p.add_argument("--store", action="append", required=True, help="a validated store (repeatable)")
    p.add_argument("--out", required=True, help="run directory")
    _pretrain_args(p)
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("bench", help="run a benchmark script from benchmarks/ (prints one JSON object)")
    p.add_argument("name", help="ingest, model, loader or evaluate")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
