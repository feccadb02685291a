"""Flow configs from command-line arguments.

Each builder goes through the same pydantic validation as ``prefect.yaml`` parameters. Options
the user did not give are ``None`` on the namespace and are left out, so the models' own defaults
apply: a default lives in one place, its model, and ``--help`` reads it from there
(``default_of``). A config that does not validate raises ``ConfigError``, one line per problem;
``cli.main`` prints them and exits 2 before any work starts.
"""

from __future__ import annotations

import argparse
import difflib
import re
import typing
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from storage_schemas.benchmark import EvaluateConfig
from storage_schemas.config import (
    IngestConfig,
    PipelineConfig,
    PretrainConfig,
    UnknownFieldError,
    field_types,
    merge,
    nest_overrides,
)
from storage_schemas.validation import ValidateConfig
from tasks.io.secrets import keep_out, redact_text


class ConfigError(ValueError):
    """Options that make no valid config: ``lines`` name each field, its value and what is allowed."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def default_of(model: type[BaseModel], name: str):
    """The default of ``model``'s field ``name`` (for help texts)."""
    return model.model_fields[name].get_default(call_default_factory=True)


def choices_of(model: type[BaseModel], name: str) -> list:
    """The values a ``Literal`` field of ``model`` allows (an optional Literal's too), for ``choices=``:
    the parser offers what the config accepts, never a list kept by hand beside it."""
    annotation = model.model_fields[name].annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is not typing.Literal:
        args = [value for arg in args if typing.get_origin(arg) is typing.Literal for value in typing.get_args(arg)]
    if not args:
        raise TypeError(f"{model.__name__}.{name} is not a Literal field")
    return list(args)


def given(**values) -> dict:
    """``values`` without those left at None (options the user did not give)."""
    return {key: value for key, value in values.items() if value is not None}


# YAML 1.1 reads an exponent without a dot (5e-4) as a string.
_EXPONENT_FLOAT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")


def parse_value(text: str):
    """A --set value: YAML scalars and lists (5e-4, true, null, [0.9, 0.95]); anything else stays a string."""
    if _EXPONENT_FLOAT.fullmatch(text.strip()):
        return float(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(items: list[str], model: type[BaseModel] = PretrainConfig) -> dict:
    """``--set`` items as ``model``'s nested dict: ``SECTION.FIELD=VALUE``, or ``FIELD=VALUE`` for
    a top-level field or one that exactly one section has. Dashes in names become underscores.

    Raises ConfigError for an item without ``=`` and for a name ``model`` does not have (with
    the closest names).
    """
    flat: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError([f"--set {item}: expected [SECTION.]FIELD=VALUE"])
        flat[key] = parse_value(value)
    try:
        return nest_overrides(flat, model)
    except UnknownFieldError as exc:
        raise ConfigError([f"--set: {exc}"]) from None


def validated(model: type[BaseModel], values: Mapping[str, Any]):
    """``model.model_validate(values)``; a ValidationError becomes a ConfigError.

    Every string of ``values`` (every location option of every command, ``--set`` values
    included) first passes ``keep_out``: a URL's credentials stay in this process's memory and
    never reach the config, so neither Prefect's flow parameters nor anything written from the
    config. An ``out`` that is a URL is refused: outputs go to a local folder the user names."""
    try:
        config = model.model_validate(kept_out_all(values))
    except ValidationError as exc:
        raise ConfigError(error_lines(exc, model)) from None
    out = getattr(config, "out", None)
    if isinstance(out, str) and re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", out) and not out.startswith("file://"):
        raise ConfigError([f"out: vmac writes its outputs to a local folder you name, not to a URL (got {out!r})"])
    return config


def kept_out_all(value: Any) -> Any:
    """``value`` (a config's values: dicts, lists, strings...) with ``keep_out`` applied to every string."""
    if isinstance(value, str):
        return keep_out(value)
    if isinstance(value, Mapping):
        return {key: kept_out_all(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [kept_out_all(item) for item in value]
    return value


def error_lines(error: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per error: the field's dotted path, what is wrong or allowed, and the value given.

    An unknown field also lists the fields allowed where it was given, closest first.
    """
    lines = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or model.__name__
        value = item["input"]
        if item["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            lines.append(f"{where}: unknown field (got {value!r}){_allowed(model, item['loc'])}")
            continue
        message = item["msg"].removeprefix("Value error, ")
        # A whole section (a dict) as the value says nothing the message does not.
        lines.append(f"{where}: {message}" + ("" if isinstance(value, Mapping) else f" (got {value!r})"))
    return [redact_text(line) for line in lines]  # a value given may be a URL with its credentials


def _allowed(model: type[BaseModel], loc: tuple) -> str:
    kind: Any = model
    for part in loc[:-1]:
        fields = field_types(kind)
        kind = fields.get(part) if fields else None
    fields = field_types(kind)
    if not fields:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(fields), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{hint} (allowed: {', '.join(fields)})"


def decode_values(args: argparse.Namespace) -> dict:
    return given(short_side=args.short_side, fps=args.fps, shard_frames=args.shard_frames,
                 on_decode_error=args.on_decode_error, motion=args.motion or None, frame_codec=args.frame_codec)


def kept_out(uris: list[str] | None) -> list[str] | None:
    """Locations as a config holds them: a URL's credentials taken out and kept in this process's
    memory (``tasks.io.secrets.keep_out``), so no flow parameter, record or log line carries them."""
    return None if uris is None else [keep_out(uri) for uri in uris]


def ingest_config_from_args(args: argparse.Namespace) -> IngestConfig:
    """The IngestConfig: named flags, then --set [SECTION.]FIELD=VALUE (e.g. decode.short_side)."""
    flags = given(
        sources=kept_out(args.sources), store=keep_out(args.store), decode=decode_values(args),
        dask_address=args.dask_address, dask_workers=args.dask_workers, progress=not args.no_progress,
        rehash=args.rehash or None, retry_failed=args.retry_failed or None,
    )
    return validated(IngestConfig, merge(flags, parse_overrides(args.set, IngestConfig)))


def pretrain_config_from_args(args: argparse.Namespace) -> PretrainConfig:
    """The PretrainConfig: preset, then named flags, then --set [SECTION.]FIELD=VALUE."""
    flags = nest_overrides(given(
        stores=args.store, out=args.out, resume=args.resume or None,
        skip_validation_check=args.skip_validation_check or None,
        encoder=args.encoder, input_size=args.input_size, batch_size=args.batch_size,
        max_steps=args.max_steps, epochs=args.epochs, loader_workers=args.loader_workers,
        device=args.device, seed=args.pretrain_seed,
    ))
    given_by_set = parse_overrides(args.set)
    flagged = [name for name in ("preset", "stores", "out") if name in given_by_set]
    if flagged:
        raise ConfigError([f"--set {name}: give it as --{'store' if name == 'stores' else name}" for name in flagged])
    return validated(PretrainConfig, {"preset": args.preset, **merge(flags, given_by_set)})


def pipeline_config_from_args(args: argparse.Namespace) -> PipelineConfig:
    return validated(PipelineConfig, given(
        sources=kept_out(args.source), eval_sources=kept_out(args.eval_source), out=args.out,
        store=args.store and keep_out(args.store), eval_store=args.eval_store and keep_out(args.eval_store),
        sample_seed=args.sample_seed, sample_small=args.small_sample or None,
        preset=args.preset, **pipeline_overrides(args.set), decode=decode_values(args),
        dask_address=args.dask_address, dask_workers=args.dask_workers, progress=not args.no_progress,
        on_new_data=args.on_new_data, pretrain_on=args.pretrain_on, reevaluate=args.reevaluate or None,
    ))


def pipeline_overrides(items: list[str]) -> dict:
    """``vmac run``'s --set items: ``evaluate.``-prefixed ones as EvaluateConfig overrides (the
    pipeline's ``evaluate`` section), the others as PretrainConfig overrides (``pretrain``)."""
    evaluation = [item.removeprefix("evaluate.") for item in items if item.startswith("evaluate.")]
    training = [item for item in items if not item.startswith("evaluate.")]
    try:
        pretrain = parse_overrides(training)
    except ConfigError as exc:  # the field may be an evaluation one, which run spells evaluate.FIELD
        hint = "; an evaluation field is --set evaluate.FIELD=VALUE"
        raise ConfigError([f"{line}{hint}" if "unknown field" in line and "did you mean" not in line else line
                           for line in exc.lines]) from None
    return given(pretrain=pretrain or None, evaluate=parse_overrides(evaluation, EvaluateConfig) or None)


def validate_config_from_args(args: argparse.Namespace) -> ValidateConfig:
    """The ValidateConfig: defaults, then named flags, then --set [SECTION.]FIELD=VALUE."""
    thresholds = given(max_frozen_run=args.max_frozen_run, frame_count_tolerance=args.frame_count_tolerance)
    if args.fps_range is not None:
        thresholds["fps_min"], thresholds["fps_max"] = args.fps_range
    flags = given(store=args.store, thresholds=thresholds, sample_frames_per_video=args.sample_frames,
                  sample_windows=args.sample_windows, full=args.full, dask_address=args.dask_address,
                  dask_workers=args.dask_workers)
    return validated(ValidateConfig, merge(flags, parse_overrides(args.set, ValidateConfig)))


def evaluate_config_from_args(args: argparse.Namespace) -> EvaluateConfig:
    checkpoints = [path for group in args.checkpoint for path in (group if isinstance(group, list) else [group])]
    if "pixels" in args.baseline and args.no_pixel_floor:
        raise ConfigError(["--baseline pixels asks for the raw-pixel floor and --no-pixel-floor leaves it out; "
                           "give one of them"])
    flags = given(
        checkpoints=checkpoints, random_init="random-init" in args.baseline or None,
        pixels="pixels" in args.baseline or None, pixel_floor=False if args.no_pixel_floor else None,
        encoder=args.encoder,
        random_init_seed=args.random_init_seed, data=keep_out(args.data), out=args.out, split=args.split,
        save_masks=args.save_masks or None, device=args.device, threads=args.threads, dask_workers=args.dask_workers,
        floor_cache=args.floor_cache, reuse_floors=False if args.rescore_floors else None,
        propagation=given(context=args.context, radius=args.radius, topk=args.topk, temperature=args.temperature),
        features=given(stage_stride=args.stage_stride, short_side=args.short_side, batch_size=args.batch_size),
    )
    return validated(EvaluateConfig, merge(flags, parse_overrides(args.set, EvaluateConfig)))
