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
from tasks.io.images import (
    GREY_MODES,
    LayoutError,
    Picture,
    annotation_mode,
    decode_frame,
    decode_labels,
    displayed_size,
    open_image,
    read_bytes,
)
from tasks.io.items import SourceItem
from tasks.io.uris import open_uri

JHMDB_MAT = "joint_positions.mat"
_NUMBER = re.compile(r"(\d+)$")


@dataclass
class FramesSeen:
    """What the frame files held, filled while ``read_frames`` runs: PIL modes, the deepest
    sample depth, how many frames each EXIF orientation (2-8) was applied to, and how many files
    needed each of ``tasks.io.images``' notes (an MPO's further pictures, a JPEG without EOI)."""

    modes: set[str] = field(default_factory=set)
    bit_depth: int = 8
    orientations: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class Numbering:
    """The numbers at the end of the frame files' names (``00005.jpg`` → 5), their step, and where
    numbers are missing. ``numbers`` is None when a name has no number or the numbers do not
    increase (then there is no numbering to hold the frames to); ``repeats`` then names the files
    whose numbers repeat (``1.png`` and ``01.png``). ``step``: the most common difference;
    ``interval``: the folder's own step as measured (33.33 for millisecond names 0, 33, 67, 100;
    2.5 for 0, 2, 5, 7, 10: every 2.5th frame of a source); ``slots``: each file's place on that
    lattice, 0 for the first (a gap skips slots)."""

    numbers: tuple[int, ...] | None
    step: int | None
    gaps: tuple[NumberingGap, ...] = ()
    interval: float | None = None
    repeats: tuple[str, ...] = ()
    slots: tuple[int, ...] | None = None

    @property
    def missing(self) -> int:
        return sum(gap.missing for gap in self.gaps)


# A lattice fits numbers that were rounded to integers when every number lies within this of it
# (0.5 from rounding, and slack for the fitted line's own error).
_LATTICE_FIT = 0.75
# A fractional step below 3 alternates two neighbouring differences (1 and 2 for 1.5); the rarer
# must recur this often to be read as the folder's rhythm rather than as single missing frames.
_RHYTHM_REPEATS = 3


def numbering(names: list[str]) -> Numbering:
    """The numbering of ``names`` (in stored order). The step is the most common difference
    between neighbours (ties: the smaller). The folder's interval is the mean of the differences
    within rounding of one step; below 3, where rounding to integers makes a fractional step
    alternate two neighbouring differences (2, 3, 2, 3 for 2.5), the two together when the rarer
    recurs and the numbers fit that lattice. Each file gets its slot on the lattice, and a gap is
    where slots are skipped: so numbers that advance unevenly by rounding (33, 34, 33 ms) are no
    gap, and a missing frame is one whatever the step."""
    found = [_NUMBER.search(os.path.splitext(name)[0]) for name in names]
    if len(names) < 2 or not all(found):
        return Numbering(None, None)
    numbers = [int(match[1]) for match in found]
    steps = np.diff(numbers)
    if (steps <= 0).any():
        repeats = sorted({names[i] for t in np.flatnonzero(steps == 0).tolist() for i in (t, t + 1)}, key=names.index)
        return Numbering(None, None, repeats=tuple(repeats))
    counts = Counter(steps.tolist())
    step = min(counts, key=lambda s: (-counts[s], s))
    interval, slots = _lattice(numbers, float(np.mean([d for d in steps.tolist() if round(d / step) == 1])))
    if step < 3:
        for other in (step - 1, step + 1):
            if counts.get(other, 0) >= _RHYTHM_REPEATS and other > 0:
                rhythm = float(np.mean([d for d in steps.tolist() if d in (step, other)]))
                fitted = _lattice(numbers, rhythm)
                if fitted[1] is not None and fitted[1][-1] < (slots[-1] if slots else np.inf):
                    interval, slots = fitted
    if slots is None:  # no lattice fits: the step's own differences, within rounding
        slots = tuple(np.rint((np.asarray(numbers) - numbers[0]) / interval).astype(int).tolist())
    skipped = np.diff(slots).tolist()
    gaps = tuple(NumberingGap(frame=t + 1, before=names[t], after=names[t + 1], missing=d - 1)
                 for t, d in enumerate(skipped) if d >= 2)
    return Numbering(tuple(numbers), step, gaps, interval, slots=slots)


def _lattice(numbers: list[int], interval: float) -> tuple[float, tuple[int, ...] | None]:
    """(the interval refined, each number's slot) for ``numbers`` on a lattice a + k × interval:
    slots by rounding, then the line fitted to them by least squares, twice. Slots None when a
    number lies more than ``_LATTICE_FIT`` from the fitted line (not rounding: another rhythm)."""
    values = np.asarray(numbers, np.float64)
    offset, slots = values[0], np.rint((values - values[0]) / interval)
    exact = np.array_equal(values - offset, slots * interval)  # an integer step: nothing to fit
    for _ in range(0 if exact else 2):
        if slots[-1] > 0:
            interval, offset = (float(c) for c in np.polyfit(slots, values, 1))
        slots = np.rint((values - offset) / interval)
        slots -= slots[0]
    fits = np.abs(values - (offset + slots * interval)).max() <= _LATTICE_FIT if len(values) > 2 else True
    ok = fits and (np.diff(slots) >= 1).all()
    return interval, (tuple(int(k) for k in slots) if ok else None)


def frame_times(count: int, found: Numbering, fps: float) -> np.ndarray:
    """(count,) float64 seconds of each stored frame when ``--fps`` gives a folder a clock: the file
    numbers are the clock, read on the folder's own interval s: the file in slot k (``Numbering``)
    is shown at k · s / fps, so a frame after a gap keeps its own time and numbers that wobble by
    rounding keep an even clock; without numbers, frame t at t / fps."""
    if found.numbers is None or found.slots is None or len(found.numbers) != count:
        return np.arange(count, dtype=np.float64) / fps
    return np.asarray(found.slots, np.float64) * found.interval / fps


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
        seen.notes.update(picture.notes)
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


# Grey annotation levels below this are read as object ids (a numpy id array saved as grey:
# 1, 2, 3); a mask whose levels reach above it has as many objects as that only by accident.
GREY_IDS_BELOW = 32
# A soft-edged (anti-aliased, blurred) one-object mask: its other levels lie within this many
# pixels of its most common level (the band a resize or a feathered brush leaves).
SOFT_EDGE_PX = 2


@dataclass(frozen=True)
class LabelRule:
    """How one sequence's grey annotation levels become stored ids (palette indices are ids as
    they are). ``objects``: the levels that are the one object, stored as 1 (the others 0, and
    ``void`` kept as 255); None: the levels are the ids. ``grey``: the sequence's annotations were
    grey (the rule says something worth recording)."""

    objects: frozenset[int] | None = None
    void: int | None = NOT_ANNOTATED
    grey: bool = False

    def ids(self, picture: Picture, name: str) -> np.ndarray:
        """(H, W) uint8 ids of one decoded annotation (``decode_labels``). LayoutError for a grey
        level that is no id (255 or more, besides the void level)."""
        values = picture.pixels
        if not picture.is_grey:
            return values.astype(np.uint8)
        if self.objects is not None:
            ids = np.isin(values, list(self.objects)).astype(np.uint8)
            if self.void is not None and self.void not in self.objects:
                ids[values == self.void] = NOT_ANNOTATED
            return ids
        beyond = (values >= NOT_ANNOTATED) & (values != (-1 if self.void is None else self.void))
        if beyond.any():
            raise LayoutError(f"annotation {name}: label ids must be 0-{NOT_ANNOTATED - 1} (255: void), found "
                              f"{', '.join(map(str, np.unique(values[beyond])[:5].tolist()))}")
        return values.astype(np.uint8)

    def described(self) -> str | None:
        """How the grey annotations were read, in words for the record; None for palette ones."""
        if not self.grey:
            return None
        void = f"; {self.void} void" if self.void is not None and self.void not in (self.objects or ()) else ""
        if self.objects is None:
            return f"grey annotations read as object ids (their levels){void}"
        if len(self.objects) == 1:
            return f"grey annotations read as one object: level {next(iter(self.objects))} is object 1{void}"
        return (f"grey annotations read as one object with soft edges: its {len(self.objects)} levels "
                f"{min(self.objects)}-{max(self.objects)} are object 1{void}")


def plain_reading(reading: str) -> bool:
    """Whether ``reading`` (``LabelRule.described``) is DAVIS-2016's plain 0/255 (or 16-bit
    0/65535) one-object mask, which needs no word in a summary."""
    return reading in {LabelRule(frozenset({top}), None, True).described() for top in (255, 65535)}


def label_rule(item: SourceItem) -> LabelRule:
    """The rule for ``item``'s grey annotations, decided over the whole sequence (a frame where one
    of two objects is out of view must not turn the other into a binary mask):

    - VIP's levels are part-class ids: as they are (255 void), never one object;
    - levels ⊆ {0, 2^b − 1}: one object (DAVIS-2016's 0/255 masks; a 16-bit 0/65535 one);
    - one level besides 0 (and 255, void): one object, whatever the level (0/128, 0/1). DAVIS-2016's
      single-object evaluation reads every non-zero value as the object (davis2016-evaluation's
      ``masks > 0``); davis2017-evaluation, which counts objects 1..the largest id in frame 0,
      would read a 0/128 mask as object 128 after 127 empty ones;
    - levels all below ``GREY_IDS_BELOW``: object ids (255 void in 8-bit files);
    - otherwise a soft-edged (anti-aliased) mask of one object when its other levels lie along the
      edge of its most common one (``_soft_edged``): every non-zero level is the object (as
      ``masks > 0`` reads it; 255 is the object when it is that level, else void); anything else
      is no mask vmac can read unambiguously and fails (LayoutError), asking for palette PNGs."""
    if item.layout == "vip":
        return LabelRule()
    counts: Counter = Counter()
    bits = 8
    for uri in item.mask_uris:
        if uri is None or annotation_mode(uri) not in GREY_MODES:
            continue
        picture = decode_labels(uri)
        counts.update(dict(zip(*(a.tolist() for a in np.unique(picture.pixels, return_counts=True)))))
        bits = max(bits, picture.bit_depth)
    levels, top = set(counts), (1 << bits) - 1
    void = NOT_ANNOTATED if bits == 8 else None
    if not levels:
        return LabelRule()
    if top in levels and levels <= {0, top}:
        return LabelRule(frozenset({top}), None, True)
    objects = levels - {0, void}
    if len(objects) <= 1 or max(objects) < GREY_IDS_BELOW:  # no object at all: nothing to say of the reading
        return LabelRule(frozenset(objects) if len(objects) == 1 else None, void, bool(objects))
    return _soft_edged(item, counts, void)


def _soft_edged(item: SourceItem, counts: Counter, void: int | None) -> LabelRule:
    """The rule for grey levels that are neither one level nor small ids: one soft-edged object
    when every other non-zero level lies within ``SOFT_EDGE_PX`` of the most common one in every
    file. In 8-bit files 255 is that object when it is the most common level and the others edge
    it (an anti-aliased 0/255 mask), else void (a DAVIS band beside a soft 0/128 object). Raises
    LayoutError when neither reading holds."""
    nonzero = {level: n for level, n in counts.items() if level != 0}
    candidates = [None] if void is None else [None, void]  # the level read as void: none, or 255
    for kept_void in candidates:
        objects = {level: n for level, n in nonzero.items() if level != kept_void}
        if not objects:
            continue
        dominant = max(objects, key=lambda level: (objects[level], level))
        if kept_void is None and void is not None and dominant != void:
            continue  # 255 as an edge level of another object: read it as void instead
        if _edges_only(item, dominant, frozenset(objects) - {dominant}):
            return LabelRule(frozenset(objects), kept_void, True)
    shown = ", ".join(map(str, sorted(nonzero)[:6])) + (" …" if len(nonzero) > 6 else "")
    raise LayoutError(f"annotations: grey levels {shown} are neither object ids (1-{GREY_IDS_BELOW - 1}) nor one "
                      f"object with soft edges (one level and a band of {SOFT_EDGE_PX} px around it); save the "
                      "annotations as palette PNGs")


def _edges_only(item: SourceItem, dominant: int, edge_levels: frozenset[int]) -> bool:
    """Whether, in every grey annotation of ``item``, the ``edge_levels`` lie within
    ``SOFT_EDGE_PX`` of a ``dominant`` pixel."""
    for uri in item.mask_uris:
        if uri is None or annotation_mode(uri) not in GREY_MODES:
            continue
        values = decode_labels(uri).pixels
        if (np.isin(values, list(edge_levels)) & ~_grown(values == dominant, SOFT_EDGE_PX)).any():
            return False
    return True


def _grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` (H, W) bool grown by ``pixels`` in every direction (a square neighbourhood)."""
    grown = mask.copy()
    for _ in range(pixels):
        step = grown.copy()
        step[1:] |= grown[:-1]
        step[:-1] |= grown[1:]
        grown = step.copy()
        grown[:, 1:] |= step[:, :-1]
        grown[:, :-1] |= step[:, 1:]
    return grown


def read_masks(item: SourceItem, source_size: tuple[int, int], width: int, height: int,
               chunk_frames: int, rule: LabelRule | None = None) -> Iterator[np.ndarray]:
    """Id masks (t, H, W) uint8 (``label_rule``), nearest-resized as the frames are; frames without
    an annotation file are NOT_ANNOTATED.

    Raises LayoutError when an annotation's shown size differs from its frame's (``source_size``,
    width × height): labels that do not cover their frame pixel for pixel are never resampled to fit.
    """
    rule = rule or label_rule(item)
    buf: list[np.ndarray] = []
    for uri in item.mask_uris:
        if uri is None:
            buf.append(np.full((height, width), NOT_ANNOTATED, np.uint8))
        else:
            ids = rule.ids(decode_labels(uri), os.path.basename(uri))
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

