"""VideoMAC: an online masked ConvNet autoencoder and its EMA target on frame pairs (Pei et al., CVPR 2024).

    frame 1 --(mask 1)--> online encoder + decoder --> pred_online --.
    frame 2 --(mask 2)--> EMA target (no grad) --> pred_target -----+--> losses
    loss = L_online + L_target + gamma * L_consistency
    L_online  = MSE(pred_online, normalised patches of frame 1) on patches masked in frame 1
    L_target  = MSE(pred_target, normalised patches of frame 2) on patches masked in frame 2
    L_consistency = MSE(pred_online, pred_target) on patches masked in both frames

With crop-in-crop views (frame 2's crop inside frame 1's, ``vmac_core.augment.ViewParams``) patch
i of frame 1 is not patch i of frame 2: the online prediction is resampled into frame 2's view
before L_consistency (``vmac_core.views``).

Mask 2 is mask 1 (symmetric masking, the paper's) for every strategy but ``independent``
(``vmac_core.mask_strategies``). With independent masks the two branches predict different
patches; the consistency term then compares only the patches both had to predict (with one
shared mask that is every masked patch, as in the paper): a prediction at a patch the target
saw is a copy of its input, not a prediction to agree with.

The target branch has no gradient, so L_target only reports (it is part of `loss` as in the paper
and official code, where it carries no gradient either); the online network learns from L_online
and from L_consistency, which pulls its frame-1 prediction towards the target's frame-2 one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vmac_core.decoder import Decoder
from vmac_core.encoders import build_encoder
from vmac_core.mask_strategies import build_mask_strategy
from vmac_core.masking import (
    denormalize_patches,
    mask_to_active,
    masked_patch_mse,
    normalize_patches,
    patchify,
    unpatchify,
)
from vmac_core.model_config import ModelConfig
from vmac_core.views import align_patches, aligned_mask


@dataclass(frozen=True)
class VideoMACOutput:
    """What VideoMAC.forward returns. Losses are scalars; predictions are (B, L, patch*patch*3)
    in patchify order and, with norm_pix_loss, in per-patch normalised units. Only `loss`,
    `loss_online`, `loss_consistency` and `pred_online` carry gradient. `error_online_bl`: each
    patch's online reconstruction error (B, L), detached: the adaptive strategy's reward."""

    loss: Tensor
    loss_online: Tensor
    loss_target: Tensor
    loss_consistency: Tensor
    pred_online: Tensor
    pred_target: Tensor
    error_online_bl: Tensor


@dataclass(frozen=True)
class Reconstruction:
    """Preview images from VideoMAC.reconstruct, all (B, C, H, W) in the input's value space
    (the caller undoes its own ImageNet normalisation) except mask_b1hw (1.0 = masked pixel).

    online_bchw / target_bchw: the full predicted images (de-normalised per patch with the true
    patch statistics when norm_pix_loss); *_pasted_bchw: visible pixels from the input frame,
    masked patches from the prediction (MAE's "reconstruction + visible" panel).
    """

    mask_b1hw: Tensor
    online_bchw: Tensor
    target_bchw: Tensor
    online_pasted_bchw: Tensor
    target_pasted_bchw: Tensor


class MaskedConvAutoencoder(nn.Module):
    """One branch: sparse encoder + decoder. forward(frames_bchw, mask_bl) -> pred_blk."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.patch_size = cfg.patch_size
        self.encoder = build_encoder(cfg.encoder, backend=cfg.backend, drop_path_rate=cfg.drop_path_rate, in_channels=cfg.in_channels)
        self.decoder = Decoder(self.encoder.out_channels[32], cfg.decoder_dim, cfg.decoder_depth, cfg.patch_size, cfg.in_channels)

    def forward(self, frames_bchw: Tensor, mask_bl: Tensor) -> Tensor:
        _, _, h, w = frames_bchw.shape
        grid_h, grid_w = h // self.patch_size, w // self.patch_size
        # Without masked patches the encoder takes its dense path (identical result, no gathers):
        # this is the honest ratio-0 baseline.
        active_b1hw = mask_to_active(mask_bl, grid_h, grid_w) if bool(mask_bl.any()) else None
        feat_bchw = self.encoder(frames_bchw, active_b1hw, strides=(32,))[32]
        return self.decoder(feat_bchw, mask_bl)


class VideoMAC(nn.Module):
    """Online network + EMA target. The target never receives gradients and stays in eval mode.

    ``masking`` is the config's mask strategy (``vmac_core.mask_strategies``); the caller draws
    the masks with it and passes them to ``forward``. Only ``adaptive`` has parameters (its
    sampling network): they are in ``state_dict`` and ``param_groups``, never in the EMA target.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.masking = build_mask_strategy(cfg)
        self.online = MaskedConvAutoencoder(cfg)
        # The target never drops paths: it provides the regression signal.
        self.target = MaskedConvAutoencoder(dataclasses.replace(cfg, drop_path_rate=0.0))
        self.target.load_state_dict(self.online.state_dict())
        self.target.requires_grad_(False)
        self.target.eval()

    def train(self, mode: bool = True) -> "VideoMAC":
        super().train(mode)
        self.target.eval()
        return self

    def targets(self, frames_bchw: Tensor) -> Tensor:
        """Regression targets (B, L, p*p*C): patchified pixels, per-patch normalised if norm_pix_loss."""
        patches_blk = patchify(frames_bchw, self.cfg.patch_size)
        return normalize_patches(patches_blk) if self.cfg.norm_pix_loss else patches_blk

    def forward(self, frame1_bchw: Tensor, frame2_bchw: Tensor, mask_bl: Tensor,
                mask2_bl: Tensor | None = None, view2_box_b4: Tensor | None = None) -> VideoMACOutput:
        """frame1/frame2: (B, C, H, W) with H, W = input_size; mask_bl: bool (B, L), True = masked,
        frame 1's mask and, when mask2_bl is None, frame 2's too (symmetric masking).
        view2_box_b4: crop-in-crop pairs only, float (B, 4), where frame 2's view lies in frame 1's
        (``vmac_core.views``): the consistency term then compares the target's prediction with
        the online one resampled into frame 2's view, on the patches masked in both.
        Returns a VideoMACOutput."""
        mask2_bl = mask_bl if mask2_bl is None else mask2_bl
        pred_online = self.online(frame1_bchw, mask_bl)
        with torch.no_grad():
            pred_target = self.target(frame2_bchw, mask2_bl)
        target1_blk = self.targets(frame1_bchw)
        with torch.no_grad():
            error_online_bl = (pred_online - target1_blk).square().mean(dim=-1)
        loss_online = masked_patch_mse(pred_online, target1_blk, mask_bl)
        loss_target = masked_patch_mse(pred_target, self.targets(frame2_bchw), mask2_bl)
        if view2_box_b4 is None:
            online_blk = pred_online
            both_bl = mask_bl if mask2_bl is mask_bl else mask_bl & mask2_bl
        else:
            p = self.cfg.patch_size
            online_blk = align_patches(pred_online, view2_box_b4, p, self.cfg.norm_pix_loss, self.cfg.in_channels)
            both_bl = mask2_bl & aligned_mask(mask_bl, view2_box_b4, p)
        loss_consistency = masked_patch_mse(online_blk, pred_target, both_bl)
        loss = loss_online + loss_target + self.cfg.consistency_weight * loss_consistency
        return VideoMACOutput(loss, loss_online, loss_target, loss_consistency, pred_online, pred_target,
                              error_online_bl)

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA: target <- momentum * target + (1 - momentum) * online, parameter by parameter."""
        target = list(self.target.parameters())
        online = [p.detach() for p in self.online.parameters()]
        # t + (1 - m) * (o - t) == m * t + (1 - m) * o, in one pass over the weights.
        torch._foreach_lerp_(target, online, 1.0 - momentum)

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups over the online network and the mask strategy's parameters (adaptive's
        sampler): decay on weights; none on biases, norms (LayerNorm, GRN gamma/beta) and the mask
        token. Target parameters are excluded (EMA only)."""
        decay, no_decay = [], []
        named = [*self.online.named_parameters(), *self.masking.named_parameters()]
        for name, param in named:
            if not param.requires_grad:
                continue
            skip = param.ndim <= 1 or name.endswith(".bias") or ".grn." in name or name.endswith("mask_token")
            (no_decay if skip else decay).append(param)
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

    @torch.no_grad()
    def reconstruct(self, frame1_bchw: Tensor, frame2_bchw: Tensor, mask_bl: Tensor,
                    mask2_bl: Tensor | None = None) -> Reconstruction:
        """Images for previews (frame 1 online, frame 2 target), see Reconstruction; frame 2 is
        masked with mask2_bl when given (mask_b1hw shows frame 1's mask)."""
        p = self.cfg.patch_size
        _, c, h, w = frame1_bchw.shape
        grid_h, grid_w = h // p, w // p
        mask2_bl = mask_bl if mask2_bl is None else mask2_bl
        images = []
        for branch, frames_bchw, branch_mask_bl in ((self.online, frame1_bchw, mask_bl),
                                                    (self.target, frame2_bchw, mask2_bl)):
            pred_blk = branch(frames_bchw, branch_mask_bl)
            if self.cfg.norm_pix_loss:
                pred_blk = denormalize_patches(pred_blk, patchify(frames_bchw, p))
            images.append(unpatchify(pred_blk, p, grid_h, grid_w, c))
        mask_b1hw = (~mask_to_active(mask_bl, grid_h, grid_w, h, w)).to(frame1_bchw.dtype)
        mask2_b1hw = (~mask_to_active(mask2_bl, grid_h, grid_w, h, w)).to(frame2_bchw.dtype)
        online_bchw, target_bchw = images
        return Reconstruction(
            mask_b1hw=mask_b1hw,
            online_bchw=online_bchw,
            target_bchw=target_bchw,
            online_pasted_bchw=torch.lerp(frame1_bchw, online_bchw, mask_b1hw),
            target_pasted_bchw=torch.lerp(frame2_bchw, target_bchw, mask2_b1hw),
        )
