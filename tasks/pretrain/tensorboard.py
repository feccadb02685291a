"""TensorBoard event files in the run directory (``<run>/tensorboard/``), written by rank 0: every
numeric value of each ``metrics.jsonl`` row as a scalar of the same name, and each preview grid
as the image ``previews``. ``tensorboard --logdir RUN`` shows them.

On when ``run.tensorboard`` is true (the default) and the ``tensorboard`` extra is installed; off
silently otherwise, so a plain install trains as before. A resumed run purges the events after
its checkpoint's step, as ``metrics.jsonl`` drops those rows: the replayed steps are not doubled.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from storage_schemas.config import PretrainConfig
from storage_schemas.run import TENSORBOARD_DIR
from tasks.io.files import make_folder

PREVIEW_TAG = "previews"
NOT_SCALARS = ("step",)  # the x axis, not a curve


def tensorboard_installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def scalars_of(row: dict) -> dict[str, float]:
    """The scalars of a metrics row, by tag: its numeric values but the step (bools are not curves)."""
    return {k: float(v) for k, v in row.items()
            if k not in NOT_SCALARS and isinstance(v, (int, float)) and not isinstance(v, bool)}


class TensorBoardLog:
    """A SummaryWriter on ``<run>/tensorboard``; ``open_tensorboard`` decides whether there is one."""

    def __init__(self, run_dir: Path, resumed_at: int):
        # Deferred: importing TensorBoard takes seconds, and only rank 0 with the extra needs it.
        from torch.utils.tensorboard import SummaryWriter

        # Events after the step the run restarts from are dropped, as metrics.jsonl drops those rows.
        # The folder is made here, as a real folder of the user's: SummaryWriter's own makedirs would
        # follow a link another user planted in a shared run folder (its event file names are predictable).
        self.writer = SummaryWriter(str(make_folder(run_dir / TENSORBOARD_DIR)), purge_step=resumed_at + 1)

    def scalars(self, row: dict) -> None:
        for tag, value in scalars_of(row).items():
            self.writer.add_scalar(tag, value, row["step"])

    def image(self, png: Path, step: int) -> None:
        """The preview grid written at ``png``, as the image ``previews`` at ``step``."""
        with Image.open(png) as picture:
            self.writer.add_image(PREVIEW_TAG, np.asarray(picture.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


def open_tensorboard(config: PretrainConfig, run_dir: Path, resumed_at: int) -> TensorBoardLog | None:
    """The run's TensorBoard log, or None when ``run.tensorboard`` is off or the extra is missing."""
    if not config.run.tensorboard or not tensorboard_installed():
        return None
    return TensorBoardLog(run_dir, resumed_at)
