"""The torch device a run asked for: ``auto``, ``cpu`` or ``cuda``."""

from __future__ import annotations

import torch


def resolve_device(name: str, index: int = 0) -> torch.device:
    """``auto`` is CUDA device ``index`` when CUDA is available, else the CPU.

    Raises RuntimeError when ``cuda`` is asked for and CUDA is not available, and ValueError for
    any other name.
    """
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda was asked for, but CUDA is not available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", index)
