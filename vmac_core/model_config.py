"""The one config the VideoMAC model takes (nanoGPT style: a small frozen dataclass, nothing else).

Derived values (effective learning rate, schedules) are pure functions in `vmac_core.schedules`,
never fields overwritten here. The config rides inside every checkpoint via `to_dict`/`from_dict`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from vmac_core.architectures import BACKENDS, ENCODER_NAMES, ENCODER_STRIDE

# Where the patch mask falls (vmac_core.mask_strategies; docs/model.md, "Mask strategies"):
# symmetric: one random mask shared by both frames (VideoMAC's); independent: a random mask per
# frame (the paper's ablation); motion: patches drawn with probability rising with the stored
# motion map, shared by both frames (MGM-style); adaptive: drawn from a small sampling network's
# distribution, trained with REINFORCE on the reconstruction error (AdaMAE-style).
MASK_STRATEGIES = ("symmetric", "independent", "motion", "adaptive")


@dataclass(frozen=True)
class ModelConfig:
    """VideoMAC model hyper-parameters, the paper's defaults (VideoMAC, Pei et al., CVPR 2024;
    docs/model.md).

    encoder: a name in `vmac_core.architectures.ENCODER_NAMES` ("resnet18", "convnextv2_atto", ...).
    backend: "masked_dense" (pure torch, default) or "minkowski" (MinkowskiEngine, lazy import).
    input_size: square crop side in pixels; a multiple of patch_size.
    patch_size: mask/prediction patch side; must equal the encoder stride (32) so that one
        stride-32 site is one patch and the decoder predicts one patch per site.
    mask_ratio: fraction of patches removed from each frame, whatever the strategy.
    mask_strategy: where the masked patches fall, one of MASK_STRATEGIES (default "symmetric",
        the paper's).
    motion_temperature: "motion" only: patch weights are exp(m / T) with m the patch's motion
        over the sample's largest (0..1); lower T follows motion more strictly, a large T tends
        to uniform (symmetric) masking.
    sampler_weight: "adaptive" only: weight of the sampling network's REINFORCE loss added to
        the model's loss.
    decoder_dim / decoder_depth: width of the 1x1 projection and number of ConvNeXt V2 blocks.
    consistency_weight: gamma in loss = L_online + L_target + gamma * L_consistency.
    norm_pix_loss: regress per-patch normalised pixels (mean 0, var 1 per patch).
    ema_momentum_base: EMA momentum at step 0; a cosine takes it to 1 at the last step.
    drop_path_rate: stochastic depth of the online encoder (0 in the paper's pre-training).
    in_channels: image channels.
    """

    encoder: str = "convnextv2_tiny"
    backend: str = "masked_dense"
    input_size: int = 224
    patch_size: int = 32
    mask_ratio: float = 0.75
    mask_strategy: str = "symmetric"
    motion_temperature: float = 0.25
    sampler_weight: float = 1.0
    decoder_dim: int = 512
    decoder_depth: int = 1
    consistency_weight: float = 1.0
    norm_pix_loss: bool = True
    ema_momentum_base: float = 0.996
    drop_path_rate: float = 0.0
    in_channels: int = 3

    def __post_init__(self) -> None:
        if self.encoder not in ENCODER_NAMES:
            raise ValueError(f"unknown encoder {self.encoder!r}; choose from {sorted(ENCODER_NAMES)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; choose from {list(BACKENDS)}")
        if self.patch_size != ENCODER_STRIDE:
            raise ValueError(
                f"patch_size must equal the encoder stride {ENCODER_STRIDE} (one stride-32 site per "
                f"patch), got {self.patch_size}"
            )
        if self.input_size <= 0 or self.input_size % self.patch_size:
            raise ValueError(f"input_size {self.input_size} is not a positive multiple of patch_size {self.patch_size}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        if self.mask_strategy not in MASK_STRATEGIES:
            raise ValueError(f"unknown mask_strategy {self.mask_strategy!r}; choose from {list(MASK_STRATEGIES)}")
        if self.motion_temperature <= 0:
            raise ValueError(f"motion_temperature must be positive, got {self.motion_temperature}")
        if self.sampler_weight < 0:
            raise ValueError(f"sampler_weight must be non-negative, got {self.sampler_weight}")
        if not 0.0 <= self.ema_momentum_base <= 1.0:
            raise ValueError(f"ema_momentum_base must be in [0, 1], got {self.ema_momentum_base}")
        if self.decoder_dim <= 0 or self.decoder_depth < 0:
            raise ValueError("decoder_dim must be positive and decoder_depth non-negative")

    @property
    def grid_size(self) -> int:
        """Patches per side (input_size / patch_size)."""
        return self.input_size // self.patch_size

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of str/int/float/bool: safe for JSON and for torch.load(weights_only=True)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        """Inverse of to_dict. Unknown keys are an error (a typo must not silently become a default)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}")
        return cls(**values)
