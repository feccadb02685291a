"""The pure-torch backend: sparse semantics evaluated with dense convolutions plus masking.

Rows of a grid are the active sites in ascending flat (b, h, w) order, so they are grouped by
sample. When every sample has the same number of active sites (always true for
`random_patch_mask`), per-sample reductions are reshapes instead of scatters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vmac_core.sparse.active import upsample_active


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


class _GatherRows(torch.autograd.Function):
    """rows = grid_nc[rows_n]. Indices are unique, so the backward is a copy into zeros rather
    than index_select's generic scatter-add, which is many times slower on CPU."""

    @staticmethod
    def forward(ctx, grid_nc: Tensor, rows_n: Tensor) -> Tensor:
        ctx.save_for_backward(rows_n)
        ctx.num_sites = grid_nc.shape[0]
        return grid_nc.index_select(0, rows_n)

    @staticmethod
    def backward(ctx, grad_rows_nc: Tensor):
        (rows_n,) = ctx.saved_tensors
        return _ScatterRows.apply(grad_rows_nc, rows_n, ctx.num_sites), None


class _ScatterRows(torch.autograd.Function):
    """grid_nc = zeros(num_sites, C) with grid_nc[rows_n] = rows; the adjoint of _GatherRows."""

    @staticmethod
    def forward(ctx, rows_nc: Tensor, rows_n: Tensor, num_sites: int) -> Tensor:
        ctx.save_for_backward(rows_n)
        grid_nc = rows_nc.new_zeros(num_sites, rows_nc.shape[1])
        return grid_nc.index_copy_(0, rows_n, rows_nc)

    @staticmethod
    def backward(ctx, grad_grid_nc: Tensor):
        (rows_n,) = ctx.saved_tensors
        return _GatherRows.apply(grad_grid_nc.contiguous(), rows_n), None, None


class DepthwiseConv2d(torch.autograd.Function):
    """Depthwise KxK, stride 1, 'same' padding convolution with a faster CPU backward.

    forward(x_bchw, weight_c1kk, bias_c) -> (B, C, H, W); same values as F.conv2d(groups=C).
    The forward is oneDNN's (fast). Its backward for the *weight* is 3-8x slower than needed on
    CPU, so the gradients are computed as forward convolutions instead:
      grad_x = depthwise conv of grad_y with the 180-degree-rotated kernel;
      grad_w[c] = sum_b corr(pad(x)[b, c], grad_y[b, c]): one grouped convolution whose B*C
                  groups each use the (H, W) gradient map as kernel, summed over the batch.
    """

    @staticmethod
    def forward(ctx, x_bchw: Tensor, weight_c1kk: Tensor, bias_c: Tensor | None) -> Tensor:
        pad = weight_c1kk.shape[-1] // 2
        ctx.save_for_backward(x_bchw, weight_c1kk)
        ctx.has_bias = bias_c is not None
        return F.conv2d(x_bchw, weight_c1kk, bias_c, 1, pad, 1, x_bchw.shape[1])

    @staticmethod
    def backward(ctx, grad_y_bchw: Tensor):
        x_bchw, weight_c1kk = ctx.saved_tensors
        b, c, h, w = x_bchw.shape
        k = weight_c1kk.shape[-1]
        pad = k // 2
        grad_y_bchw = grad_y_bchw.contiguous(memory_format=torch.channels_last)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = F.conv2d(grad_y_bchw, weight_c1kk.flip(-1, -2), None, 1, pad, 1, c)
        if ctx.needs_input_grad[1]:
            # One transposing copy into a zero-padded (1, B*C, H+2p, W+2p) NCHW buffer.
            x_pad = x_bchw.new_zeros(1, b * c, h + 2 * pad, w + 2 * pad)
            x_pad[0, :, pad : pad + h, pad : pad + w].view(b, c, h, w).copy_(x_bchw)
            per_sample = F.conv2d(x_pad, grad_y_bchw.reshape(b * c, 1, h, w), groups=b * c)
            grad_w = per_sample.view(b, c, k, k).sum(dim=0).unsqueeze(1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_y_bchw.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b


def _is_same_depthwise(conv: nn.Conv2d) -> bool:
    k = conv.kernel_size[0]
    return (
        conv.groups == conv.in_channels == conv.out_channels
        and conv.kernel_size == (k, k)
        and k % 2 == 1
        and conv.stride == (1, 1)
        and conv.padding == (k // 2, k // 2)
        and conv.dilation == (1, 1)
    )


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
        return x_nc if self.rows_n is None else _GatherRows.apply(x_nc, self.rows_n)

    def to_dense(self, feat_nc: Tensor) -> Tensor:
        """Dense map (B, C, H, W), channels_last memory format, zero at masked sites."""
        c = feat_nc.shape[1]
        if self.rows_n is None:
            grid_nc = feat_nc
        else:
            grid_nc = _ScatterRows.apply(feat_nc, self.rows_n, self.batch * self.height * self.width)
        return grid_nc.view(self.batch, self.height, self.width, c).permute(0, 3, 1, 2)

    def conv_from_dense(self, x_bchw: Tensor, conv: nn.Conv2d) -> Tensor:
        """Rows (N, O) at this grid's active sites of conv(x_bchw), where x_bchw is a dense map
        whose conv output has this grid's shape (e.g. the image through the 4x4/4 stem).

        A non-overlapping convolution (kernel == stride, no padding) is a patch embedding: only
        the children of active output sites are gathered, as (N, s*s*C) rows, and multiplied by
        the flattened kernel, so masked sites cost nothing.
        """
        s = conv.stride[0]
        if conv.kernel_size == conv.stride == (s, s) and conv.padding == (0, 0) and conv.groups == 1 and conv.dilation == (1, 1):
            b, c, h, w = x_bchw.shape
            if (h // s, w // s) != (self.height, self.width) or h % s or w % s:
                raise ValueError(f"{conv} maps {h}x{w}, not onto this {self.height}x{self.width} grid")
            x_nc = x_bchw.permute(0, 2, 3, 1).reshape(-1, c)
            children_n = self._children(s, x_bchw.device).reshape(-1)
            patches_nk = _GatherRows.apply(x_nc, children_n).view(-1, s * s * c)
            # Kernel (O, C, s, s) in the patches' (dy, dx, c) order.
            weight_ok = conv.weight.permute(0, 2, 3, 1).reshape(conv.out_channels, -1)
            return F.linear(patches_nk, weight_ok, conv.bias)
        y_bchw = F.conv2d(x_bchw, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
        if y_bchw.shape[-2:] != (self.height, self.width):
            raise ValueError(f"{conv} output {tuple(y_bchw.shape[-2:])} is not this {self.height}x{self.width} grid")
        return self.gather(y_bchw)

    def _children(self, s: int, device: torch.device) -> Tensor:
        """(N, s*s) flat indices into the stride-s-finer (B, H*s, W*s) grid of each active site's
        children, in (dy, dx) order."""
        fine_w = self.width * s
        if self.rows_n is None:
            flat_n = torch.arange(self.batch * self.height * self.width, device=device)
        else:
            flat_n = self.rows_n
        bi_n, j_n = flat_n // self.width, flat_n % self.width  # bi = b * H + i
        base_n = bi_n * s * fine_w + j_n * s
        dy, dx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
        offsets = (dy * fine_w + dx).reshape(1, -1).to(device)
        return base_n.unsqueeze(1) + offsets

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
        if conv.kernel_size == conv.stride and stride > 1:
            return out_grid.conv_from_dense(self.to_dense(feat_nc), conv), out_grid
        x_bchw = self.to_dense(feat_nc)
        if _is_same_depthwise(conv):
            y_bchw = DepthwiseConv2d.apply(x_bchw, conv.weight, conv.bias)
        else:
            y_bchw = F.conv2d(x_bchw, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)
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
