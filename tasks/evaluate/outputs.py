"""Names and places of what the evaluate stage writes under OUT (docs/evaluate.md, "Outputs").

Encoder, sequence and frame names become file and folder names (``benchmark-<name>.json``,
``overlays/<name>/<seq>.png``, ``masks/<name>/<seq>/00000.png``), so they keep to
``[A-Za-z0-9._-]`` and do not start with a dot, and every path stays inside OUT
(``tasks.io.names``: a store from elsewhere is not trusted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage_schemas import benchmark as bm
from tasks.io.names import inside


@dataclass
class VideoOutputs:
    """Where one video's pictures go (None: not written)."""

    overlay: Path | None = None
    masks_dir: Path | None = None


def video_outputs(out: str, encoder_name: str, sequence: str, save_masks: bool) -> VideoOutputs:
    """``OUT/overlays/<encoder>/<seq>.png``, and with ``save_masks`` ``OUT/masks/<encoder>/<seq>/``."""
    return VideoOutputs(
        overlay=inside(out, bm.OVERLAYS_DIR, encoder_name, f"{sequence}.png"),
        masks_dir=inside(out, bm.MASKS_DIR, encoder_name, sequence) if save_masks else None,
    )


def report_path(out: str, encoder_name: str) -> Path:
    """``OUT/benchmark-<encoder>.json``."""
    return inside(out, bm.benchmark_filename(encoder_name))
