"""Flow configs from command-line arguments.

Each builder goes through the same pydantic validation as ``prefect.yaml`` parameters. Options
the user did not give are ``None`` on the namespace and are left out, so the models' own defaults
apply: a default lives in one place, its model, and ``--help`` reads it from there
(``default_of``).
"""

from __future__ import annotations

import argparse

import yaml
from pydantic import BaseModel

from storage_schemas.benchmark import EvaluateConfig
from storage_schemas.config import IngestConfig, PipelineConfig, build_pretrain_config
from storage_schemas.validation import ValidateConfig


def default_of(model: type[BaseModel], name: str):
    """The default of ``model``'s field ``name`` (for help texts)."""
    return model.model_fields[name].default


def given(**values) -> dict:
    """``values`` without those left at None (options the user did not give)."""
    return {key: value for key, value in values.items() if value is not None}


def parse_value(text: str):
    """A --set value: YAML scalars and lists (1e-3, true, [0.9, 0.95]); anything else stays a string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: list[str]) -> dict:
    """``FIELD=VALUE`` strings (``--set``) as a dict; dashes in field names become underscores.

    Raises ``argparse.ArgumentTypeError`` for an item without ``=`` or with an empty field name.
    """
    overrides: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--set takes FIELD=VALUE, got {item!r}")
        overrides[key] = parse_value(value)
    return overrides


def decode_values(args: argparse.Namespace) -> dict:
    return given(short_side=args.short_side, fps=args.fps, shard_frames=args.shard_frames)


def ingest_config_from_args(args: argparse.Namespace) -> IngestConfig:
    return IngestConfig.model_validate(given(
        sources=args.sources, store=args.store, decode=decode_values(args), dask_address=args.dask_address,
        workers=args.workers, progress=not args.no_progress,
    ))


def pretrain_config_from_args(args: argparse.Namespace):
    """The PretrainConfig: preset, then named flags, then --set FIELD=VALUE."""
    overrides = given(
        stores=args.store, out=args.out, resume=args.resume or None,
        skip_validation_check=args.skip_validation_check or None,
        encoder=args.encoder, input_size=args.input_size, batch_size=args.batch_size,
        max_steps=args.max_steps, epochs=args.epochs, workers=args.loader_workers,
        device=args.device, seed=args.pretrain_seed,
    )
    return build_pretrain_config(args.preset, {**overrides, **parse_overrides(args.set)})


def pipeline_config_from_args(args: argparse.Namespace) -> PipelineConfig:
    return PipelineConfig.model_validate(given(
        sources=args.source, eval_sources=args.eval_source, out=args.out, store=args.store,
        eval_store=args.eval_store, seed=args.seed, sample_small=args.small_sample or None,
        preset=args.preset, pretrain=parse_overrides(args.set), decode=decode_values(args),
        dask_address=args.dask_address, workers=args.workers, progress=not args.no_progress,
        on_new_data=args.on_new_data, pretrain_on=args.pretrain_on, reevaluate=args.reevaluate or None,
    ))


def validate_config_from_args(args: argparse.Namespace) -> ValidateConfig:
    thresholds = given(max_frozen_run=args.max_frozen_run, frame_count_tolerance=args.frame_count_tolerance)
    if args.fps_range is not None:
        thresholds["fps_min"], thresholds["fps_max"] = args.fps_range
    return ValidateConfig.model_validate(given(
        store=args.store, thresholds=thresholds, sample_frames_per_video=args.sample_frames,
        sample_windows=args.sample_windows,
    ))


def evaluate_config_from_args(args: argparse.Namespace) -> EvaluateConfig:
    checkpoints = [path for group in args.checkpoint for path in (group if isinstance(group, list) else [group])]
    return EvaluateConfig.model_validate(given(
        checkpoints=checkpoints, random_init=args.random_init or None, encoder=args.encoder,
        random_init_seed=args.seed, data=args.data, out=args.out, split=args.split,
        save_masks=args.save_masks or None, device=args.device, threads=args.threads,
        propagation=given(context=args.context, radius=args.radius, topk=args.topk, temperature=args.temperature),
        features=given(stage_stride=args.stage_stride, short_side=args.short_side, batch_size=args.batch_size),
    ))
