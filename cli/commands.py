"""The ``vmac`` subcommands: each builds its config (``cli.args``), checks the paths it names
(``cli.checks``), runs its flow and renders the result (``cli.render``).

The flows are imported inside each ``cmd_*``: they load Prefect, torch and Zarr (several
seconds), which ``vmac --help``, a usage error or ``vmac lineage`` should not wait for. ``lineage``
and the store's maintenance commands (``history``, ``gc``, ``migrate``) run their functions
directly, without a flow: they only read, or only rearrange the store, and answer at once.
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
    evaluate_config_from_args,
    ingest_config_from_args,
    pipeline_config_from_args,
    pretrain_config_from_args,
    validate_config_from_args,
)
from cli.checks import (
    existing_path,
    existing_store,
    local_output,
    same_frame_codec,
    tip_only,
    torch_file,
    writable_folder,
)
from cli.examples import BENCHMARKS
from tasks.io.names import is_clean_name
from tasks.io.snapshots import split_ref
from tasks.io.uris import local_path
from vmac_server.supervisor import in_use, prefect_home, read_state, record_in_prefect, status_line, stop_server

# --- commands ------------------------------------------------------------------------------------


def is_store_ref(uri: str) -> bool:
    """True for ``STORE@REF`` naming a snapshot or tag of a store."""
    return split_ref(uri)[1] is not None


def cmd_sample(args: argparse.Namespace) -> int:
    local_output("DIR", args.dir)
    writable_folder("DIR", args.dir)
    record_in_prefect()
    from flows.sample import sample_flow

    manifest = sample_flow(args.dir, seed=args.seed, small=args.small)
    print(f"wrote the sample ({len(manifest['clips'])} clips, seed {args.seed}) to {args.dir}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    config = ingest_config_from_args(args)
    tip_only("--store", config.store)
    same_frame_codec("--store", config.store, config.decode.frame_codec)
    if args.dry_run:
        # The planning step alone, without Prefect or Dask: it hashes and probes, and writes nothing.
        from tasks.ingest.plan import plan_sources

        render.print_ingest_plan(config.store, plan_sources(config))
        return 0
    writable_folder("--store", config.store)
    record_in_prefect()
    from flows.ingest import IngestIncompleteError, ingest_flow

    try:
        return render.print_ingest(ingest_flow(config))
    except IngestIncompleteError as exc:
        render.print_ingest(exc.result)
        raise


def cmd_run(args: argparse.Namespace) -> int:
    config = pipeline_config_from_args(args)  # before the slow import: a config error exits at once
    for option, path in (("--out", config.out), ("--store", args.store), ("--eval-store", args.eval_store)):
        if path:
            writable_folder(option, path)
    same_frame_codec("--store", config.train_store(), config.decode.frame_codec)
    record_in_prefect()
    from flows.pipeline import pipeline_flow

    result = pipeline_flow(config)
    print(f"pretraining: {result.pretrain_action} ({result.run_dir}); frames decoded: {result.frames_decoded}")
    print(f"report: {result.report}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Run validate_flow; print the summary; 1 when a critical rule failed, 2 without a store."""
    config = validate_config_from_args(args)
    existing_store("--store", config.store, snapshot=False)
    writable_folder("--store", config.store)  # the stamp and the report are written into it
    record_in_prefect()
    from flows.validate import ValidationFailedError, validate_flow

    try:
        summary = validate_flow(config)
    except ValidationFailedError as exc:
        summary = exc.summary
    render.print_validation_summary(summary)
    if not summary.passed:
        print(f"vmac validate: {config.store} failed {len(summary.critical_failures)} critical rule(s) "
              f"({', '.join(rule.rule for rule in summary.critical_failures)}); report {summary.stamp.report_path}",
              file=sys.stderr)
    return 0 if summary.passed else 1


def cmd_pretrain(args: argparse.Namespace) -> int:
    config = pretrain_config_from_args(args)
    for store in config.stores:
        existing_store("--store", store)
    writable_folder("--out", config.out)
    from tasks.pretrain.checkpoints import checkpoint_paths  # deferred: it loads torch

    if not config.run.resume and checkpoint_paths(Path(config.out)):
        raise ConfigError([f"--out {config.out} already holds checkpoints; pass --resume to continue that run "
                           "or choose a new --out"])
    if int(os.environ.get("RANK", "0")) != 0:
        # Under torchrun only rank 0 runs the Prefect flow; the other ranks train directly.
        from tasks.pretrain.train import train

        train(config, log=lambda message: None)
        return 0
    record_in_prefect()
    from flows.pretrain import pretrain_flow

    result = pretrain_flow(config)
    print(f"trained {result.steps} steps, final loss {result.final_loss:.4f}")
    print(f"run directory: {result.run_dir}\nencoder: {result.encoder}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    config = evaluate_config_from_args(args)
    for checkpoint in config.checkpoints:
        existing_path("--checkpoint", checkpoint)
        torch_file("--checkpoint", checkpoint)
    if is_store_ref(config.data):
        existing_store("--data", config.data)
    else:
        existing_path("--data", config.data)
    writable_folder("--out", config.out)
    record_in_prefect()
    from flows.evaluate import evaluate_flow

    result = evaluate_flow(config)
    print(result.comparison_markdown)
    print(f"report: {result.out}/comparison.md ({len(result.reports)} benchmark files, lineage {result.lineage})")
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    """Print the lineage tree (rich, or JSON with --json); 2 when nothing is at PATH.

    Runs the task function directly, not lineage_flow: it only reads, and an interactive query
    should not wait for a Prefect API to start.
    """
    from tasks.audit.tree import lineage_tree

    existing_path("PATH", args.path)
    tree = lineage_tree(args.path)
    if args.json:
        print(json.dumps(tree, indent=2))
    else:
        Console().print(render.render_tree(tree))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Run audit_flow; print the drift table (or JSON); 1 when anything drifted, 2 for a bad path."""
    existing_path("STORE_OR_RUN", args.path)
    if args.dask_workers is not None and args.dask_workers < 1:
        raise ConfigError([f"--workers must be at least 1 (got {args.dask_workers})"])
    from tasks.audit.records import read_lineage

    read_lineage(args.path)  # a damaged record fails the audit here (exit 1, naming it), before Prefect starts
    record_in_prefect()
    from flows.audit import audit_flow
    from tasks.audit.rehash import audit_kind

    try:
        audit_kind(args.path)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    report = audit_flow(args.path, progress=not args.no_progress, dask_address=args.dask_address,
                        dask_workers=args.dask_workers)
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        render.print_audit_report(report)
    return 1 if report.drifted else 0


def cmd_import_weights(args: argparse.Namespace) -> int:
    """Write the official weights file as a vmac encoder.pt; 2 when it cannot be read or does not fit."""
    from tasks.pretrain.imported import import_weights

    local_output("--out", args.out)
    try:
        result = import_weights(args.source, args.encoder, args.out)
    except (OSError, ValueError) as exc:
        print(f"vmac import-weights: {exc}", file=sys.stderr)
        return 2
    print(f"imported {result.tensors} tensors of {args.encoder} from {args.source} ({result.layout} layout"
          f"{', module. prefix' if result.ddp_prefix else ''}; {result.dropped} decoder tensors left out)")
    print(f"encoder: {result.out}\nsource sha256: {result.source_sha256}\nlineage: {result.lineage}")
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    """Show or stop vmac's local Prefect server (vmac_server.supervisor)."""
    home = prefect_home()
    if args.action == "stop":
        if in_use(home) and not args.force:
            print(f"vmac server: a vmac command is using the local Prefect server of {home}; stopping it now would cut "
                  "that command off from the API. Wait for the command to end, or pass --force", file=sys.stderr)
            return 1
        had_record = read_state(home) is not None
        if stop_server(home):
            print(f"stopped the local Prefect server of {home}")
        else:
            print(f"no local Prefect server was running for {home}" + (" (its stale record is removed)" if had_record else ""))
        return 0
    print(status_line(home))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Print the store's commits, newest first (a table, or JSON); 2 without a store."""
    existing_store("STORE", args.store, snapshot=False)
    from tasks.io.snapshots import history, list_tags, snapshot_exists

    commits = history(args.store)
    expired = {c.snapshot for c in commits if not snapshot_exists(args.store, c.snapshot)}
    if args.json:
        print(json.dumps([{**c.model_dump(mode="json"), "expired": c.snapshot in expired} for c in commits], indent=2))
    else:
        render.print_history(args.store, commits, list_tags(args.store), expired)
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    """Expire the store's untagged snapshots older than --older-than days and free their version
    folders (``tasks.io.gc``); 2 without a store."""
    existing_store("STORE", args.store, snapshot=False)
    if args.older_than < 0:
        raise ConfigError([f"--older-than {args.older_than:g}: a number of days, 0 or more"])
    from datetime import timedelta

    from tasks.io.gc import collect_garbage

    report = collect_garbage(args.store, timedelta(days=args.older_than), dry_run=args.dry_run)
    render.print_gc_report(report)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Convert a store written before snapshots (``tasks.io.migrate``); 2 without a store."""
    path = local_path(args.store)
    if path is not None and not os.path.isfile(os.path.join(path, "zarr.json")):
        raise ConfigError([f"STORE {args.store}: not a vmac store (no zarr.json)"])
    from tasks.io.migrate import migrate

    result = migrate(args.store, log=print if args.verbose else lambda line: None)
    if result.already:
        print(f"{result.store} already keeps its catalog in snapshots; nothing to do")
    else:
        print(f"converted {result.store}: {result.videos} videos, first snapshot {result.snapshot}; validate it again "
              f"before training: vmac validate --store {result.store}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Run ``benchmarks/NAME.py``: NAME is one of the scripts listed there, never a path."""
    names = {path.stem for path in BENCHMARKS.glob("*.py") if is_clean_name(path.stem)}
    if args.name not in names:
        known = ", ".join(sorted(names)) or "none found"
        print(f"no benchmark {args.name!r} (one of: {known}; benchmarks run from a source checkout)", file=sys.stderr)
        return 2
    script = BENCHMARKS / f"{args.name}.py"
    if not script.exists():
        print(f"no benchmark {args.name!r} (looked for {script}; benchmarks run from a source checkout)", file=sys.stderr)
        return 2
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


