"""The encoders an evaluation runs: weights files read and loaded, each architecture's
random-init floor and the raw-pixel floor (docs/evaluate.md, ``--checkpoint``, ``--baseline random-init``
and ``--baseline pixels``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from storage_schemas.benchmark import CheckpointInfo, EvaluateConfig
from tasks.io.files import file_sha256
from tasks.io.names import clean_name
from tasks.io.weights import load_weights_only
from vmac_core.augment import IMAGENET_MEAN, IMAGENET_STD
from vmac_core.colour import PixelFeatures
from vmac_core.encoders import ENCODERS, build_encoder

# Keys of the online encoder in a full pre-training checkpoint's ``model`` state_dict.
ONLINE_ENCODER_PREFIX = "online.encoder."

# The raw-pixel floor: its name in reports and its "encoder" (no architecture, no weights).
PIXELS = "pixels"
PIXEL_FEATURES = {
    "features": "CIE L*a*b* (sRGB, D65) of each pixel of the encoder's input, scaled as CRW's Lab loader "
                "(L*/50.2 - 1, a*/128, b*/128)",
    "pooling": "mean of each channel over every stride x stride cell (avg_pool2d, kernel = stride = stage stride)",
    "channels": 3,
}


@dataclass(frozen=True)
class EncoderSpec:
    """One encoder to evaluate. ``kind``: encoder (encoder.pt), checkpoint (full), random-init or
    pixels (the raw-pixel floor; ``encoder`` is then ``pixels``)."""

    name: str
    encoder: str
    kind: str
    path: str | None = None
    seed: int | None = None

    @property
    def random_init(self) -> bool:
        return self.kind == "random-init"


def read_weights(path: str) -> tuple[str, dict[str, torch.Tensor], dict, int | None, str]:
    """(encoder name, dense encoder state_dict, ModelConfig dict, step, kind) of a weights file.

    ``encoder.pt`` holds ``{"config", "encoder", "state_dict", "step"}``; a full checkpoint holds
    ``{"config", "model", ...}`` whose online encoder keys start with ``online.encoder.``.
    Loaded with the weights-only unpickler (``tasks.io.weights``). Raises ValueError (a
    ``WeightsFileError`` for a file that holds anything but weights) for any other file.
    """
    blob = load_weights_only(path)
    if not isinstance(blob, dict) or "config" not in blob:
        raise ValueError(f"{path}: not a vmac encoder export or checkpoint (no config)")
    config = dict(blob["config"])
    if "state_dict" in blob:
        name = blob.get("encoder") or config.get("encoder")
        return name, blob["state_dict"], config, blob.get("step"), "encoder"
    if "model" in blob:
        state = {k[len(ONLINE_ENCODER_PREFIX):]: v for k, v in blob["model"].items() if k.startswith(ONLINE_ENCODER_PREFIX)}
        if not state:
            raise ValueError(f"{path}: checkpoint has no {ONLINE_ENCODER_PREFIX}* weights")
        return config.get("encoder"), state, config, blob.get("step"), "checkpoint"
    raise ValueError(f"{path}: neither an encoder export (state_dict) nor a checkpoint (model)")


def weights_name(path: str) -> str:
    """A readable name: the run directory for RUN/encoder.pt, RUN-ckpt-000100 for a checkpoint."""
    p = Path(path)
    if p.name == "encoder.pt":
        stem = p.parent.name or "encoder"
    elif p.parent.name == "checkpoints":
        stem = f"{p.parent.parent.name}-{p.stem}"
    else:
        stem = p.stem
    return clean_name(stem, "encoder")


def plan_encoders(config: EvaluateConfig) -> list[EncoderSpec]:
    """Checkpoints in the given order, each architecture followed by its random-init floor, then
    the raw-pixel floor (with any random-init floor unless ``pixel_floor`` is false, or asked alone).

    Names are unique (``-2``, ``-3`` appended). Raises ValueError for an unknown architecture or
    one other than ``config.encoder`` when that is given.
    """
    specs: list[EncoderSpec] = []
    taken: set[str] = set()

    def unique(name: str) -> str:
        out, n = name, 2
        while out in taken:
            out, n = f"{name}-{n}", n + 1
        taken.add(out)
        return out

    architectures: list[str] = []
    floors = bool(config.checkpoints) or config.random_init
    for path in config.checkpoints:
        name, _, _, _, kind = read_weights(path)
        if name not in ENCODERS:
            raise ValueError(f"{path}: unknown encoder {name!r}")
        if config.encoder and name != config.encoder:
            raise ValueError(f"{path} holds a {name}, but --encoder {config.encoder} was given")
        specs.append(EncoderSpec(unique(weights_name(path)), name, kind, path=path))
        if name not in architectures:
            architectures.append(name)
    if not architectures and floors:
        architectures.append(config.floor_encoder)
    for name in architectures:
        specs.append(EncoderSpec(unique(f"random-init-{name}"), name, "random-init", seed=config.random_init_seed))
    # Group each architecture's checkpoints with its floor (floor last), keeping the given order.
    specs.sort(key=lambda s: (architectures.index(s.encoder), s.random_init))
    if config.pixels or (floors and config.pixel_floor):
        specs.append(EncoderSpec(unique(PIXELS), PIXELS, "pixels"))
    return specs


def load_encoder(spec: EncoderSpec, device: torch.device) -> tuple[torch.nn.Module, CheckpointInfo]:
    """The encoder in eval mode on ``device``, and what it is (hash, step, config)."""
    if spec.kind == "pixels":
        encoder = PixelFeatures(IMAGENET_MEAN, IMAGENET_STD)
        info = {"kind": "pixels", "weights_config": dict(PIXEL_FEATURES)}
    elif spec.random_init:
        # A private RNG stream: the floor's weights depend on the seed only, and the caller's
        # global RNG state is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed or 0)
            encoder = build_encoder(spec.encoder)
        info = {"kind": "random-init", "seed": spec.seed, "weights_config": {"encoder": spec.encoder}}
    else:
        name, state, weights_config, step, kind = read_weights(spec.path)
        encoder = build_encoder(name)
        encoder.load_state_dict(state, strict=True)
        info = {"kind": kind, "path": os.path.abspath(spec.path), "sha256": file_sha256(spec.path),
                "step": step, "weights_config": weights_config}
    params = sum(p.numel() for p in encoder.parameters())
    return encoder.eval().to(device), CheckpointInfo(**info, parameters=params)
