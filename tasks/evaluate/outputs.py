"""Names and places of what the evaluate stage writes under OUT (docs/evaluate.md, "Outputs").

Encoder and sequence names become file and folder names (``benchmark-<name>.json``,
``overlays/<name>/<seq>.png``, ``masks/<name>/<seq>/00000.png``), so they keep to
``[A-Za-z0-9._-]`` and do not start with a dot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from storage_schemas import benchmark as bm

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def clean_name(text: str, fallback: str) -> str:
    """``text`` with every run of other characters replaced by ``_`` and the ends trimmed of
    ``._-``; ``fallback`` when nothing is left."""
    return _UNSAFE.sub("_", text).strip("._-") or fallback


def is_clean_name(name: str) -> bool:
    """True when ``name`` can be a file or folder name as it is."""
    return bool(name) and not _UNSAFE.search(name) and not name.startswith(".")


@dataclass
class VideoOutputs:
    """Where one video's pictures go (None: not written)."""

    overlay: Path | None = None
    masks_dir: Path | None = None


def video_outputs(out: str, encoder_name: str, sequence: str, save_masks: bool) -> VideoOutputs:
    """``OUT/overlays/<encoder>/<seq>.png``, and with ``save_masks`` ``OUT/masks/<encoder>/<seq>/``."""
    root = Path(out)
    return VideoOutputs(
        overlay=root / bm.OVERLAYS_DIR / encoder_name / f"{sequence}.png",
        masks_dir=root / bm.MASKS_DIR / encoder_name / sequence if save_masks else None,
    )


def report_path(out: str, encoder_name: str) -> Path:
    """``OUT/benchmark-<encoder>.json``."""
    return Path(out) / bm.benchmark_filename(encoder_name)
