"""Mask strategies: where a pair's masked patches fall (``ModelConfig.mask_strategy``).

A strategy is a small ``nn.Module`` that VideoMAC owns (``VideoMAC.masking``). Given the batch
and a generator, ``draw`` returns the masks of frame 1 (online branch) and frame 2 (target
branch): bool (B, L), True = masked, row-major over the patch grid, and exactly
``L - num_visible_patches(L, mask_ratio)`` masked cells in every sample and frame, whatever the
strategy. All randomness comes from the generator, which the trainer seeds by (seed, step,
micro-batch, rank): a resumed run draws the masks the uninterrupted run drew.

- ``symmetric`` (VideoMAC, Sec. 3.2): one uniform random mask shared by both frames; bit for bit
  ``masking.random_patch_mask``.
- ``independent`` (the paper's masking ablation): a uniform random mask per frame, frame 1's drawn
  first. The two branches then predict different patches; VideoMAC's consistency term compares
  them on the patches masked in both (``videomac.VideoMAC.forward``).
- ``motion`` (after MGM, "Motion-Guided Masking for Spatiotemporal Representation Learning"):
  patches are drawn without replacement with weights exp(m / T), m the patch's motion over the
  sample's largest (0..1), T = ``motion_temperature``; shared by both frames. It reads the
  batch's ``motion_bl`` (float (B, L) >= 0, the stored motion map cropped like the frames); a
  sample without motion is masked uniformly.
- ``adaptive`` (after AdaMAE, Bandara et al., CVPR 2023): a small sampling network scores every
  patch cell from both frames; the mask is drawn from its categorical distribution without
  replacement and shared by both frames. ``policy_loss`` trains the network with REINFORCE, the
  reward being each masked patch's reconstruction error (minus the sample's mean, a baseline):
  it learns to mask what the model reconstructs worst.

Sampling k of L cells without replacement with probabilities p is the Gumbel top-k trick: the k
largest log p + Gumbel noise (Kool et al., 2019). As in AdaMAE, the policy's log-probability
of a mask is taken as the sum of its cells' log p (the exact probability of a set drawn without
replacement has no simple form).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vmac_core.masking import num_visible_patches, random_patch_mask
from vmac_core.model_config import ModelConfig

MOTION_KEY = "motion_bl"  # the batch entry the motion strategy reads: float (B, L), >= 0


@dataclass(frozen=True)
class MaskDraw:
    """What a strategy drew for one micro-batch.

    mask1_bl / mask2_bl: bool (B, L), True = masked, for frame 1 (online) and frame 2 (target);
    the same tensor when the strategy shares one mask. log_prob_bl: ``adaptive`` only, float
    (B, L), the sampling network's log-probability of each cell (with gradient), else None.
    """

    mask1_bl: Tensor
    mask2_bl: Tensor
    log_prob_bl: Tensor | None = None


def masked_count(num_patches: int, ratio: float) -> int:
    """Masked cells per sample: L - num_visible_patches(L, ratio); 0 at ratio 0."""
    return num_patches - num_visible_patches(num_patches, ratio) if ratio > 0 else 0


def gumbel_top_k_mask(log_weight_bl: Tensor, count: int, generator: torch.Generator | None) -> Tensor:
    """Bool (B, L): ``count`` cells per row drawn without replacement with probabilities
    softmax(log_weight_bl), True = drawn. The noise comes from ``generator`` (on its device)."""
    batch, num_patches = log_weight_bl.shape
    noise_device = generator.device if generator is not None else log_weight_bl.device
    uniform_bl = torch.rand(batch, num_patches, generator=generator, device=noise_device)
    # Gumbel(0, 1) = -log(-log U); U is clamped away from 0 so the noise stays finite.
    gumbel_bl = -torch.log(-torch.log(uniform_bl.clamp_min(1e-20)))
    keys_bl = log_weight_bl.detach().to(noise_device).float() + gumbel_bl
    mask_bl = torch.zeros(batch, num_patches, dtype=torch.bool, device=noise_device)
    if count:
        mask_bl.scatter_(1, keys_bl.topk(count, dim=1).indices, True)
    return mask_bl.to(log_weight_bl.device)


class MaskStrategy(nn.Module):
    """Base: ``draw(batch, generator) -> MaskDraw``; ``policy_loss`` is None unless it learns.

    ``side_inputs``: batch keys besides the frames that ``draw`` reads (the loader provides them).
    """

    name = ""
    side_inputs: tuple[str, ...] = ()

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.grid = cfg.grid_size
        self.ratio = cfg.mask_ratio

    def draw(self, batch: Mapping[str, Tensor], generator: torch.Generator | None) -> MaskDraw:
        raise NotImplementedError

    def policy_loss(self, draw: MaskDraw, error_bl: Tensor) -> Tensor | None:
        """The strategy's own training loss given each patch's reconstruction error; None when
        it has nothing to learn."""
        return None

    def _batch_size(self, batch: Mapping[str, Tensor]) -> int:
        return batch["frame1_bchw"].shape[0]

    def _device(self, batch: Mapping[str, Tensor]) -> torch.device:
        return batch["frame1_bchw"].device


class SymmetricMask(MaskStrategy):
    """One uniform random mask per pair, shared by both frames (VideoMAC's default)."""

    name = "symmetric"

    def draw(self, batch, generator):
        mask_bl = random_patch_mask(self._batch_size(batch), self.grid, self.grid, self.ratio, generator)
        mask_bl = mask_bl.to(self._device(batch))
        return MaskDraw(mask_bl, mask_bl)


class IndependentMask(MaskStrategy):
    """A uniform random mask per frame: frame 1's, then frame 2's, from the same generator."""

    name = "independent"

    def draw(self, batch, generator):
        size, device = self._batch_size(batch), self._device(batch)
        mask1_bl = random_patch_mask(size, self.grid, self.grid, self.ratio, generator).to(device)
        mask2_bl = random_patch_mask(size, self.grid, self.grid, self.ratio, generator).to(device)
        return MaskDraw(mask1_bl, mask2_bl)


class MotionMask(MaskStrategy):
    """Patches drawn with weights exp(motion / max motion / T), shared by both frames."""

    name = "motion"
    side_inputs = (MOTION_KEY,)

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.temperature = cfg.motion_temperature

    def log_weights(self, motion_bl: Tensor) -> Tensor:
        """(B, L) log-weights m / max(m) / T; all zero (uniform) where a sample has no motion."""
        motion_bl = motion_bl.float().clamp_min(0)
        peak_b1 = motion_bl.amax(dim=1, keepdim=True)
        return torch.where(peak_b1 > 0, motion_bl / peak_b1.clamp_min(1e-12), 0.0) / self.temperature

    def draw(self, batch, generator):
        if MOTION_KEY not in batch:
            raise KeyError(f"mask_strategy=motion needs the batch's {MOTION_KEY!r} (a store ingested with --motion)")
        motion_bl = batch[MOTION_KEY]
        if motion_bl.shape != (self._batch_size(batch), self.grid * self.grid):
            raise ValueError(f"{MOTION_KEY} has shape {tuple(motion_bl.shape)}, expected "
                             f"({self._batch_size(batch)}, {self.grid * self.grid})")
        count = masked_count(self.grid * self.grid, self.ratio)
        mask_bl = gumbel_top_k_mask(self.log_weights(motion_bl.cpu()), count, generator).to(self._device(batch))
        return MaskDraw(mask_bl, mask_bl)


class PatchSampler(nn.Module):
    """AdaMAE's sampling network, ConvNet-sized: both frames (6 channels) → one score per patch.

    conv 8×8/8 (6 → 16) · GELU · conv (patch/8)×(patch/8) with the same stride (16 → 32) · GELU ·
    1×1 (32 → 1, no bias): (B, 6, H, W) → scores (B, H/patch · W/patch), row-major like
    ``mask_bl``. The last layer starts at zero, so the first masks are uniform random ones.
    """

    def __init__(self, patch_size: int, in_channels: int = 3, width: int = 16):
        super().__init__()
        inner = patch_size // 8
        self.net = nn.Sequential(
            nn.Conv2d(2 * in_channels, width, kernel_size=8, stride=8),
            nn.GELU(),
            nn.Conv2d(width, 2 * width, kernel_size=inner, stride=inner),
            nn.GELU(),
            # No bias: a score shared by every cell cancels in the softmax (its gradient is 0).
            nn.Conv2d(2 * width, 1, kernel_size=1, bias=False),
        )
        nn.init.zeros_(self.net[-1].weight)

    def forward(self, frame1_bchw: Tensor, frame2_bchw: Tensor) -> Tensor:
        return self.net(torch.cat([frame1_bchw, frame2_bchw], dim=1)).flatten(1)


class AdaptiveMask(MaskStrategy):
    """Masks drawn from a learned categorical distribution over patch cells, shared by both frames."""

    name = "adaptive"

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.sampler = PatchSampler(cfg.patch_size, cfg.in_channels)
        self.weight = cfg.sampler_weight

    def draw(self, batch, generator):
        log_prob_bl = F.log_softmax(self.sampler(batch["frame1_bchw"], batch["frame2_bchw"]).float(), dim=1)
        mask_bl = gumbel_top_k_mask(log_prob_bl, masked_count(self.grid * self.grid, self.ratio), generator)
        return MaskDraw(mask_bl, mask_bl, log_prob_bl)

    def policy_loss(self, draw: MaskDraw, error_bl: Tensor) -> Tensor:
        """REINFORCE: -mean over samples of sum over masked cells of (error - baseline) · log p,
        over the masked count; ``error_bl`` (B, L) is detached here, so only the sampler learns."""
        mask_bl = draw.mask1_bl.to(error_bl.dtype)
        reward_bl = error_bl.detach()
        masked_b1 = mask_bl.sum(dim=1, keepdim=True).clamp_min(1.0)
        baseline_b1 = (reward_bl * mask_bl).sum(dim=1, keepdim=True) / masked_b1
        advantage_bl = (reward_bl - baseline_b1) * mask_bl
        per_sample_b = -(advantage_bl * draw.log_prob_bl).sum(dim=1) / masked_b1.squeeze(1)
        return self.weight * per_sample_b.mean()


STRATEGIES: dict[str, type[MaskStrategy]] = {
    cls.name: cls for cls in (SymmetricMask, IndependentMask, MotionMask, AdaptiveMask)
}


def build_mask_strategy(cfg: ModelConfig) -> MaskStrategy:
    """The strategy ``cfg.mask_strategy`` names (ModelConfig has checked the name)."""
    return STRATEGIES[cfg.mask_strategy](cfg)
