"""The knobs of CRW label propagation, torch-free so that configs (storage_schemas) use this class
directly: one definition for the protocol, its defaults and its bounds.

Jabri et al. 2020, "Space-Time Correspondence as a Contrastive Random Walk" (ajabri/videowalk,
``test.py``); the algorithm is ``vmac_core.propagation``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PropagationConfig:
    """Knobs of the CRW label-propagation protocol (defaults are CRW's).

    context: number of previous frames (with predicted labels) in the short-term memory.
    radius: spatial radius in feature cells; a context site is a candidate when its distance to
        the target site is strictly less than this.
    topk: number of context sites averaged per target site.
    temperature: softmax temperature on cosine affinities.
    restrict_first_frame: also restrict the long-term memory (frame 0) to the radius. CRW does
        not (its ``long_mem`` frame is compared with every site), which is the default here.
    pad_context: before ``context`` predictions exist, fill the short-term memory with copies of
        frame 0, as CRW's data loaders do by prepending ``videoLen`` copies of the first frame.
        Copies are duplicate candidates, so they can take several of the top-k slots.
        Implemented as a multiplicity: no extra features are stored.
    tile: target tile size for the blockwise radius restriction. Affects speed and memory
        only, not results.

    Raises ValueError for a knob out of range. Configs take this class as it is
    (``storage_schemas.benchmark.EvaluateConfig.propagation``): pydantic validates a dataclass's
    fields by their types and runs ``__post_init__``; unknown keys are refused.
    """

    # Read by pydantic when a config model holds this dataclass (a plain dict: no pydantic import here).
    __pydantic_config__ = {"extra": "forbid"}

    context: int = 20
    radius: float = 12.0
    topk: int = 10
    temperature: float = 0.05
    restrict_first_frame: bool = False
    pad_context: bool = True
    tile: int = 8

    def __post_init__(self) -> None:
        if self.context < 0:
            raise ValueError(f"context must be >= 0, got {self.context}")
        if self.radius <= 0:
            raise ValueError(f"radius must be > 0, got {self.radius}")
        if self.topk < 1:
            raise ValueError(f"topk must be >= 1, got {self.topk}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.tile < 1:
            raise ValueError(f"tile must be >= 1, got {self.tile}")
