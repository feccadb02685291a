"""Flow configs: one frozen model per flow, built the same way from the CLI and from prefect.yaml.

Every model refuses unknown keys (``extra="forbid"``): a typo fails validation instead of
silently leaving a default in place. ``PretrainConfig`` is nested in sections (model, data,
optimiser, run); ``nest_overrides`` turns ``section.field`` or bare ``field`` keys into that
shape, the one path for ``--set`` and for tests.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from storage_schemas.benchmark import EvaluateConfig
from storage_schemas.records import DecodeParams
from vmac_core.model_config import ModelConfig


def _store_not_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("store must be a path or URL")
    return value


# A store path or fsspec URL (data/sample.zarr, memory://s.zarr, s3://bucket/s.zarr); never empty.
StoreURI = Annotated[str, AfterValidator(_store_not_empty)]


class IngestConfig(BaseModel):
    """Parameters of ``ingest_flow``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: list[str] = Field(min_length=1, description="files, folders, globs or fsspec URLs")
    store: StoreURI = Field(description="store path or fsspec URL, e.g. data/sample.zarr or memory://s.zarr")
    decode: DecodeParams = DecodeParams()
    dask_address: str | None = Field(None, description="attach to this scheduler instead of a LocalCluster")
    dask_workers: int | None = Field(None, ge=1, description="LocalCluster workers; default one per core")
    progress: bool = True
    rehash: bool = Field(False, description="read and hash every source, even those whose stat fingerprint is "
                         "unchanged since the store recorded it")
    retry_failed: bool = Field(False, description="decode again the videos that failed on their input, though their "
                               "bytes and decode parameters are unchanged")


# --- pre-training --------------------------------------------------------------------------------


class DataParams(BaseModel):
    """Which frame pairs the loader draws, how it crops them, and how many processes load them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gap: int = Field(1, ge=1, description="frame gap t -> t+gap")
    gap_max: int | None = Field(None, ge=1, description="sample the gap uniformly in [gap, gap_max]")
    crop_scale: tuple[float, float] = Field(
        (0.2, 1.0), description="area of the random resized crop as a fraction of the frame, (low, high) "
        "(the paper's 0.2-1)")
    inner_crop_scale: tuple[float, float] | None = Field(
        None, description="crop-in-crop views (CropMAE's global-to-local): frame t+gap's crop is drawn inside "
        "frame t's, its area this fraction (low, high) of frame t's crop; None: both frames share one crop "
        "(VideoMAC's)")
    loader_workers: int = Field(2, ge=0, description="DataLoader workers per process")

    @model_validator(mode="after")
    def _gap_range(self) -> DataParams:
        if self.gap_max is not None and self.gap_max < self.gap:
            raise ValueError(f"gap_max {self.gap_max} is below gap {self.gap}")
        return self

    @field_validator("crop_scale", "inner_crop_scale")
    @classmethod
    def _area_fractions(cls, scale: tuple[float, float] | None, info: ValidationInfo) -> tuple[float, float] | None:
        if scale is not None and not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"{info.field_name} is an area fraction (low, high) with 0 < low <= high <= 1, "
                             f"got {tuple(scale)}")
        return scale


class OptimiserParams(BaseModel):
    """AdamW on the effective batch, its schedule and its length (MAE's recipe, linear lr scaling)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int = Field(512, ge=1, description="effective (global) batch per optimiser step")
    micro_batch_size: int | None = Field(None, ge=1, description="per-process forward batch; accumulate up to batch_size")
    epochs: float = Field(100, gt=0)
    warmup_epochs: float = Field(10, ge=0)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps (overrides epochs)")
    base_lr: float = Field(1e-3, gt=0, description="lr = base_lr * batch_size / 256")
    min_lr: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad: float | None = Field(None, gt=0)


class RunParams(BaseModel):
    """Where and how the run executes: device, seed, what it writes and how often."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["auto", "bf16", "fp16", "off"] = Field("auto", description="autocast on CUDA; off on CPU")
    compile: bool = False
    threads: int | None = Field(None, ge=1, description="torch threads on CPU; default: cores left after the loader workers")
    seed: int = 0
    checkpoint_every: int = Field(100, ge=1, description="optimiser steps between checkpoints")
    keep_checkpoints: int = Field(3, ge=1)
    milestones: tuple[float, ...] = Field(
        (), description="fractions of the run's steps (0 to 1) at which a checkpoint is also written and kept, "
        "whatever keep_checkpoints says: the points of a learning curve, e.g. [0, 0.125, 0.25, 0.5]")
    preview_every: int = Field(100, ge=1)
    log_every: int = Field(10, ge=1)
    plot_every: int = Field(50, ge=1)
    resume: bool = False
    init_from: str | None = Field(None, description="start from this checkpoint's model weights (a new schedule)")
    skip_validation_check: bool = False
    check_replicas: bool = Field(False, description="DDP: compare a weight checksum across ranks after every step")
    progress: bool = True
    tensorboard: bool = Field(True, description="TensorBoard event files in RUN/tensorboard (rank 0), when the "
                                                "tensorboard extra is installed")

    @field_validator("milestones")
    @classmethod
    def _fractions(cls, milestones: tuple[float, ...]) -> tuple[float, ...]:
        outside = [f for f in milestones if not 0.0 <= f <= 1.0]
        if outside:
            raise ValueError(f"milestones are fractions of the run's steps, from 0 to 1; {outside} is outside")
        return tuple(sorted(set(milestones)))


class PretrainConfig(BaseModel):
    """Parameters of ``pretrain_flow``: the stores, the run directory and four sections.

    ``model`` is ``vmac_core.model_config.ModelConfig`` itself (pydantic validates the dataclass
    field by field, refuses unknown keys and runs its checks, ``patch_size`` included), so the
    model the run builds and the config its checkpoints embed are this section.

    Build it with ``build_pretrain_config(preset, overrides)``, the one path for the CLI and for
    prefect.yaml. Derived values (effective learning rate, steps, accumulation) are pure functions
    in ``tasks.pretrain.plan``; nothing here is overwritten after validation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: str | None = None
    stores: list[str] = Field(min_length=1, description="STORE (its latest snapshot), STORE@SNAPSHOT or STORE@TAG; "
                              "a run pins each to STORE@SNAPSHOT before it reads (tasks.pretrain.data)")
    out: str = Field(description="run directory: checkpoints, metrics, plots, exported encoder, lineage")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataParams = DataParams()
    optimiser: OptimiserParams = OptimiserParams()
    run: RunParams = RunParams()

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, values):
        """A preset's fields are defaults: explicit values (CLI flags, prefect.yaml) win over them."""
        if isinstance(values, dict) and values.get("preset") is not None:
            preset = values["preset"]
            if preset not in PRETRAIN_PRESETS:
                raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRETRAIN_PRESETS)}")
            values = merge(PRETRAIN_PRESETS[preset], values)
        return values


DEFAULT_PRESET = "tiny-cpu"

# The paper's recipe (VideoMAC, Pei et al., CVPR 2024) and a laptop-sized one. Each is a nested
# dict of PretrainConfig sections; CLI and prefect.yaml overrides are merged on top, field by field.
PRETRAIN_PRESETS: dict[str, dict] = {
    # ~0.26 s a step on 2 idle cores: 600 steps in under 3 minutes. Loading inline (0 loader
    # workers) leaves both cores to torch, which beat a loader worker plus one torch thread (0.37 s).
    # A short run needs a faster EMA (0.99) than the paper's. lr 5e-4 at batch 32 (base 4e-3): of
    # 1.25e-3 and 5e-4, the lower one gave better features on the sample's labelled clips.
    "tiny-cpu": {
        "model": {"encoder": "convnextv2_atto", "input_size": 128, "decoder_dim": 128, "ema_momentum_base": 0.99},
        "data": {"loader_workers": 0},
        "optimiser": {"batch_size": 32, "epochs": 30, "warmup_epochs": 2, "max_steps": 600, "base_lr": 4e-3},
        "run": {"checkpoint_every": 100, "preview_every": 200, "plot_every": 50, "log_every": 25},
    },
    # The real-video benchmark's preset (benchmarks/learning.py, the DAVIS-2016 dev set), sized to
    # its budget of 60 CPU-minutes on 2 cores (docs/learning.md, "Using the hour"): adaptive masking
    # (+2.0 J&F over symmetric, 3 seeds) at 224 px input, closer to the evaluation's feature grid,
    # for 3000 steps (about 57 CPU-minutes). The screens of frame gap, crop-in-crop views, crop
    # scale, mask ratio and ConvNeXt V2-femto at 300 steps found nothing better than this recipe.
    "real-cpu": {
        "model": {"encoder": "convnextv2_atto", "input_size": 224, "decoder_dim": 128, "ema_momentum_base": 0.99,
                  "mask_strategy": "adaptive"},
        "data": {"loader_workers": 0},
        "optimiser": {"batch_size": 32, "epochs": 30, "warmup_epochs": 2, "max_steps": 3000, "base_lr": 4e-3},
        "run": {"checkpoint_every": 750, "preview_every": 1500, "plot_every": 100, "log_every": 50},
    },
    "paper-r50": {
        "model": {"encoder": "resnet50", "input_size": 224},
        "optimiser": {"batch_size": 512, "micro_batch_size": 64},
    },
    "paper-cnxv2-s": {
        "model": {"encoder": "convnextv2_small", "input_size": 224},
        "optimiser": {"batch_size": 512, "micro_batch_size": 64},
    },
}


def build_pretrain_config(preset: str | None, overrides: Mapping[str, Any]) -> PretrainConfig:
    """The PretrainConfig for a preset plus nested ``overrides`` (see ``nest_overrides``).

    The same validation runs on prefect.yaml's ``config`` parameter, preset included. Raises
    pydantic.ValidationError.
    """
    return PretrainConfig.model_validate({"preset": preset, **overrides})


# --- overrides by path ---------------------------------------------------------------------------


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` on top, recursing into dicts present in both (sections)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            value = merge(merged[key], value)
        merged[key] = value
    return merged


def field_types(kind: Any) -> dict[str, Any] | None:
    """Field name → annotation of a pydantic model or dataclass; None for anything else."""
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return {name: info.annotation for name, info in kind.model_fields.items()}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return {f.name: hints[f.name] for f in dataclasses.fields(kind)}
    return None


class UnknownFieldError(ValueError):
    """An override names no field of the config."""


def nest_overrides(flat: Mapping[str, Any], model: type[BaseModel] = PretrainConfig) -> dict[str, Any]:
    """``{"optimiser.base_lr": 5e-4, "mask_ratio": 0.9}`` as ``model``'s nested shape:
    ``{"optimiser": {"base_lr": 5e-4}, "model": {"mask_ratio": 0.9}}``.

    A key is ``section.field``, a top-level field, or a bare field name that exactly one section
    has. Raises UnknownFieldError naming the closest fields and the sections for any other key.
    """
    top = field_types(model) or {}
    sections = {name: fields for name, kind in top.items() if (fields := field_types(kind))}
    paths = [name for name in top if name not in sections]
    paths += [f"{section}.{name}" for section, fields in sections.items() for name in fields]
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        nested = merge(nested, _nest(_resolve(key, top, sections, paths), value))
    return nested


def _resolve(key: str, top: dict, sections: dict[str, dict], paths: list[str]) -> tuple[str, ...]:
    section, dot, name = key.rpartition(".")
    if dot and name in sections.get(section, {}):
        return section, name
    if not dot and key in top:
        return (key,)
    owners = [s for s, fields in sections.items() if key in fields] if not dot else []
    if len(owners) == 1:
        return owners[0], key
    if len(owners) > 1:
        raise UnknownFieldError(f"{key} is a field of several sections; write one of "
                                f"{', '.join(f'{s}.{key}' for s in owners)}")
    bare = {path.rpartition(".")[2] for path in paths}
    close = difflib.get_close_matches(name, sorted(bare), n=3, cutoff=0.6)
    close = [path for match in close for path in paths if path.rpartition(".")[2] == match]
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise UnknownFieldError(f"unknown field {key!r}{hint} (fields: {', '.join(p for p in top if p not in sections)}; "
                            f"sections: {', '.join(sections)})")


def _holds(values: Any, path: list[str]) -> bool:
    """Whether nested ``values`` has a key at ``path``."""
    if not path:
        return True
    return isinstance(values, Mapping) and path[0] in values and _holds(values[path[0]], path[1:])


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    return {path[0]: value} if len(path) == 1 else {path[0]: _nest(path[1:], value)}


# --- the pipeline --------------------------------------------------------------------------------

# PretrainConfig fields the pipeline sets for each run it plans: an override would be replaced.
PIPELINE_PER_RUN = ("out", "run.resume", "run.init_from", "run.progress")
PIPELINE_OWNED = ("preset", "stores", *PIPELINE_PER_RUN)
# PretrainConfig fields that say where or how a run goes, not what it computes: two configs that
# differ only in these train the same model, so the pipeline reuses the run.
RUN_ONLY_FIELDS = (*PIPELINE_PER_RUN, "run.skip_validation_check", "run.tensorboard")
# EvaluateConfig fields the pipeline sets for each evaluation: the run's encoder, the store, the folder.
EVALUATION_OWNED = ("checkpoints", "data", "out")


class PipelineConfig(BaseModel):
    """Parameters of ``pipeline_flow``: ingest → validate → pretrain → evaluate with one config.

    With no ``sources`` the embedded sample is written to ``{out}/sample`` and used: its MP4 clips
    for training, its DAVIS/VIP/JHMDB folders for evaluation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: list[str] = Field(default_factory=list, description="training sources; empty: the embedded sample")
    eval_sources: list[str] = Field(default_factory=list, description="labelled folders (DAVIS/VIP/JHMDB) to evaluate on")
    out: str = "vmac-out"
    store: str | None = Field(None, description="training store (default {out}/train.zarr)")
    eval_store: str | None = Field(None, description="evaluation store, native resolution (default {out}/eval.zarr)")
    sample_seed: int = Field(0, description="seed of the embedded sample")
    sample_small: bool = Field(False, description="use the small embedded sample (tests, smoke runs)")
    decode: DecodeParams = DecodeParams()
    dask_address: str | None = None
    dask_workers: int | None = Field(None, ge=1, description="LocalCluster workers; default one per core")
    preset: str = DEFAULT_PRESET
    pretrain: dict[str, Any] = Field(
        default_factory=dict,
        description="PretrainConfig overrides on top of the preset, by section, e.g. {optimiser: {base_lr: 5e-4}}",
    )
    on_new_data: Literal["continue", "new-run"] = Field(
        "continue", description="when the store changed since the last run: warm-start a new run from its "
        "last checkpoint (continue) or start from scratch (new-run)")
    pretrain_on: Literal["local", "deployment"] = Field(
        "local", description="train in this process, or hand over to the pretrain deployment (gpu pool)")
    pretrain_deployment: str = "pretrain_flow/pretrain_flow"
    evaluate: dict = Field(default_factory=dict, description="EvaluateConfig overrides")
    reevaluate: bool = Field(False, description="evaluate again even when this encoder was evaluated already")
    progress: bool = True

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str) -> str:
        if preset not in PRETRAIN_PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRETRAIN_PRESETS)}")
        return preset

    @field_validator("pretrain")
    @classmethod
    def _valid_pretrain(cls, overrides: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Validate the overrides now, before any stage runs: a typo must not wait for training."""
        taken = [path for path in PIPELINE_OWNED if _holds(overrides, path.split("."))]
        if taken:
            raise ValueError(f"{', '.join(taken)} is set by the pipeline for each run; leave it out")
        build_pretrain_config(info.data.get("preset"), {**overrides, "stores": ["(train store)"], "out": "(run)"})
        return overrides

    @field_validator("evaluate")
    @classmethod
    def _valid_evaluate(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        """Validate the evaluation settings now, as the pre-training ones: a typo in a nightly run's
        evaluation must fail before ingest, not after hours of pre-training."""
        taken = [name for name in EVALUATION_OWNED if name in overrides]
        if taken:
            raise ValueError(f"evaluate.{', evaluate.'.join(taken)} is set by the pipeline for each run; leave it out")
        EvaluateConfig.model_validate({**overrides, "checkpoints": ["(encoder)"], "data": "(store)", "out": "(eval)"})
        return overrides

    def train_store(self) -> str:
        return self.store or f"{self.out.rstrip('/')}/train.zarr"

    def train_decode(self) -> DecodeParams:
        """The training store's decode parameters: ``decode``, with the motion map on when the
        pre-training config masks by motion (``mask_strategy=motion`` reads it)."""
        strategy = self.pretrain_config("(train store)", "(run)").model.mask_strategy
        return self.decode.model_copy(update={"motion": True}) if strategy == "motion" else self.decode

    def evaluation_store(self) -> str:
        return self.eval_store or f"{self.out.rstrip('/')}/eval.zarr"

    def pretrain_config(self, store: str, run_dir: str, **run: Any) -> PretrainConfig:
        """The PretrainConfig of one planned run: the preset, the overrides, then the pipeline's
        own fields (``run``: resume, init_from)."""
        values = merge(self.pretrain, {"stores": [store], "out": run_dir, "run": {"progress": self.progress, **run}})
        return build_pretrain_config(self.preset, values)
