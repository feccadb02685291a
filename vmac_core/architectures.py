"""Facts about the architectures that need no torch: names, stage strides, variant tables, backends.

Kept apart from the modules that build the networks so that configs (``vmac_core.model_config``
and the pipeline's ``storage_schemas.config``) validate encoder and backend names without loading
torch.
"""

from __future__ import annotations

FEATURE_STRIDES = (4, 8, 16, 32)  # stage outputs, in input pixels per feature site
ENCODER_STRIDE = 32  # the deepest stage: equals the mask patch size (docs/model.md)

# name -> (block kind, blocks per stage)
RESNET_VARIANTS: dict[str, tuple[str, tuple[int, ...]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}

# name -> (depths, dims), from the ConvNeXt V2 paper (Table 1 / official model zoo).
CONVNEXTV2_VARIANTS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "convnextv2_atto": ((2, 2, 6, 2), (40, 80, 160, 320)),
    "convnextv2_femto": ((2, 2, 6, 2), (48, 96, 192, 384)),
    "convnextv2_pico": ((2, 2, 6, 2), (64, 128, 256, 512)),
    "convnextv2_nano": ((2, 2, 8, 2), (80, 160, 320, 640)),
    "convnextv2_tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "convnextv2_small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "convnextv2_base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
}

ENCODER_NAMES: tuple[str, ...] = (*RESNET_VARIANTS, *CONVNEXTV2_VARIANTS)

# Sparse backends: "masked_dense" (pure torch, the default) and "minkowski" (MinkowskiEngine,
# imported only when selected). docs/model.md compares them.
BACKENDS: tuple[str, ...] = ("masked_dense", "minkowski")
