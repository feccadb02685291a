"""Sparse-aware ResNet-18/50 in the official VideoMAC variant.

Differences from torchvision's ResNet (as in VideoMAC's `resnetv2_sparse.py`): a 4x4/4 patchify
stem (Conv2d with bias + LayerNorm) instead of 7x7/2 conv + max-pool, LayerNorm (per site,
eps 1e-6) instead of BatchNorm, GELU instead of ReLU, bias-free convolutions in the blocks, stride
on the 3x3 convolution (v1.5), and no classifier. Stages are at strides 4, 8, 16, 32.

All convolutions go through the site grid (sparse semantics). 1x1 stride-1 convolutions (the
bottleneck's conv1/conv3) are matmuls on visible rows only; 3x3 convolutions are evaluated
masked-dense, so for ResNets masking saves less than for ConvNeXt (docs/model.md has numbers).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vmac_core.architectures import FEATURE_STRIDES, RESNET_VARIANTS
from vmac_core.sparse import build_grid

LN_EPS = 1e-6

class _Shortcut(nn.Module):
    """1x1 (strided) conv + LayerNorm on the residual path when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)
        self.norm = nn.LayerNorm(out_channels, eps=LN_EPS)

    def forward(self, feat_nc: Tensor, grid) -> Tensor:
        out_nc, _ = grid.conv(feat_nc, self.conv)
        return self.norm(out_nc)


class BasicBlock(nn.Module):
    """conv3x3(stride) -> LN -> GELU -> conv3x3 -> LN, + shortcut, GELU.

    forward(feat_nc, grid) -> (rows, output grid).
    """

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.LayerNorm(channels, eps=LN_EPS)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.norm2 = nn.LayerNorm(channels, eps=LN_EPS)
        self.act = nn.GELU()
        needs_shortcut = stride != 1 or in_channels != channels * self.expansion
        self.downsample = _Shortcut(in_channels, channels * self.expansion, stride) if needs_shortcut else None

    def forward(self, feat_nc: Tensor, grid):
        out_nc, out_grid = grid.conv(feat_nc, self.conv1)
        out_nc = self.act(self.norm1(out_nc))
        out_nc, _ = out_grid.conv(out_nc, self.conv2)
        out_nc = self.norm2(out_nc)
        residual_nc = feat_nc if self.downsample is None else self.downsample(feat_nc, grid)
        return self.act(out_nc + residual_nc), out_grid


class Bottleneck(nn.Module):
    """conv1x1 -> LN -> GELU -> conv3x3(stride) -> LN -> GELU -> conv1x1 (x4) -> LN, + shortcut, GELU."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=1, bias=False)
        self.norm1 = nn.LayerNorm(channels, eps=LN_EPS)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.norm2 = nn.LayerNorm(channels, eps=LN_EPS)
        self.conv3 = nn.Conv2d(channels, channels * self.expansion, kernel_size=1, bias=False)
        self.norm3 = nn.LayerNorm(channels * self.expansion, eps=LN_EPS)
        self.act = nn.GELU()
        needs_shortcut = stride != 1 or in_channels != channels * self.expansion
        self.downsample = _Shortcut(in_channels, channels * self.expansion, stride) if needs_shortcut else None

    def forward(self, feat_nc: Tensor, grid):
        out_nc, _ = grid.conv(feat_nc, self.conv1)
        out_nc = self.act(self.norm1(out_nc))
        out_nc, out_grid = grid.conv(out_nc, self.conv2)
        out_nc = self.act(self.norm2(out_nc))
        out_nc, _ = out_grid.conv(out_nc, self.conv3)
        out_nc = self.norm3(out_nc)
        residual_nc = feat_nc if self.downsample is None else self.downsample(feat_nc, grid)
        return self.act(out_nc + residual_nc), out_grid


class ResNetEncoder(nn.Module):
    """VideoMAC ResNet feature pyramid; same forward contract as ConvNeXtV2Encoder.

    forward(x_bchw, active_b1hw=None, strides=(4, 8, 16, 32)) -> {stride: (B, C_s, H/s, W/s)}
    """

    def __init__(self, block: str, layers, in_channels: int = 3, backend: str = "masked_dense"):
        super().__init__()
        self.backend = backend
        block_cls = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        widths = (64, 128, 256, 512)
        self.dims = tuple(w * block_cls.expansion for w in widths)
        self.out_channels = dict(zip(FEATURE_STRIDES, self.dims))
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 64, kernel_size=4, stride=4), nn.LayerNorm(64, eps=LN_EPS))
        channels_in = 64
        for i, (width, count) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(count):
                blocks.append(block_cls(channels_in, width, stride if j == 0 else 1))
                channels_in = width * block_cls.expansion
            self.add_module(f"layer{i + 1}", nn.ModuleList(blocks))
        self.apply(_init_weights)

    def forward(self, x_bchw: Tensor, active_b1hw: Tensor | None = None, strides=FEATURE_STRIDES) -> dict[int, Tensor]:
        b, _, h, w = x_bchw.shape
        if h % 32 or w % 32:
            raise ValueError(f"input {h}x{w} is not a multiple of 32")
        stem_conv, stem_norm = self.stem
        grid = build_grid(self.backend, active_b1hw, b, h // 4, w // 4)
        # 4x4/4 stem on visible blocks only: equal to masking the image first (non-overlapping).
        feat_nc = stem_norm(grid.conv_from_dense(x_bchw.contiguous(memory_format=torch.channels_last), stem_conv))
        features = {}
        for i, stride in enumerate(FEATURE_STRIDES):
            for block in getattr(self, f"layer{i + 1}"):
                feat_nc, grid = block(feat_nc, grid)
            if stride in strides:
                features[stride] = grid.to_dense(feat_nc)
            if stride >= max(strides):
                break  # deeper stages are not asked for (evaluation reads stride 8 only)
        return features


def _init_weights(module: nn.Module) -> None:
    # VideoMAC's ResNet init: truncated normal (std .02) conv weights; LayerNorm stays (1, 0).
    if isinstance(module, nn.Conv2d):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_resnet(name: str, backend: str = "masked_dense", drop_path_rate: float = 0.0, in_channels: int = 3) -> ResNetEncoder:
    if drop_path_rate:
        raise ValueError("the VideoMAC ResNets have no stochastic depth; use drop_path_rate=0")
    block, layers = RESNET_VARIANTS[name]
    return ResNetEncoder(block, layers, in_channels=in_channels, backend=backend)
