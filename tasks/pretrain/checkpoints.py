"""Checkpoints and the exported encoder in a run directory (names: ``storage_schemas.run``).

A checkpoint is ``vmac_core.checkpoint.make_checkpoint``'s dict plus the sampler position and
RNG state, with the full PretrainConfig under ``extra["pretrain_config"]``. Writes are atomic
(``tasks.io.files.atomic_path``): a kill at any moment leaves the previous checkpoint intact and
at worst a hidden temporary that ``checkpoint_paths`` never lists (the next start deletes it).

Every checkpoint the run writes is named, with its sha256, in a ``checkpoint`` lineage record
of the run; a resume loads only such a checkpoint whose bytes still hash to what was recorded
(``latest_recorded_checkpoint``), never a file that appeared in ``checkpoints/`` otherwise.
"""

from __future__ import annotations

from pathlib import Path

import torch

from storage_schemas.config import PretrainConfig
from storage_schemas.layout import LINEAGE_DIR
from storage_schemas.run import CHECKPOINT_GLOB, CHECKPOINTS_DIR, ENCODER, checkpoint_name
from tasks.io import lineage
from tasks.io.files import atomic_path, file_sha256, remove_own
from tasks.io.weights import load_weights_only
from vmac_core.checkpoint import export_dense_encoder, make_checkpoint
from vmac_core.videomac import VideoMAC


def checkpoint_paths(run_dir: Path) -> list[Path]:
    """Checkpoints in step order (names sort by zero-padded step)."""
    return sorted((Path(run_dir) / CHECKPOINTS_DIR).glob(CHECKPOINT_GLOB))


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / checkpoint_name(step)


def save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temporary sibling, fsync, then rename over ``path``. Written through a
    Python file so that a full disk raises OSError (ENOSPC, "No space left on device"): torch's own
    writer reports it as a RuntimeError about positions in a zip file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        try:
            torch.save(obj, handle)
        except RuntimeError as exc:
            # torch's zip writer, closing after the failed write, raises its own error over the disk's.
            disk = exc.__context__ or exc.__cause__
            if isinstance(disk, OSError):
                raise disk from None
            raise


def load_checkpoint(path: Path) -> dict:
    """A checkpoint or encoder export, on the CPU (weights-only unpickling; ``WeightsFileError``
    for a file that holds anything else)."""
    return load_weights_only(path)


def recorded_checkpoints(run_dir: Path) -> dict[str, str]:
    """File name → sha256 of every checkpoint the run's pretrain lineage records name."""
    folder = Path(run_dir) / LINEAGE_DIR
    records = lineage.read_records(str(folder)) if folder.is_dir() else []
    return {Path(d.uri).name: d.sha256 for r in records if r.kind == "pretrain"
            for d in r.outputs if d.kind == "checkpoint" and d.sha256}


def latest_recorded_checkpoint(run_dir: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint in ``run_dir`` that its lineage names and whose bytes hash to the
    recorded sha256, and a line for each newer file passed over (unknown, or changed since)."""
    recorded = recorded_checkpoints(run_dir)
    passed_over = []
    for path in reversed(checkpoint_paths(run_dir)):
        if path.name not in recorded:
            passed_over.append(f"not loading {path}: no lineage record of this run names it")
        elif file_sha256(str(path)) != recorded[path.name]:
            passed_over.append(f"not loading {path}: its bytes changed since the run recorded it")
        else:
            return path, passed_over
    return None, passed_over


def checkpoint_step(path: Path) -> int:
    """The step in a checkpoint's name (``ckpt-000100.pt`` -> 100)."""
    return int(Path(path).stem.rpartition("-")[2])


def save_checkpoint(run_dir: Path, config: PretrainConfig, model: VideoMAC, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, sampler_state: dict, step: int) -> Path:
    """Write ``checkpoints/ckpt-<step>.pt`` (``prune_checkpoints`` removes old ones once it is recorded)."""
    path = checkpoint_path(run_dir, step)
    ckpt = make_checkpoint(
        config.model, model.state_dict(), step=step, optimizer_state=optimizer.state_dict(),
        scaler_state=scaler.state_dict() if scaler.is_enabled() else None, sampler_state=sampler_state,
        rng_state={"torch": torch.get_rng_state()}, extra={"pretrain_config": config.model_dump(mode="json")},
    )
    save_atomic(ckpt, path)
    return path


def prune_checkpoints(run_dir: Path, keep: int, keep_steps: frozenset[int] = frozenset()) -> None:
    """Delete all but the last ``keep`` checkpoints the run recorded, sparing those at
    ``keep_steps`` (milestones); a file it did not record is neither counted nor deleted
    (``vmac audit`` reports it), nor is a link or another user's file (``remove_own``)."""
    recorded = recorded_checkpoints(run_dir)
    for old in [p for p in checkpoint_paths(run_dir) if p.name in recorded][:-keep]:
        if checkpoint_step(old) not in keep_steps:
            remove_own(old)


def save_encoder(run_dir: Path, config: PretrainConfig, model: VideoMAC, step: int) -> Path:
    """``encoder.pt``: {"config": ModelConfig dict, "encoder": name, "state_dict": dense online
    encoder weights, "step"}; loads with strict=True into ``build_encoder(encoder)``."""
    path = Path(run_dir) / ENCODER
    save_atomic({"config": config.model.to_dict(), "encoder": config.model.encoder,
                 "state_dict": export_dense_encoder(model), "step": step}, path)
    return path
