"""Checkpoints and the exported encoder in a run directory (names: ``storage_schemas.run``).

A checkpoint is ``vmac_core.checkpoint.make_checkpoint``'s dict plus the sampler position and
RNG state, with the full PretrainConfig under ``extra["pretrain_config"]``. Writes are atomic
(``tasks.io.files.atomic_path``): a kill at any moment leaves the previous checkpoint intact and
at worst a hidden temporary that ``checkpoint_paths`` never lists.
"""

from __future__ import annotations

from pathlib import Path

import torch

from storage_schemas.config import PretrainConfig
from storage_schemas.run import CHECKPOINT_GLOB, CHECKPOINTS_DIR, ENCODER, checkpoint_name
from tasks.io.files import atomic_path
from vmac_core.checkpoint import export_dense_encoder, make_checkpoint
from vmac_core.videomac import VideoMAC


def checkpoint_paths(run_dir: Path) -> list[Path]:
    """Checkpoints in step order (names sort by zero-padded step)."""
    return sorted((Path(run_dir) / CHECKPOINTS_DIR).glob(CHECKPOINT_GLOB))


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / checkpoint_name(step)


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temporary sibling, fsync, then rename over ``path``."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint or encoder export, on the CPU (weights-only unpickling)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def checkpoint_step(path: Path) -> int:
    """The step in a checkpoint's name (``ckpt-000100.pt`` -> 100)."""
    return int(Path(path).stem.rpartition("-")[2])


def save_checkpoint(run_dir: Path, config: PretrainConfig, model: VideoMAC, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, sampler_state: dict, step: int,
                    keep_steps: frozenset[int] = frozenset()) -> Path:
    """Write ``checkpoints/ckpt-<step>.pt``, then delete all but the last ``keep_checkpoints``,
    sparing those at ``keep_steps`` (milestones)."""
    path = checkpoint_path(run_dir, step)
    ckpt = make_checkpoint(
        config.model, model.state_dict(), step=step, optimizer_state=optimizer.state_dict(),
        scaler_state=scaler.state_dict() if scaler.is_enabled() else None, sampler_state=sampler_state,
        rng_state={"torch": torch.get_rng_state()}, extra={"pretrain_config": config.model_dump(mode="json")},
    )
    save_atomic(ckpt, path)
    for old in checkpoint_paths(run_dir)[: -config.run.keep_checkpoints]:
        if checkpoint_step(old) not in keep_steps:
            old.unlink()
    return path


def save_encoder(run_dir: Path, config: PretrainConfig, model: VideoMAC, step: int) -> Path:
    """``encoder.pt``: {"config": ModelConfig dict, "encoder": name, "state_dict": dense online
    encoder weights, "step"}; loads with strict=True into ``build_encoder(encoder)``."""
    path = Path(run_dir) / ENCODER
    save_atomic({"config": config.model.to_dict(), "encoder": config.model.encoder,
                 "state_dict": export_dense_encoder(model), "step": step}, path)
    return path
