"""Sparse backends: where the visible sites of a feature grid are, and the spatial ops on them.

Every encoder in vmac_core runs in *rows form*: the features of one stage are an (N, C) matrix
`feat_nc` holding only the N active (visible) sites, plus a *site grid* object that knows where
those rows live on the (B, H, W) grid. Per-site ops (LayerNorm, Linear/1x1 conv, GELU) and GRN
then touch only visible sites, whatever the backend. Only spatial ops go through the grid:

- `grid.conv(feat_nc, conv)`: submanifold convolution (stride 1: outputs at the active sites only,
  masked inputs count as zero) or strided convolution (the output grid is the input's active set
  pooled by the stride, which is what MinkowskiEngine does and, for a patch-aligned mask, is the
  patch mask at the coarser stride);
- `grid.gather(x_bchw)` / `grid.to_dense(feat_nc)`: between a dense map and rows (dense maps have
  zeros at masked sites); `grid.conv_from_dense(x_bchw, conv)`: rows of a convolution of a dense
  map, e.g. the image through the stem;
- `grid.sum_per_sample` / `grid.scale_per_sample`: per-sample reductions for GRN.

Backends (chosen by name in ModelConfig.backend):
- "masked_dense" (default): pure torch. conv = scatter rows into a zero grid, dense conv2d, gather
  the output grid's rows. Numerically equivalent to submanifold sparse convolution.
- "minkowski": MinkowskiEngine 0.5.4 sparse convolutions on the same weights, imported only when
  selected. Built by `make minkowski` (scripts/build_minkowski.sh).

Both backends share every non-spatial op, so they differ only in how a convolution is evaluated.
"""

from __future__ import annotations

from torch import Tensor

from vmac_core.architectures import BACKENDS
from vmac_core.sparse.active import upsample_active
from vmac_core.sparse.masked_dense import MaskedDenseGrid

__all__ = ["BACKENDS", "MaskedDenseGrid", "build_grid", "upsample_active"]


def build_grid(backend: str, active_b1hw: Tensor | None, batch: int, height: int, width: int):
    """Site grid for the first sparse stage.

    active_b1hw: bool (B, 1, h, w), True = visible, at (height, width) or any coarser grid that
        divides it (e.g. the patch grid); None means every site is active (dense use).
    Returns a MaskedDenseGrid or a MinkowskiGrid with the same methods.
    """
    if backend == "masked_dense":
        return MaskedDenseGrid.build(active_b1hw, batch, height, width)
    if backend == "minkowski":
        # Lazy: MinkowskiEngine is an optional, separately built extension.
        from vmac_core.sparse.minkowski import MinkowskiGrid

        return MinkowskiGrid.build(active_b1hw, batch, height, width)
    raise ValueError(f"unknown sparse backend {backend!r}; choose from {BACKENDS}")
