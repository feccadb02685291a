"""Encoder registry: every encoder runs dense (active_b1hw=None) or sparse with one state_dict.

Contract shared by all encoders:
    encoder(x_bchw, active_b1hw=None, strides=(4, 8, 16, 32)) -> {stride: (B, C_s, H/s, W/s)}
    encoder.out_channels: {stride: C_s}
    encoder.backend: "masked_dense" | "minkowski" (only changes how spatial convs are evaluated)
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from vmac_core.architectures import ENCODER_STRIDE, FEATURE_STRIDES
from vmac_core.encoders.convnext import (
    CONVNEXTV2_VARIANTS,
    ConvNeXtV2Encoder,
    build_convnextv2,
)
from vmac_core.encoders.resnet import RESNET_VARIANTS, ResNetEncoder, build_resnet

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    **{name: build_resnet for name in RESNET_VARIANTS},
    **{name: build_convnextv2 for name in CONVNEXTV2_VARIANTS},
}


def build_encoder(name: str, backend: str = "masked_dense", drop_path_rate: float = 0.0, in_channels: int = 3) -> nn.Module:
    """Build an encoder by registry name. The backend does not change parameters or state_dict keys."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose from {sorted(ENCODERS)}")
    return ENCODERS[name](name, backend=backend, drop_path_rate=drop_path_rate, in_channels=in_channels)


__all__ = ["ENCODERS", "ENCODER_STRIDE", "FEATURE_STRIDES", "build_encoder", "ConvNeXtV2Encoder", "ResNetEncoder"]
