"""The ``vmac`` command line: one subparser per subcommand, defaults read from the config models
(``cli.args.default_of``) so that none is repeated here, and each command's README examples
below its options (``cli.examples``).
"""

from __future__ import annotations

import argparse

from cli.args import choices_of, default_of
from cli.commands import (
    cmd_audit,
    cmd_bench,
    cmd_evaluate,
    cmd_gc,
    cmd_history,
    cmd_import_weights,
    cmd_ingest,
    cmd_lineage,
    cmd_migrate,
    cmd_pretrain,
    cmd_run,
    cmd_sample,
    cmd_server,
    cmd_validate,
)
from cli.examples import BENCHMARKS, bench_description, epilog
from storage_schemas.benchmark import FLOOR_ENCODER, EvaluateConfig, FeatureParams
from storage_schemas.codecs import DEFAULT_FRAME_CODEC, FRAME_CODECS
from storage_schemas.config import DEFAULT_PRESET, PRETRAIN_PRESETS, PipelineConfig, RunParams
from storage_schemas.records import DecodeParams
from storage_schemas.validation import ValidateConfig, ValidationThresholds
from tasks.io.lineage import code_version, git_sha
from vmac_core.architectures import ENCODER_NAMES
from vmac_core.propagation_config import PropagationConfig

# --- parsers -------------------------------------------------------------------------------------


def add_decode_options(p: argparse.ArgumentParser) -> None:
    """Decoding and Dask options shared by ``ingest`` and ``run``."""
    p.add_argument("--short-side", type=int, default=None,
                   help=f"resize the short side (0 keeps native; default {default_of(DecodeParams, 'short_side')})")
    p.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: native)")
    p.add_argument("--shard-frames", type=int, default=None,
                   help=f"frames per shard along time (default {default_of(DecodeParams, 'shard_frames')})")
    p.add_argument("--on-decode-error", default=None, choices=choices_of(DecodeParams, "on_decode_error"),
                   help="a video whose decode logged errors (ffmpeg conceals them) fails, or is kept with the error "
                        f"count in its record (default {default_of(DecodeParams, 'on_decode_error')})")
    p.add_argument("--motion", action="store_true",
                   help="keep a motion map beside the frames (codec motion vectors, else frame differences): "
                        "what pre-training's mask_strategy=motion masks by")
    p.add_argument("--frame-codec", default=None, choices=list(FRAME_CODECS),
                   help=f"how a new store keeps its frames (default {DEFAULT_FRAME_CODEC}); an existing store keeps "
                        "its own and refuses another; jpeg-* and jpegxl-* are lossy and recorded as such")
    p.add_argument("--dask-address", default=None, help="attach to a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--dask-workers", "--workers", dest="dask_workers", type=int, default=None,
                   help="LocalCluster workers (default: one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="write the embedded synthetic sample dataset")
    p.add_argument("dir")
    p.add_argument("--seed", type=int, default=0, help="seed of the embedded sample: the same seed, the same bytes "
                   "(default %(default)s)")
    p.add_argument("--small", action="store_true", help="a smaller, faster variant (for tests)")
    p.set_defaults(func=cmd_sample)


def add_ingest_parser(sub) -> None:
    p = sub.add_parser("ingest", help="decode videos and frame folders into a Zarr store (Dask-parallel, incremental)")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="files, folders, globs or fsspec URLs")
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    p.add_argument("--dry-run", action="store_true",
                   help="print what would be decoded, what is up to date and what would be retried; write nothing")
    p.add_argument("--rehash", action="store_true",
                   help="read and hash every source, even those whose size, times and inode (an object's version) "
                        "are unchanged since the store recorded them")
    p.add_argument("--retry-failed", action="store_true",
                   help="decode again the videos that failed on their input, though their bytes are unchanged")
    add_decode_options(p)
    p.add_argument("--set", action="append", default=[], metavar="[SECTION.]FIELD=VALUE",
                   help="override any IngestConfig field (section decode; a bare FIELD when one section has it), "
                        "e.g. --set shard_frames=32")
    p.set_defaults(func=cmd_ingest)


def add_run_parser(sub) -> None:
    out = default_of(PipelineConfig, "out")
    p = sub.add_parser("run", help="the whole pipeline: ingest, validate, pretrain, evaluate (default: the embedded sample)")
    p.add_argument("--source", action="append", default=None, help="train on this instead of the sample (repeatable)")
    p.add_argument("--eval-source", action="append", default=None, help="a labelled DAVIS/VIP/JHMDB folder (repeatable)")
    p.add_argument("--store", default=None, help=f"training store (default {out}/train.zarr)")
    p.add_argument("--eval-store", default=None, help=f"evaluation store (default {out}/eval.zarr)")
    p.add_argument("--out", default=None, help=f"output folder (default {out})")
    p.add_argument("--seed", "--sample-seed", dest="sample_seed", type=int, default=None,
                   help=f"seed of the embedded sample (default {default_of(PipelineConfig, 'sample_seed')})")
    p.add_argument("--small-sample", action="store_true", help="the small embedded sample (a quick smoke run)")
    p.add_argument("--preset", default=None, choices=list(PRETRAIN_PRESETS),
                   help=f"pre-training preset (default {default_of(PipelineConfig, 'preset')})")
    p.add_argument("--set", action="append", default=[], metavar="[SECTION.]FIELD=VALUE",
                   help="override a pre-training field (--set optimiser.base_lr=5e-4) or, under evaluate., an "
                        "evaluation field (--set evaluate.propagation.topk=5)")
    p.add_argument("--on-new-data", default=None, choices=choices_of(PipelineConfig, "on_new_data"),
                   help="after new data: warm-start a new run from the last checkpoint (continue) or start from "
                        f"scratch (default {default_of(PipelineConfig, 'on_new_data')})")
    p.add_argument("--pretrain-on", default=None, choices=choices_of(PipelineConfig, "pretrain_on"),
                   help="train here, or hand over to the pretrain_flow deployment (gpu work pool) "
                        f"(default {default_of(PipelineConfig, 'pretrain_on')})")
    p.add_argument("--reevaluate", action="store_true", help="evaluate again even if this encoder was evaluated")
    add_decode_options(p)
    p.set_defaults(func=cmd_run)


def add_validate_parser(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="run the expectation suites on a store; stamp the result into it (pretraining checks the stamp)",
    )
    p.add_argument("--store", required=True, help="store path or fsspec URL")
    limits = ValidationThresholds()
    p.add_argument("--sample-frames", type=int, default=None, help="frames sampled per video "
                   f"(default {default_of(ValidateConfig, 'sample_frames_per_video')})")
    p.add_argument("--sample-windows", type=int, default=None, help="contiguous windows the sample is split into "
                   f"(default {default_of(ValidateConfig, 'sample_windows')})")
    p.add_argument("--max-frozen-run", type=int, default=None, metavar="K",
                   help=f"longest frozen run allowed (default {limits.max_frozen_run})")
    p.add_argument("--fps-range", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help=f"accepted stored fps (default {limits.fps_min:g} {limits.fps_max:g})")
    p.add_argument("--frame-count-tolerance", type=float, default=None,
                   help=f"relative frame-count slack vs the probe (default {limits.frame_count_tolerance:g})")
    p.add_argument("--dask-address", default=None,
                   help="read the videos on a running Dask scheduler's workers, e.g. tcp://host:8786")
    p.add_argument("--dask-workers", "--workers", dest="dask_workers", type=int, default=None,
                   help="read the videos on a LocalCluster of this many workers (default: in this process)")
    p.add_argument("--full", action="store_true", default=None,
                   help="re-read and re-hash every complete video, even those the last validation read unchanged "
                        "(default: only new or re-decoded videos, or all when the sampling changed)")
    p.add_argument("--set", action="append", default=[], metavar="[SECTION.]FIELD=VALUE",
                   help="override any ValidateConfig field (a bare FIELD for a threshold), e.g. "
                        "--set max_black_frame_fraction=0.8")
    p.set_defaults(func=cmd_validate)


def add_pretrain_parser(sub) -> None:
    p = sub.add_parser("pretrain", help="VideoMAC pre-training on validated stores (resumable; DDP under torchrun)")
    p.add_argument("--store", action="append", required=True,
                   help="a validated store (repeatable): STORE reads its latest snapshot, STORE@SNAPSHOT or STORE@TAG "
                        "an earlier one (vmac history)")
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
    p.add_argument("--device", default=None, choices=choices_of(RunParams, "device"), help="run.device")
    p.add_argument("--pretrain-seed", type=int, default=None, help="run.seed")
    p.add_argument("--set", action="append", default=[], metavar="[SECTION.]FIELD=VALUE",
                   help="override any PretrainConfig field (sections model, data, optimiser, run; a bare FIELD when "
                        "one section has it), e.g. --set optimiser.base_lr=5e-4 --set clip_grad=3")
    p.set_defaults(func=cmd_pretrain)


def add_evaluate_parser(sub) -> None:
    prop = PropagationConfig()
    p = sub.add_parser(
        "evaluate", help="label propagation (DAVIS J&F, VIP mIoU, JHMDB PCK) with random-init and raw-pixel floors",
        description="Evaluate encoders by CRW label propagation; every architecture is also run with "
                    "random weights as the floor.",
    )
    p.add_argument("--checkpoint", action="append", default=[], metavar="CKPT",
                   help="RUN/encoder.pt or RUN/checkpoints/ckpt-*.pt (repeatable; several per flag allowed)", nargs="+")
    p.add_argument("--baseline", action="append", default=[], choices=["random-init", "pixels"],
                   help="evaluate this floor even without checkpoints (repeatable): random-init (--encoder with "
                        "random weights) or pixels (Lab colour averaged over each stride cell)")
    p.add_argument("--no-pixel-floor", action="store_true",
                   help="leave the raw-pixel floor out (it is evaluated beside every random-init floor)")
    p.add_argument("--encoder", default=None, choices=ENCODER_NAMES, metavar="NAME",
                   help="architecture of the random-init floor: with --checkpoint, the checkpoints' own (it must "
                        f"match them); without, default {FLOOR_ENCODER}. One of: {', '.join(ENCODER_NAMES)}")
    p.add_argument("--random-init-seed", type=int, default=None,
                   help=f"seed of the random-init weights (default {default_of(EvaluateConfig, 'random_init_seed')})")
    p.add_argument("--data", required=True, help="a vmac store, or a folder of DAVIS/VIP/JHMDB layouts to ingest")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default=None, help="only videos of this split (e.g. val, train), or 'all'; default: "
                   "each benchmark's own (DAVIS: val, as davis2017-evaluation; the others: every split)")
    p.add_argument("--save-masks", action="store_true", help="write predicted masks in the DAVIS results layout")
    p.add_argument("--context", type=int, default=None, help=f"previous frames in the context (default {prop.context})")
    p.add_argument("--radius", type=float, default=None, help=f"spatial radius in feature cells (default {prop.radius:g})")
    p.add_argument("--topk", type=int, default=None, help=f"affinities kept per site (default {prop.topk})")
    p.add_argument("--temperature", type=float, default=None, help=f"softmax temperature (default {prop.temperature:g})")
    stride = default_of(FeatureParams, "stride")
    p.add_argument("--stage-stride", type=int, default=None,
                   choices=[s for s in choices_of(FeatureParams, "stage_stride") if s >= stride],
                   help=f"read this encoder stage and upsample it to stride {stride} (default: the stride-{stride} stage)")
    p.add_argument("--short-side", type=int, default=None, help="resize frames (default: stored resolution)")
    p.add_argument("--feature-batch", dest="batch_size", type=int, default=None,
                   help=f"frames per encoder forward (default {default_of(FeatureParams, 'batch_size')})")
    p.add_argument("--device", default=None, choices=choices_of(EvaluateConfig, "device"),
                   help=f"default {default_of(EvaluateConfig, 'device')}")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--workers", "--dask-workers", dest="dask_workers", type=int, default=None,
                   help="Dask workers that ingest a folder given as --data (default: one per core)")
    p.add_argument("--floor-cache", default=None, metavar="DIR",
                   help="keep scored floors in DIR/floor-cache and reuse them on the same data and protocol "
                        "(default: --out)")
    p.add_argument("--rescore-floors", action="store_true", help="score the floors again instead of reusing them")
    p.add_argument("--set", action="append", default=[], metavar="[SECTION.]FIELD=VALUE",
                   help="override any EvaluateConfig field (sections propagation, features; a bare FIELD when one "
                        "section has it), e.g. --set propagation.pad_context=false --set vip_classes=20")
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
    p.add_argument("path", metavar="STORE_OR_RUN", help="a store (STORE@SNAPSHOT: one of its snapshots) or a "
                                                        "pre-training run directory")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--dask-address", default=None,
                   help="re-hash the videos on a running Dask scheduler's workers, e.g. tcp://host:8786")
    p.add_argument("--dask-workers", "--workers", dest="dask_workers", type=int, default=None,
                   help="re-hash the videos on a LocalCluster of this many workers (default: in this process)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_audit)


def add_history_parser(sub) -> None:
    p = sub.add_parser("history", help="a store's snapshots: when, which command, videos added/changed/removed, tags")
    p.add_argument("store", metavar="STORE", help="a vmac store (a path or fsspec URL)")
    p.add_argument("--json", action="store_true", help="print the commits as JSON")
    p.set_defaults(func=cmd_history)


def add_gc_parser(sub) -> None:
    p = sub.add_parser("gc", help="expire a store's untagged snapshots older than N days and free their frames",
                       description="Expire snapshots older than --older-than days that are neither the latest nor "
                                   "tagged (pre-training tags the snapshot it trains on), and delete the version "
                                   "folders only they name. Never done by any other command.")
    p.add_argument("store", metavar="STORE", help="a vmac store (a path or fsspec URL) you can write")
    p.add_argument("--older-than", type=float, required=True, metavar="DAYS", help="keep snapshots younger than this")
    p.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    p.set_defaults(func=cmd_gc)


def add_migrate_parser(sub) -> None:
    p = sub.add_parser("migrate", help="convert a store written before snapshots (in place, frames unchanged)")
    p.add_argument("store", metavar="STORE", help="a store written by a vmac before snapshots (store format 1)")
    p.add_argument("--verbose", action="store_true", help="a line per video converted")
    p.set_defaults(func=cmd_migrate)


def add_import_weights_parser(sub) -> None:
    p = sub.add_parser(
        "import-weights", help="an official VideoMAC weights file (.pth) as a vmac encoder.pt, with a lineage record",
        description="Map the official VideoMAC release's parameter names (MinkowskiEngine or dense layout, with or "
                    "without DDP's module. prefix) onto a vmac encoder; the decoder is left out. Nothing is "
                    "downloaded: bring the file.",
    )
    p.add_argument("source", metavar="OFFICIAL.pth", help="a training checkpoint or a converted encoder file")
    p.add_argument("--encoder", required=True, choices=ENCODER_NAMES, metavar="NAME",
                   help=f"the architecture the file holds: {', '.join(ENCODER_NAMES)}")
    p.add_argument("--out", required=True, help="the encoder.pt to write (its folder gets lineage/)")
    p.set_defaults(func=cmd_import_weights)


def add_bench_parser(sub) -> None:
    names = ", ".join(sorted(p.stem for p in BENCHMARKS.glob("*.py"))) or "none found"
    p = sub.add_parser("bench", help=f"run a benchmark script from benchmarks/ ({names})",
                       description=bench_description())
    p.add_argument("name", help=names)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)


def add_server_parser(sub) -> None:
    p = sub.add_parser("server", help="vmac's local Prefect server: where commands record their runs (status, stop)",
                       description="Without PREFECT_API_URL, the first vmac command starts a local Prefect server "
                                   "over PREFECT_HOME's database and later commands reuse it; it stops after "
                                   "VMAC_PREFECT_IDLE_SECONDS (default 900) without a command.")
    p.add_argument("action", choices=["status", "stop"])
    p.add_argument("--force", action="store_true", help="stop it even while a vmac command is using it")
    p.set_defaults(func=cmd_server)


class VersionAction(argparse.Action):
    """``--version``: the installed version and, from a git checkout, the commit (asked only when given)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        sha = git_sha()
        print(f"vmac {code_version()}" + (f" (git {sha[:12]})" if sha else ""))
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmac", description="VideoMAC pipeline: ingest, validate, pretrain, evaluate.")
    parser.add_argument("--version", action=VersionAction, help="print the version (and git commit) and exit")
    parser.add_argument("--debug", action="store_true",
                        help="on failure, print the traceback (vmac's and Prefect's) besides the one-line reason")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (add_sample_parser, add_ingest_parser, add_run_parser, add_validate_parser, add_evaluate_parser,
                add_import_weights_parser, add_lineage_parser, add_audit_parser, add_pretrain_parser, add_bench_parser,
                add_server_parser, add_history_parser, add_gc_parser, add_migrate_parser):
        add(sub)
    for name, subparser in sub.choices.items():
        # Below the options, the README's examples of the command (cli.examples), shown as written.
        subparser.epilog = epilog(name)
        subparser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


