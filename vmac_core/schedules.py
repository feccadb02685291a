"""Pure schedule functions of the global step: learning rate and EMA momentum.

Both are indexed by the global optimisation step (0-based). The official VideoMAC code indexes the
EMA schedule by the step within each epoch, which restarts the cosine every epoch; vmac uses the
global step, which is what the paper's formula describes (docs/architecture.md).
"""

from __future__ import annotations

import math


def scaled_lr(base_lr: float, batch_size: int, reference_batch: int = 256) -> float:
    """Linear scaling rule of MAE/VideoMAC: lr = base_lr * batch_size / 256."""
    return base_lr * batch_size / reference_batch


def lr_at(step: int, total_steps: int, warmup_steps: int, base_lr: float, min_lr: float = 0.0) -> float:
    """Learning rate at a global step: linear warm-up from 0, then half-cosine to min_lr.

    step in [0, total_steps); warm-up covers steps [0, warmup_steps). Past total_steps it stays
    at min_lr.
    """
    if total_steps <= 0:
        raise ValueError("total_steps must be positive")
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_momentum_at(step: int, total_steps: int, base: float = 0.996) -> float:
    """EMA momentum at a global step: cosine from `base` at step 0 to 1 at step total_steps.

    m(step) = 1 - (1 - base) * (cos(pi * step / total_steps) + 1) / 2   (BYOL / VideoMAC).
    """
    if total_steps <= 0:
        raise ValueError("total_steps must be positive")
    progress = min(max(step / total_steps, 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0
