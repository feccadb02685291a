"""Strides every encoder shares: its four stages, and the deepest one (one site per mask patch)."""

FEATURE_STRIDES = (4, 8, 16, 32)  # stage outputs, in input pixels per feature site
ENCODER_STRIDE = 32  # the deepest stage: equals the mask patch size (docs/model.md)
