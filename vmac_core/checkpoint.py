"""Checkpoint format for VideoMAC pre-training, and the dense encoder export.

vmac_core does no file I/O: callers `torch.save(ckpt, f)` and `torch.load(f, weights_only=True)`.
A checkpoint therefore holds only what the weights-only unpickler accepts -- tensors, dicts, lists,
tuples, str, int, float, bool, None -- and `make_checkpoint` refuses anything else up front (a
numpy RNG state, for instance, must be converted by the caller).

Layout (CHECKPOINT_FORMAT "vmac.videomac/1"):
    format        str
    config        ModelConfig.to_dict()
    model         VideoMAC.state_dict()  (online.* and target.*)
    optimizer     optimizer.state_dict() or None
    scaler        AMP grad-scaler state_dict() or None
    step          int, global optimisation steps done
    sampler       caller's sampler position (dict/list/int) or None
    rng           caller's RNG states (tensors, e.g. torch.get_rng_state()) or None
    extra         any further weights-only-safe caller data (dict) or None
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from vmac_core.model_config import ModelConfig

CHECKPOINT_FORMAT = "vmac.videomac/1"

_SAFE_SCALARS = (str, int, float, bool, type(None))


class ConfigMismatchError(ValueError):
    """A checkpoint's embedded config differs from the one the caller expects."""


def assert_weights_only_safe(obj: Any, path: str = "checkpoint") -> None:
    """Raise TypeError naming the first value torch.load(weights_only=True) would refuse."""
    if isinstance(obj, Tensor) or isinstance(obj, _SAFE_SCALARS) or isinstance(obj, torch.dtype):
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{path}: key {key!r} of type {type(key).__name__} is not weights-only safe")
            assert_weights_only_safe(value, f"{path}[{key!r}]")
        return
    if isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            assert_weights_only_safe(value, f"{path}[{i}]")
        return
    raise TypeError(f"{path}: {type(obj).__name__} cannot be loaded with torch.load(weights_only=True)")


def make_checkpoint(
    cfg: ModelConfig,
    model_state: dict[str, Tensor],
    *,
    step: int,
    optimizer_state: dict | None = None,
    scaler_state: dict | None = None,
    sampler_state: Any = None,
    rng_state: Any = None,
    extra: dict | None = None,
) -> dict[str, Any]:
    """Assemble a checkpoint dict (see module docstring); raises TypeError if any part is unsafe."""
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "config": cfg.to_dict(),
        "model": model_state,
        "optimizer": optimizer_state,
        "scaler": scaler_state,
        "step": int(step),
        "sampler": sampler_state,
        "rng": rng_state,
        "extra": extra,
    }
    assert_weights_only_safe(ckpt)
    return ckpt


def check_config(ckpt: dict[str, Any], cfg: ModelConfig) -> None:
    """Raise ConfigMismatchError listing every field where the checkpoint's config differs from cfg."""
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ConfigMismatchError(f"checkpoint format {ckpt.get('format')!r} is not {CHECKPOINT_FORMAT!r}")
    saved = ModelConfig.from_dict(ckpt["config"]).to_dict()
    wanted = cfg.to_dict()
    diffs = [f"{k}: checkpoint={saved[k]!r} expected={wanted[k]!r}" for k in wanted if saved[k] != wanted[k]]
    if diffs:
        raise ConfigMismatchError("checkpoint config differs from the requested config: " + "; ".join(diffs))


def config_of(ckpt: dict[str, Any]) -> ModelConfig:
    """The ModelConfig embedded in a checkpoint."""
    return ModelConfig.from_dict(ckpt["config"])


def export_dense_encoder(model: nn.Module) -> dict[str, Tensor]:
    """The online encoder's weights as a plain state_dict (detached clones).

    It loads with strict=True into `build_encoder(cfg.encoder)` for dense downstream use; the
    sparse backends share the dense parameter layout, so no conversion is needed.
    """
    return {name: tensor.detach().clone() for name, tensor in model.online.encoder.state_dict().items()}
