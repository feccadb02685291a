"""MinkowskiEngine 0.5.4 backend: the same rows-form encoders with convolutions evaluated by ME.

Imported only when ModelConfig.backend == "minkowski". Parameters stay the dense nn.Conv2d
weights; each call reshapes them into ME's kernel layout, so both backends share one state_dict
and gradients flow to the same tensors. Everything that is not a convolution (LayerNorm, Linear,
GELU, per-sample GRN) is the shared pure-torch code on the (N, C) rows, in ME's row order.

ME conventions used here (checked by tests/core/test_minkowski.py):
- coordinates are (batch, row, col) in units of the first sparse grid (stride 4 in pixels);
- kernel offset k enumerates the first spatial axis fastest: k = col_index * K + row_index, so a
  Conv2d weight (O, I, K_row, K_col) becomes (K_col, K_row, I, O).reshape(K*K, I, O);
- odd kernels are centred, even kernels (the 2x2/2 downsamplers) span offsets [0, K): both match
  torch's conv2d with padding K // 2 and 0 respectively.
PyPI's 0.5.4 has no MinkowskiDepthwiseConvolution (a CUDA-only fork has it); the depthwise 7x7 is
evaluated like ME's MinkowskiChannelwiseConvolution, one kernel-map entry at a time.
"""

from __future__ import annotations

import collections
import collections.abc

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vmac_core.sparse.active import upsample_active


def import_minkowski():
    """Import MinkowskiEngine, first restoring `collections.Sequence`, which ME 0.5.4 imports and
    Python >= 3.10 removed. Raises ImportError with the build hint when it is not installed."""
    if not hasattr(collections, "Sequence"):
        collections.Sequence = collections.abc.Sequence
    try:
        import MinkowskiEngine as ME
        from MinkowskiEngineBackend._C import ConvolutionMode
    except ImportError as err:
        raise ImportError(
            "the 'minkowski' backend needs MinkowskiEngine 0.5.4; build it with `make minkowski` "
            "(scripts/build_minkowski.sh) or use backend='masked_dense'"
        ) from err
    # ConvolutionMode is not re-exported by ME's __init__; the functional API needs it.
    ME.ConvolutionMode = ConvolutionMode
    return ME


def _me_kernel(conv: nn.Conv2d) -> Tensor:
    """Conv2d weight (O, I/groups, K, K) -> ME layout (K*K, I, O), or (K*K, C) for depthwise."""
    k = conv.kernel_size[0]
    if conv.groups == 1:
        return conv.weight.permute(3, 2, 1, 0).reshape(k * k, conv.in_channels, conv.out_channels)
    return conv.weight.permute(3, 2, 0, 1).reshape(k * k, conv.out_channels)


class MinkowskiGrid:
    """Active sites of one feature grid held by an ME CoordinateManager; same methods as
    MaskedDenseGrid. Rows follow the coordinate map's own order."""

    def __init__(self, me, manager, key, batch: int, height: int, width: int, tensor_stride: int):
        self._me, self.manager, self.key = me, manager, key
        self.batch, self.height, self.width = batch, height, width
        self.tensor_stride = tensor_stride
        coords = manager.get_coordinates(key).long()
        self.sample_n = coords[:, 0]
        self.row_n = coords[:, 1] // tensor_stride
        self.col_n = coords[:, 2] // tensor_stride
        self._coarser: dict[int, MinkowskiGrid] = {}

    @classmethod
    def build(cls, active_b1hw: Tensor | None, batch: int, height: int, width: int) -> "MinkowskiGrid":
        me = import_minkowski()
        if active_b1hw is None:
            active_b1hw = torch.ones(batch, 1, height, width, dtype=torch.bool)  # dense use (CPU)
        active_b1hw = upsample_active(active_b1hw.bool(), height, width)
        b, _, r, c = active_b1hw.nonzero(as_tuple=True)
        coords = torch.stack([b, r, c], dim=1).int()
        # Coordinates live where the features do (the CUDA path is untested on these CPU machines).
        on_cuda = active_b1hw.device.type == "cuda"
        map_type = me.CoordinateMapType.CUDA if on_cuda else me.CoordinateMapType.CPU
        manager = me.CoordinateManager(D=2, coordinate_map_type=map_type)
        key, _ = manager.insert_and_map(coords, [1, 1], "")
        return cls(me, manager, key, batch, height, width, 1)

    @property
    def num_rows(self) -> int:
        return int(self.sample_n.numel())

    def coarser(self, factor: int) -> "MinkowskiGrid":
        if factor not in self._coarser:
            key = self.manager.stride(self.key, [factor, factor])
            self._coarser[factor] = MinkowskiGrid(
                self._me, self.manager, key, self.batch, self.height // factor, self.width // factor, self.tensor_stride * factor
            )
        return self._coarser[factor]

    def gather(self, x_bchw: Tensor) -> Tensor:
        return x_bchw.permute(0, 2, 3, 1)[self.sample_n, self.row_n, self.col_n]

    def conv_from_dense(self, x_bchw: Tensor, conv: nn.Conv2d) -> Tensor:
        """Rows at the active sites of a dense convolution (the stem runs before the sparse part)."""
        return self.gather(F.conv2d(x_bchw, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups))

    def to_dense(self, feat_nc: Tensor) -> Tensor:
        # Equivalent to SparseTensor.dense(shape=..., min_coordinate=0) but never crops a border
        # row that happens to be masked in every sample (docs/model.md, MinkowskiEngine).
        dense = feat_nc.new_zeros(self.batch, self.height, self.width, feat_nc.shape[1])
        dense = dense.index_put((self.sample_n, self.row_n, self.col_n), feat_nc)
        return dense.permute(0, 3, 1, 2)

    def conv(self, feat_nc: Tensor, conv: nn.Conv2d) -> tuple[Tensor, "MinkowskiGrid"]:
        me = self._me
        stride = conv.stride[0]
        k = conv.kernel_size[0]
        if conv.kernel_size[0] != conv.kernel_size[1] or conv.padding[0] != (k // 2 if k % 2 else 0):
            raise ValueError(f"{conv}: only square kernels with ME's implicit padding are supported")
        out_grid = self if stride == 1 else self.coarser(stride)
        if k == 1 and stride == 1 and conv.groups == 1:
            return F.linear(feat_nc, conv.weight.flatten(1), conv.bias), self
        kernel = _me_kernel(conv)
        if conv.groups == 1:
            generator = me.KernelGenerator(kernel_size=k, stride=stride, dilation=1, dimension=2)
            out_nc = me.MinkowskiConvolutionFunction.apply(
                feat_nc.contiguous(), kernel.contiguous(), generator, me.ConvolutionMode.DEFAULT, self.key, out_grid.key, self.manager
            )
        elif conv.groups == conv.in_channels == conv.out_channels:
            generator = me.KernelGenerator(kernel_size=k, stride=stride, dilation=1, dimension=2)
            region_type, region_offset, _ = generator.get_kernel([self.tensor_stride] * 2, False)
            kernel_map = self.manager.kernel_map(
                self.key, out_grid.key, stride, k, 1, region_type=region_type, region_offset=region_offset
            )
            out_nc = feat_nc.new_zeros(out_grid.num_rows, feat_nc.shape[1])
            for offset, in_out in kernel_map.items():
                in_out = in_out.long()
                out_nc = out_nc.index_add(0, in_out[1], feat_nc[in_out[0]] * kernel[offset])
        else:
            raise ValueError(f"{conv}: grouped convolutions other than depthwise are not supported")
        if conv.bias is not None:
            out_nc = out_nc + conv.bias
        return out_nc, out_grid

    def sum_per_sample(self, v_nc: Tensor) -> Tensor:
        return v_nc.new_zeros(self.batch, v_nc.shape[1]).index_add_(0, self.sample_n, v_nc)

    def scale_per_sample(self, feat_nc: Tensor, scale_bc: Tensor) -> Tensor:
        return feat_nc * scale_bc.index_select(0, self.sample_n)
