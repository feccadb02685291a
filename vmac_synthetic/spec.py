"""What determines a clip (``ClipSpec``), the embedded sample's clip table, and the label vocabularies.

Everything here is data: the renderer reads a spec and nothing else, so the same spec renders
the same bytes (see the package docstring for the conventions and their limits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Bump whenever a change alters any rendered byte for an unchanged spec.
GENERATOR_VERSION = 1

# JHMDB's 15 joints, in its pos_img order.
JOINT_NAMES = (
    "neck", "belly", "face",
    "right_shoulder", "left_shoulder", "right_hip", "left_hip",
    "right_elbow", "left_elbow", "right_knee", "left_knee",
    "right_wrist", "left_wrist", "right_ankle", "left_ankle",
)

# VIP / LIP part classes; the index is the id stored in part masks (0 = background).
PART_CLASSES = (
    "background", "hat", "hair", "glove", "sunglasses", "upper_clothes", "dress", "coat",
    "socks", "pants", "torso_skin", "scarf", "skirt", "face", "left_arm", "right_arm",
    "left_leg", "right_leg", "left_shoe", "right_shoe",
)

# What a figure clip's puppet does; the name is also the JHMDB action folder.
FIGURE_ACTIONS = ("walk", "wave", "jump")

CLIP_KINDS = ("objects", "figure")


@dataclass(frozen=True)
class ClipSpec:
    """Everything that determines a clip: same spec, same bytes.

    ``kind`` "objects": ``n_objects`` rigid textured objects (ids 1..n_objects).
    ``kind`` "figure": an articulated figure (id 1) plus ``n_objects - 1`` rigid objects
    (ids 2..n_objects; id 2 crosses in front of the figure, the rest pass behind).
    """

    name: str
    height: int
    width: int
    frames: int
    fps: float
    kind: str
    n_objects: int
    seed: int

    def __post_init__(self) -> None:
        if self.kind not in CLIP_KINDS:
            raise ValueError(f"kind must be one of {CLIP_KINDS}, got {self.kind!r}")
        if self.height < 8 or self.width < 8 or self.frames < 1 or self.fps <= 0:
            raise ValueError(f"degenerate clip size: {self}")
        lowest = 1 if self.kind == "figure" else 0
        if not lowest <= self.n_objects <= 255:
            raise ValueError(f"n_objects must be in [{lowest}, 255] for kind {self.kind!r}")


def default_sample_specs(seed: int, small: bool = False) -> list[ClipSpec]:
    """The embedded sample's clips for ``seed``.

    Default: 8 clips (6 "objects", 2 "figure"), 64–128 frames, short side 256–360 px.
    ``small``: 4 clips (3 "objects", 1 "figure"), 32 frames at 128×224, for fast tests.
    The first two "objects" clips and the first "figure" clip are the ones the sample exports
    to the DAVIS, VIP and JHMDB layouts. Clip seeds derive from (seed, clip index).
    """
    if small:
        table = [
            ("objects-01", 128, 224, 32, 24.0, "objects", 3),
            ("objects-02", 128, 224, 32, 25.0, "objects", 2),
            ("objects-03", 128, 224, 32, 30.0, "objects", 4),
            ("figure-01", 128, 224, 32, 24.0, "figure", 2),
        ]
    else:
        table = [
            ("objects-01", 288, 512, 64, 24.0, "objects", 3),
            ("objects-02", 288, 512, 64, 25.0, "objects", 2),
            ("objects-03", 288, 512, 112, 30.0, "objects", 4),
            ("objects-04", 360, 640, 64, 24.0, "objects", 1),
            ("objects-05", 256, 320, 96, 30.0, "objects", 3),
            ("objects-06", 288, 512, 128, 25.0, "objects", 2),
            ("figure-01", 288, 512, 96, 24.0, "figure", 2),
            ("figure-02", 288, 512, 80, 30.0, "figure", 3),
        ]
    return [
        ClipSpec(name, height, width, frames, fps, kind, n_objects, _clip_seed(seed, index))
        for index, (name, height, width, frames, fps, kind, n_objects) in enumerate(table)
    ]


def _clip_seed(seed: int, index: int) -> int:
    """A 31-bit seed for clip ``index`` of sample ``seed``, independent across clips."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] >> 1)

