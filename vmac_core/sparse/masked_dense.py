"""The pure-torch backend: sparse semantics evaluated with dense convolutions plus masking.

Rows of a grid are the active sites in ascending flat (b, h, w) order, so they are grouped by
sample. When every sample has the same number of active sites (always true for
`random_patch_mask`), per-sample reductions are reshapes instead of scatters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def pool_active(active_b1hw: Tensor, factor: int) -> Tensor:
    """Active map of a stride-`factor` output: a site is active if any input in its window is.

    This is MinkowskiEngine's output coordinate rule for strided convolutions (input coordinates
    floored to the new stride). For a mask aligned to 32-pixel patches the windows are either
    fully active or fully masked, so it is also the patch mask seen at the coarser stride.
    """
    b, _, h, w = active_b1hw.shape
    if h % factor or w % factor:
        raise ValueError(f"grid {h}x{w} is not divisible by stride {factor}")
    return active_b1hw.reshape(b, 1, h // factor, factor, w // factor, factor).any(dim=5).any(dim=3)


class MaskedDenseGrid:
    """Active sites of one (B, H, W) feature grid for the masked_dense backend.

    rows_n: LongTensor (N,) of flat indices into B*H*W, ascending; None when every site is active
        (dense use: rows are then exactly the channels-last grid, and gathers/scatters are views).
    """

    def __init__(self, batch: int, height: int, width: int, active_b1hw: Tensor | None):
        self.batch, self.height, self.width = batch, height, width
        self.active_b1hw = active_b1hw
        self._coarser: dict[int, MaskedDenseGrid] = {}
        if active_b1hw is None:
            self.rows_n = None
            self.rows_per_sample: int | None = height * width
            self.sample_n = None
            return
        if tuple(active_b1hw.shape) != (batch, 1, height, width):
            raise ValueError(f"active map {tuple(active_b1hw.shape)} != {(batch, 1, height, width)}")
        self.rows_n = active_b1hw.reshape(-1).nonzero().squeeze(1)
        counts_b = active_b1hw.reshape(batch, -1).sum(dim=1)
        uniform = bool((counts_b == counts_b[0]).all())
        self.rows_per_sample = int(counts_b[0]) if uniform else None
        # Only needed for ragged masks, where per-sample sums are index_adds.
        self.sample_n = None if uniform else self.rows_n // (height * width)

    @classmethod
    def build(cls, active_b1hw: Tensor | None, batch: int, height: int, width: int) -> "MaskedDenseGrid":
        from vmac_core.sparse import upsample_active

        if active_b1hw is not None:
            active_b1hw = upsample_active(active_b1hw.bool(), height, width)
        return cls(batch, height, width, active_b1hw)

    @property
    def dense(self) -> bool:
        return self.rows_n is None

    @property
    def num_rows(self) -> int:
        return self.batch * self.height * self.width if self.rows_n is None else int(self.rows_n.numel())

    def coarser(self, factor: int) -> "MaskedDenseGrid":
        """The grid of a stride-`factor` convolution's output (memoised: ResNet's shortcut and main
        branch both ask for it)."""
        if factor not in self._coarser:
            active = None if self.active_b1hw is None else pool_active(self.active_b1hw, factor)
            self._coarser[factor] = MaskedDenseGrid(self.batch, self.height // factor, self.width // factor, active)
        return self._coarser[factor]

    def gather(self, x_bchw: Tensor) -> Tensor:
        """Rows (N, C) of a dense map (B, C, H, W) at this grid's active sites."""
        c = x_bchw.shape[1]
        # For a channels_last map this permute is contiguous and the reshape is free.
        x_nc = x_bchw.permute(0, 2, 3, 1).reshape(-1, c)
        return x_nc if self.rows_n is None else x_nc.index_select(0, self.rows_n)

    def to_dense(self, feat_nc: Tensor) -> Tensor:
        """Dense map (B, C, H, W), channels_last memory format, zero at masked sites."""
        c = feat_nc.shape[1]
        if self.rows_n is None:
            grid_nc = feat_nc
        else:
            grid_nc = feat_nc.new_zeros(self.batch * self.height * self.width, c).index_copy_(0, self.rows_n, feat_nc)
        return grid_nc.view(self.batch, self.height, self.width, c).permute(0, 3, 1, 2)

    def conv(self, feat_nc: Tensor, conv: nn.Conv2d) -> tuple[Tensor, "MaskedDenseGrid"]:
        """Sparse convolution with a dense nn.Conv2d's weights; returns (rows, output grid).

        stride 1 (padding keeps the size): submanifold, outputs at this grid's active sites only;
        stride s: outputs on `coarser(s)`. Masked input sites are zero, so they contribute nothing.
        A 1x1 stride-1 convolution is a matmul on the rows and never touches the grid.
        """
        stride = conv.stride[0]
        if conv.kernel_size == (1, 1) and stride == 1 and conv.groups == 1:
            return F.linear(feat_nc, conv.weight.flatten(1), conv.bias), self
        out_grid = self if stride == 1 else self.coarser(stride)
        y_bchw = F.conv2d(self.to_dense(feat_nc), conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        if y_bchw.shape[-2:] != (out_grid.height, out_grid.width):
            raise ValueError(f"{conv} maps {self.height}x{self.width} to {tuple(y_bchw.shape[-2:])}, expected {out_grid.height}x{out_grid.width}")
        return out_grid.gather(y_bchw), out_grid

    def sum_per_sample(self, v_nc: Tensor) -> Tensor:
        """Per-sample column sums over active rows: (N, C) -> (B, C)."""
        if self.rows_per_sample is not None:
            return v_nc.view(self.batch, self.rows_per_sample, -1).sum(dim=1)
        return v_nc.new_zeros(self.batch, v_nc.shape[1]).index_add_(0, self.sample_n, v_nc)

    def scale_per_sample(self, feat_nc: Tensor, scale_bc: Tensor) -> Tensor:
        """Multiply each row by its sample's (C,) scale: (N, C) * (B, C) -> (N, C)."""
        if self.rows_per_sample is not None:
            c = feat_nc.shape[1]
            return (feat_nc.view(self.batch, self.rows_per_sample, c) * scale_bc.unsqueeze(1)).view(-1, c)
        return feat_nc * scale_bc.index_select(0, self.sample_n)


def dense_grid_like(x_bchw: Tensor) -> MaskedDenseGrid:
    """An all-active grid for a dense map (decoder blocks, feature extraction)."""
    b, _, h, w = x_bchw.shape
    return MaskedDenseGrid(b, h, w, None)
