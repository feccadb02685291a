"""Sparse-aware ConvNeXt V2 (Woo et al., CVPR 2023) in the VideoMAC form.

Parameter names follow the official dense ConvNeXt V2 (`downsample_layers`, `stages`, `dwconv`,
`pwconv1`, `grn.gamma` (1, 1, 1, C), ...), so one state_dict serves dense feature extraction and
both sparse backends. As in the official VideoMAC sparse encoder, a LayerNorm `norm{i}` follows
every stage on the running path; it replaces the classification model's final norm and head.

Each block works on the (N, C) rows of visible sites (see vmac_core.sparse): only the depthwise
7x7 convolution needs the grid, while LayerNorm, the two pointwise layers, GELU and GRN -- most of
a block's work -- run on visible rows only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vmac_core.architectures import CONVNEXTV2_VARIANTS, FEATURE_STRIDES
from vmac_core.sparse import build_grid

LN_EPS = 1e-6  # ConvNeXt's LayerNorm epsilon
GRN_EPS = 1e-6


class GRN(nn.Module):
    """Global Response Normalization on visible rows.

    Gx[b, c] = ||x[b, :, c]||_2 over the sample's *active* sites (masked sites are absent, which
    is the same as counting them as zero); Nx = Gx / (mean_c Gx + eps); y = gamma * x * Nx + beta + x.

    The norm is taken per sample, like the dense official GRN (so ratio 0 equals the dense
    network) and unlike the official sparse MinkowskiGRN, which pools the whole batch's active
    sites into one norm and so couples samples. Both vmac backends use this per-sample rule.
    """

    def __init__(self, dim: int):
        super().__init__()
        # Shapes as in the official dense GRN so its weights load unchanged.
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, feat_nc: Tensor, grid) -> Tensor:
        gx_bc = grid.sum_per_sample(feat_nc.square()).sqrt()
        nx_bc = gx_bc / (gx_bc.mean(dim=-1, keepdim=True) + GRN_EPS)
        # gamma * (x * Nx) + x == x * (gamma * Nx + 1): one full-size multiply instead of two.
        scale_bc = self.gamma.view(1, -1) * nx_bc + 1.0
        return grid.scale_per_sample(feat_nc, scale_bc) + self.beta.view(-1)


def drop_path_rows(feat_nc: Tensor, grid, rate: float, training: bool) -> Tensor:
    """Stochastic depth on rows: drop a sample's whole residual branch with probability `rate`."""
    if rate == 0.0 or not training:
        return feat_nc
    keep = 1.0 - rate
    keep_b1 = feat_nc.new_empty(grid.batch, 1).bernoulli_(keep).div_(keep)
    return grid.scale_per_sample(feat_nc, keep_b1)


class ConvNeXtBlock(nn.Module):
    """ConvNeXt V2 block: dwconv 7x7 -> LN -> Linear(C, 4C) -> GELU -> GRN -> Linear(4C, C), residual.

    forward(feat_nc, grid) -> (N, C) rows on the same grid.
    """

    def __init__(self, dim: int, drop_path: float = 0.0):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = GRN(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.drop_path = drop_path

    def forward(self, feat_nc: Tensor, grid) -> Tensor:
        y_nc, _ = grid.conv(feat_nc, self.dwconv)
        y_nc = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y_nc))), grid))
        return feat_nc + drop_path_rows(y_nc, grid, self.drop_path, self.training)


class ConvNeXtV2Encoder(nn.Module):
    """ConvNeXt V2 feature pyramid, dense or sparse with one module and one state_dict.

    forward(x_bchw, active_b1hw=None, strides=(4, 8, 16, 32)) -> {stride: (B, C_s, H/s, W/s)}
      x_bchw: images, H and W multiples of 32.
      active_b1hw: bool, True = visible, at the stride-4 grid or any coarser grid dividing it
        (the 32-px patch grid (B, 1, H/32, W/32) is typical); None = dense (every site active).
      Returned maps are zero at masked sites and use channels_last memory format.
    """

    def __init__(self, depths, dims, in_channels: int = 3, drop_path_rate: float = 0.0, backend: str = "masked_dense"):
        super().__init__()
        self.backend = backend
        self.dims = tuple(dims)
        self.out_channels = dict(zip(FEATURE_STRIDES, self.dims))
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(in_channels, dims[0], kernel_size=4, stride=4), nn.LayerNorm(dims[0], eps=LN_EPS))]
        )
        for i in range(3):
            self.downsample_layers.append(
                nn.Sequential(nn.LayerNorm(dims[i], eps=LN_EPS), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
            )
        # Stochastic depth rising linearly over the blocks (torch.linspace's values, in plain Python so
        # that the encoder also builds on the meta device, for its parameter shapes alone).
        total = sum(depths)
        rates = [drop_path_rate * j / max(total - 1, 1) for j in range(total)]
        self.stages = nn.ModuleList()
        start = 0
        for depth, dim in zip(depths, dims):
            self.stages.append(nn.ModuleList(ConvNeXtBlock(dim, rates[start + j]) for j in range(depth)))
            start += depth
        for i, dim in enumerate(dims):
            self.add_module(f"norm{i}", nn.LayerNorm(dim, eps=LN_EPS))
        self.apply(_init_weights)

    def forward(self, x_bchw: Tensor, active_b1hw: Tensor | None = None, strides=FEATURE_STRIDES) -> dict[int, Tensor]:
        b, _, h, w = x_bchw.shape
        if h % 32 or w % 32:
            raise ValueError(f"input {h}x{w} is not a multiple of 32")
        stem_conv, stem_norm = self.downsample_layers[0]
        grid = build_grid(self.backend, active_b1hw, b, h // 4, w // 4)
        # The 4x4/4 stem sees non-overlapping pixel blocks and the mask is constant on each, so
        # embedding only the visible blocks equals masking the image first.
        feat_nc = stem_norm(grid.conv_from_dense(x_bchw.contiguous(memory_format=torch.channels_last), stem_conv))
        features = {}
        for i, stride in enumerate(FEATURE_STRIDES):
            if i > 0:
                norm, conv = self.downsample_layers[i]
                feat_nc, grid = grid.conv(norm(feat_nc), conv)
            for block in self.stages[i]:
                feat_nc = block(feat_nc, grid)
            feat_nc = getattr(self, f"norm{i}")(feat_nc)
            if stride in strides:
                features[stride] = grid.to_dense(feat_nc)
            if stride >= max(strides):
                break  # deeper stages are not asked for (evaluation reads stride 8 only)
        return features


def _init_weights(module: nn.Module) -> None:
    # Official ConvNeXt V2 init: truncated normal (std .02) for conv/linear weights, zero biases.
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_convnextv2(name: str, backend: str = "masked_dense", drop_path_rate: float = 0.0, in_channels: int = 3) -> ConvNeXtV2Encoder:
    depths, dims = CONVNEXTV2_VARIANTS[name]
    return ConvNeXtV2Encoder(depths, dims, in_channels=in_channels, drop_path_rate=drop_path_rate, backend=backend)


def classification_param_count(encoder: ConvNeXtV2Encoder, num_classes: int = 1000) -> int:
    """Parameters of the published ConvNeXt V2 *classification* model of this size.

    = encoder parameters - VideoMAC's four stage norms (norm0..norm3)
      + the classifier's final LayerNorm (2 * C4) + Linear head (C4 * num_classes + num_classes).
    The paper's 3.7M (atto) and 28.6M (tiny) are this number.
    """
    total = sum(p.numel() for p in encoder.parameters())
    stage_norms = sum(2 * d for d in encoder.dims)
    last = encoder.dims[-1]
    return total - stage_norms + 2 * last + last * num_classes + num_classes
