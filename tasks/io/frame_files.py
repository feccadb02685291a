"""A frame folder's files read in order: frames, label masks and keypoints, and the numbering of
their names (gaps). Each file is decoded by ``tasks.io.images`` (one path for frames and
annotations); this module holds a sequence to one size and its labels to its frames.
"""

from __future__ import annotations

import io
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from storage_schemas.layout import NOT_ANNOTATED
from storage_schemas.records import NumberingGap
from tasks.io.faults import reason_of
from tasks.io.images import LayoutError, decode_frame, decode_labels, displayed_size, open_image, read_bytes
from tasks.io.items import SourceItem
from tasks.io.uris import open_uri

JHMDB_MAT = "joint_positions.mat"
_NUMBER = re.compile(r"(\d+)$")


@dataclass
class FramesSeen:
    """What the frame files held, filled while ``read_frames`` runs: PIL modes, the deepest
    sample depth, and how many frames each EXIF orientation (2-8) was applied to."""

    modes: set[str] = field(default_factory=set)
    bit_depth: int = 8
    orientations: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class Numbering:
    """The numbers at the end of the frame files' names (``00005.jpg`` → 5), their usual step,
    and where numbers are missing. ``numbers`` is None when a name has no number or the numbers
    do not increase (then there is no numbering to hold the frames to)."""

    numbers: tuple[int, ...] | None
    step: int | None
    gaps: tuple[NumberingGap, ...] = ()

    @property
    def missing(self) -> int:
        return sum(gap.missing for gap in self.gaps)


def numbering(names: list[str]) -> Numbering:
    """The numbering of ``names`` (in stored order). The step is the most common difference
    between neighbours (ties: the smaller); a difference of more than one step is a gap of
    round(difference / step) − 1 missing numbers."""
    found = [_NUMBER.search(os.path.splitext(name)[0]) for name in names]
    if len(names) < 2 or not all(found):
        return Numbering(None, None)
    numbers = [int(match[1]) for match in found]
    steps = np.diff(numbers)
    if (steps <= 0).any():
        return Numbering(None, None)
    counts = Counter(steps.tolist())
    step = min(counts, key=lambda s: (-counts[s], s))
    gaps = tuple(NumberingGap(frame=t + 1, before=names[t], after=names[t + 1], missing=max(round(diff / step) - 1, 1))
                 for t, diff in enumerate(steps.tolist()) if diff > step)
    return Numbering(tuple(numbers), step, gaps)


def frame_times(count: int, numbers: tuple[int, ...] | None, fps: float) -> np.ndarray:
    """(count,) float64 seconds of each stored frame when ``--fps`` gives a folder a clock: the file
    numbers are the clock, frame number n shown at (n − n₀) / fps, so a frame after a gap keeps
    its own time; without numbers, frame t at t / fps."""
    if numbers is None or len(numbers) != count:
        return np.arange(count, dtype=np.float64) / fps
    return (np.asarray(numbers, np.float64) - numbers[0]) / fps


def first_frame_size(item: SourceItem) -> tuple[int, int]:
    """(width, height) of the first frame file as a viewer shows it (after its EXIF orientation)."""
    uri = item.frame_uris[0]
    return displayed_size(*open_image(read_bytes(uri), os.path.basename(uri)))


def frame_names(item: SourceItem) -> list[str]:
    """Each frame file's name, in stored order."""
    return [os.path.basename(uri) for uri in item.frame_uris]


def read_frames(item: SourceItem, width: int, height: int, chunk_frames: int,
                seen: FramesSeen | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 chunks (t, H, W, 3) of a frame folder as a viewer shows each file, resized
    bicubically to (width, height); what the files held goes into ``seen``.

    Raises LayoutError when a file cannot be decoded (``tasks.io.images``), or when a frame's
    shown size differs from the first frame's: a sequence has one size, and resizing one odd
    frame silently would store something the folder does not show.
    """
    seen = seen if seen is not None else FramesSeen()
    first = None
    buf: list[np.ndarray] = []
    for uri in item.frame_uris:
        picture = decode_frame(uri)
        size = (picture.pixels.shape[1], picture.pixels.shape[0])
        first = first or (size, uri)
        if size != first[0]:
            raise LayoutError(f"frame {os.path.basename(uri)} is {_size(size)}, the first frame "
                              f"{os.path.basename(first[1])} is {_size(first[0])}")
        seen.modes.add(picture.mode)
        seen.bit_depth = max(seen.bit_depth, picture.bit_depth)
        if picture.orientation != 1:
            seen.orientations[picture.orientation] += 1
        rgb = picture.pixels
        if size != (width, height):
            rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BICUBIC))
        buf.append(rgb)
        if len(buf) == chunk_frames:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]}"


def read_masks(item: SourceItem, source_size: tuple[int, int], width: int, height: int,
               chunk_frames: int) -> Iterator[np.ndarray]:
    """Id masks (t, H, W) uint8, nearest-resized as the frames are; frames without an annotation
    file are NOT_ANNOTATED.

    Raises LayoutError when an annotation's shown size differs from its frame's (``source_size``,
    width × height): labels that do not cover their frame pixel for pixel are never resampled to fit.
    """
    buf: list[np.ndarray] = []
    for uri in item.mask_uris:
        if uri is None:
            buf.append(np.full((height, width), NOT_ANNOTATED, np.uint8))
        else:
            ids = decode_labels(uri).pixels
            size = (ids.shape[1], ids.shape[0])
            if size != tuple(source_size):
                raise LayoutError(f"annotation {os.path.basename(uri)} is {_size(size)}, "
                                  f"its frames are {_size(source_size)}")
            if ids.shape != (height, width):
                ids = np.asarray(Image.fromarray(ids).resize((width, height), Image.Resampling.NEAREST))
            buf.append(ids)
        if len(buf) == chunk_frames:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def read_keypoints(item: SourceItem, scale_x: float, scale_y: float, width: int, height: int) -> np.ndarray:
    """Keypoints (T, J, 3) float32 (x, y, visible) from JHMDB's ``pos_img`` (2, J, T), rescaled.

    JHMDB has no visibility flag; a joint outside the frame is marked not visible. Raises
    LayoutError when the file has no ``pos_img`` of that shape, or when its T differs from the
    folder's frame count (keypoints of another clip, or a frame too many or too few).
    """
    from scipy.io import loadmat

    with open_uri(item.keypoints_uri) as handle:
        data = handle.read()
    try:
        mat = loadmat(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - scipy raises several classes for a damaged .mat; all mean the same
        raise LayoutError(f"{JHMDB_MAT} is not a readable MATLAB file ({reason_of(exc)})") from None
    if "pos_img" not in mat:
        raise LayoutError(f"{JHMDB_MAT} has no pos_img")
    pos = np.asarray(mat["pos_img"], dtype=np.float64)
    if pos.ndim != 3 or pos.shape[0] != 2:
        raise LayoutError(f"{JHMDB_MAT}: pos_img must be 2 × joints × frames, not {' × '.join(map(str, pos.shape))}")
    if pos.shape[2] != len(item.frame_uris):
        raise LayoutError(f"{JHMDB_MAT} has keypoints for {pos.shape[2]} frames, the folder has "
                          f"{len(item.frame_uris)} frames")
    xy = pos.transpose(2, 1, 0) * np.array([scale_x, scale_y])  # (T, J, 2)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    return np.concatenate([xy, inside[..., None]], axis=-1).astype(np.float32)


def describe_gaps(gaps: list[NumberingGap] | tuple[NumberingGap, ...], shown: int = 3) -> str:
    """'2 gaps in the numbering (3 frames missing: after 00004.jpg 1, after 00010.jpg 2)'."""
    missing = sum(gap.missing for gap in gaps)
    listed = ", ".join(f"after {gap.before} {gap.missing}" for gap in gaps[:shown])
    more = f", … {len(gaps) - shown} more" if len(gaps) > shown else ""
    return (f"{len(gaps)} gap{'s' if len(gaps) > 1 else ''} in the numbering ({missing} frame"
            f"{'s' if missing > 1 else ''} missing: {listed}{more})")

