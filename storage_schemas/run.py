"""The pre-training run directory, as constants: the pretrain stage writes it; the pipeline, the
audit and the evaluation read it.

```
<run>/
  config.json                  the resolved PretrainConfig
  checkpoints/ckpt-000100.pt   full checkpoints (vmac_core.checkpoint), the last keep_checkpoints and the milestones kept
  metrics.jsonl                one JSON object per optimiser step
  loss_curve.png               losses and schedules so far
  previews/step-000100.png     frame 1 | frame 2 | mask | online recon | target recon
  encoder.pt                   the online encoder as a dense state_dict, with its ModelConfig
  tensorboard/events.out.*     the metrics.jsonl scalars and the previews, for `tensorboard --logdir RUN`
  lineage/*.json               append-only lineage records (storage_schemas.layout.LINEAGE_DIR)
```
"""

from __future__ import annotations

import re

CONFIG = "config.json"
CHECKPOINTS_DIR = "checkpoints"
# Matches checkpoints only: an interrupted atomic write leaves a hidden ``.ckpt-…`` temporary.
CHECKPOINT_GLOB = "ckpt-*.pt"
METRICS = "metrics.jsonl"
LOSS_CURVE = "loss_curve.png"
PREVIEWS_DIR = "previews"
ENCODER = "encoder.pt"
TENSORBOARD_DIR = "tensorboard"
# The names pre-training writes atomically (their temporaries are the only ones a start deletes).
CHECKPOINT_NAMES = re.compile(r"ckpt-\d{6}\.pt")
RUN_FILE_NAMES = re.compile("|".join(re.escape(name) for name in (CONFIG, METRICS, LOSS_CURVE, ENCODER)))


def checkpoint_name(step: int) -> str:
    """``ckpt-000100.pt``: zero-padded, so names sort in step order."""
    return f"ckpt-{step:06d}.pt"


def preview_name(step: int) -> str:
    return f"step-{step:06d}.png"
