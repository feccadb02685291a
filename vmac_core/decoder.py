"""VideoMAC / FCMAE decoder: 1x1 projection, mask tokens, ConvNeXt V2 block(s), 1x1 pixel head.

It runs densely on the stride-32 grid, where one site is one 32-px patch: visible sites carry the
projected encoder features and masked sites the learned mask token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vmac_core.encoders.convnext import ConvNeXtBlock
from vmac_core.sparse.masked_dense import MaskedDenseGrid


class Decoder(nn.Module):
    """forward(feat_bchw, mask_bl) -> pred_blk (B, L, patch*patch*out_channels).

    feat_bchw: stride-32 encoder features (B, C_in, h, w) with L = h * w patches.
    mask_bl: bool (B, L), True = masked; those sites get the mask token.
    pred_blk is in patchify order (see vmac_core.masking.patchify).
    """

    def __init__(self, in_channels: int, decoder_dim: int = 512, depth: int = 1, patch_size: int = 32, out_channels: int = 3):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, decoder_dim, kernel_size=1)
        self.mask_token = nn.Parameter(torch.zeros(1, decoder_dim, 1, 1))
        self.blocks = nn.ModuleList(ConvNeXtBlock(decoder_dim) for _ in range(depth))
        self.pred = nn.Conv2d(decoder_dim, patch_size * patch_size * out_channels, kernel_size=1)
        # ConvNeXt-style init; the official code draws 1x1 conv weights with std 1, which makes
        # the first predictions ~sqrt(decoder_dim) times too large for no benefit.
        for conv in (self.proj, self.pred):
            nn.init.trunc_normal_(conv.weight, std=0.02)
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, feat_bchw: Tensor, mask_bl: Tensor) -> Tensor:
        b, c, h, w = feat_bchw.shape
        if mask_bl.shape != (b, h * w):
            raise ValueError(f"mask {tuple(mask_bl.shape)} does not match the {h}x{w} stride-32 grid")
        grid = MaskedDenseGrid(b, h, w, None)
        # Rows form (B*h*w, C): 1x1 convolutions are matmuls on rows.
        x_nc = F.linear(grid.gather(feat_bchw), self.proj.weight.flatten(1), self.proj.bias)
        x_nc = torch.where(mask_bl.reshape(-1, 1), self.mask_token.view(1, -1), x_nc)
        for block in self.blocks:
            x_nc = block(x_nc, grid)
        pred_nk = F.linear(x_nc, self.pred.weight.flatten(1), self.pred.bias)
        return pred_nk.view(b, h * w, -1)
