"""Flow configs: one frozen model per flow, built the same way from the CLI and from prefect.yaml."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from storage_schemas.records import DecodeParams


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
    workers: int | None = Field(None, ge=1, description="LocalCluster workers; default one per core")
    progress: bool = True


class PretrainConfig(BaseModel):
    """Parameters of ``pretrain_flow``: model, data, optimisation and run sections in one frozen model.

    Build it with ``build_pretrain_config(preset, overrides)``, the one path for the CLI and for
    prefect.yaml. Derived values (effective learning rate, steps, accumulation) are pure functions
    in ``tasks.train``; nothing here is overwritten after validation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stores: list[str] = Field(min_length=1)
    out: str = Field(description="run directory: checkpoints, metrics, plots, exported encoder, lineage")
    preset: str | None = None
    # Model (mirrors vmac_core.model_config.ModelConfig).
    encoder: str = "resnet50"
    backend: str = "masked_dense"
    input_size: int = 224
    patch_size: int = 32
    mask_ratio: float = Field(0.75, ge=0.0, lt=1.0)
    decoder_dim: int = 512
    decoder_depth: int = 1
    consistency_weight: float = 1.0
    ema_momentum_base: float = Field(0.996, ge=0.0, le=1.0)
    norm_pix_loss: bool = True
    # Data.
    gap: int = Field(1, ge=1, description="frame gap t -> t+gap")
    gap_max: int | None = Field(None, ge=1, description="sample the gap uniformly in [gap, gap_max]")
    batch_size: int = Field(512, ge=1, description="effective (global) batch per optimiser step")
    micro_batch_size: int | None = Field(None, ge=1, description="per-process forward batch; accumulate up to batch_size")
    workers: int = Field(2, ge=0, description="DataLoader workers per process")
    # Optimisation.
    epochs: float = Field(100, gt=0)
    warmup_epochs: float = Field(10, ge=0)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimiser steps (overrides epochs)")
    base_lr: float = Field(1e-3, gt=0, description="lr = base_lr * batch_size / 256")
    min_lr: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.05, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    clip_grad: float | None = Field(None, gt=0)
    amp: str = Field("auto", pattern="^(auto|bf16|fp16|off)$", description="autocast on CUDA; off on CPU")
    compile: bool = False
    device: str = Field("auto", pattern="^(auto|cpu|cuda)$")
    threads: int | None = Field(None, ge=1, description="torch threads on CPU; default: cores left after the loader workers")
    seed: int = 0
    # Run.
    checkpoint_every: int = Field(100, ge=1, description="optimiser steps between checkpoints")
    keep_checkpoints: int = Field(3, ge=1)
    preview_every: int = Field(100, ge=1)
    log_every: int = Field(10, ge=1)
    plot_every: int = Field(50, ge=1)
    resume: bool = False
    init_from: str | None = Field(None, description="start from this checkpoint's model weights (a new schedule)")
    skip_validation_check: bool = False
    check_replicas: bool = Field(False, description="DDP: compare a weight checksum across ranks after every step")
    progress: bool = True

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, values):
        """A preset's fields are defaults: explicit values (CLI flags, prefect.yaml) win over them."""
        if isinstance(values, dict) and values.get("preset") is not None:
            preset = values["preset"]
            if preset not in PRETRAIN_PRESETS:
                raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRETRAIN_PRESETS)}")
            values = {**PRETRAIN_PRESETS[preset], **values}
        return values

    @field_validator("input_size")
    @classmethod
    def _multiple_of_patch(cls, value: int) -> int:
        if value <= 0 or value % 32:
            raise ValueError("input_size must be a positive multiple of 32 (the patch size and encoder stride)")
        return value


# The paper's recipe (DESIGN.md "VideoMAC, as published") and a laptop-sized one. Each is a dict of
# PretrainConfig fields; CLI and prefect.yaml overrides are applied on top.
PRETRAIN_PRESETS: dict[str, dict] = {
    # ~0.26 s a step on 2 idle cores: 600 steps in under 3 minutes. Loading inline (workers 0)
    # leaves both cores to torch, which beat a loader worker plus one torch thread (0.37 s).
    # A short run needs a faster EMA (0.99) than the paper's. lr 5e-4 at batch 32 (base 4e-3): of
    # 1.25e-3 and 5e-4, the lower one gave better features on the sample's labelled clips.
    "tiny-cpu": {
        "encoder": "convnextv2_atto",
        "input_size": 128,
        "decoder_dim": 128,
        "batch_size": 32,
        "workers": 0,
        "epochs": 30,
        "warmup_epochs": 2,
        "max_steps": 600,
        "base_lr": 4e-3,
        "ema_momentum_base": 0.99,
        "checkpoint_every": 100,
        "preview_every": 200,
        "plot_every": 50,
        "log_every": 25,
    },
    "paper-r50": {"encoder": "resnet50", "input_size": 224, "batch_size": 512, "micro_batch_size": 64},
    "paper-cnxv2-s": {"encoder": "convnextv2_small", "input_size": 224, "batch_size": 512, "micro_batch_size": 64},
}


def build_pretrain_config(preset: str | None, overrides: dict) -> PretrainConfig:
    """The PretrainConfig for a preset plus overrides (None values mean "not given").

    The same validation runs on prefect.yaml's ``config`` parameter, preset included.
    """
    return PretrainConfig.model_validate({"preset": preset, **{k: v for k, v in overrides.items() if v is not None}})


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
    seed: int = Field(0, description="seed of the embedded sample")
    sample_small: bool = Field(False, description="use the small embedded sample (tests, smoke runs)")
    decode: DecodeParams = DecodeParams()
    dask_address: str | None = None
    workers: int | None = Field(None, ge=1)
    preset: str = "tiny-cpu"
    pretrain: dict = Field(default_factory=dict, description="PretrainConfig overrides on top of the preset")
    on_new_data: str = Field("continue", pattern="^(continue|new-run)$",
                             description="when the store changed since the last run: warm-start a new run from its "
                             "last checkpoint (continue) or start from scratch (new-run)")
    pretrain_on: str = Field("local", pattern="^(local|deployment)$",
                             description="train in this process, or hand over to the pretrain deployment (gpu pool)")
    pretrain_deployment: str = "pretrain_flow/pretrain_flow"
    evaluate: dict = Field(default_factory=dict, description="EvaluateConfig overrides")
    reevaluate: bool = Field(False, description="evaluate again even when this encoder was evaluated already")
    progress: bool = True

    def train_store(self) -> str:
        return self.store or f"{self.out.rstrip('/')}/train.zarr"

    def evaluation_store(self) -> str:
        return self.eval_store or f"{self.out.rstrip('/')}/eval.zarr"
