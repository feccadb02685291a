"""The frame-folder and layout conformance matrix: generated inputs, and a viewer's picture as the oracle.

Every case is data (``Case``): how its input is written (``make``, seeded), the ``DecodeParams``
vmac ingests it with, which sequence of a dataset tree is looked at, and what must come out
(``Viewed``, ``Fails`` or ``Property``), plus record fields the contract fixes.
``tests/ingest/test_folder_matrix.py`` runs them.

The oracle (``viewed``) is what a viewer shows of each file: PIL's decode with
``ImageOps.exif_transpose`` and ``convert("RGB")``; for files deeper than 8 bits, the samples as
ffmpeg's own PNG and TIFF decoders read them (an independent decoder: PIL drops the low byte of
16-bit RGB), put through the bit-depth rule written out here in floating point,
``floor(v × 255 / (2^bits − 1) + 0.5)``, then the same EXIF transpose. Stored frames at the files'
own size must match bit for bit; frames vmac scales are compared with the oracle scaled the same
way (PIL bicubic), also exactly. Label masks are compared with the annotation files' ids
(palette indices, 0/255 greyscale as 0/1), frames without an annotation file being 255.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import imagecodecs
import numpy as np
import scipy.io
from PIL import Image, ImageOps

from storage_schemas.layout import FRAMES, MASKS, NOT_ANNOTATED, TIMESTAMPS
from storage_schemas.palette import DAVIS_PALETTE
from storage_schemas.records import DecodeParams, Status, VideoRecord
from tasks.ingest.folder import folder_notes
from tasks.ingest.video import ingest_video
from tasks.io.ffmpeg import ffmpeg_exe
from tasks.io.images import MORE_PICTURES, NO_EOI
from tasks.io.items import SourceItem
from tasks.io.sources import Skipped, scan_sources
from tasks.io.store import open_snapshot

NATIVE = DecodeParams(short_side=0, shard_frames=2)  # 2: a 3-frame folder ends in a partial shard
SCALED = DecodeParams(short_side=20, shard_frames=2)
H, W = 24, 40  # not square, so an orientation that swaps the sides shows
FRAMES_PER_FOLDER = 3


# --- pictures ---------------------------------------------------------------------------------------


def pattern(t: int, seed: int, h: int = H, w: int = W, top: int = 255) -> np.ndarray:
    """(h, w, 3) samples in [0, top]: gradients that differ per channel and per frame, plus
    seeded noise, so a transposed, mirrored, swapped or clipped picture cannot pass for the right one."""
    rng = np.random.default_rng([seed, t])
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + 2 * y + 7 * t) % 11 / 10], -1)
    noisy = np.clip(base * 0.85 + rng.random((h, w, 3)) * 0.15, 0, 1)
    return np.round(noisy * top).astype(np.uint16 if top > 255 else np.uint8)


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def png_with_exif(png: bytes, orientation: int) -> bytes:
    """A PNG with an ``eXIf`` chunk after IHDR (PNG 1.5), as cameras and editors write it."""
    payload = exif_bytes(orientation)
    if payload.startswith(b"Exif\x00\x00"):
        payload = payload[6:]
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + payload) & 0xFFFFFFFF)
    end_of_ihdr = 8 + 8 + 13 + 4
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


def bomb_png(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` × ``height`` grey pixels (the data stops short):
    decoding it would allocate the whole picture first."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096)) + chunk(b"IEND", b"")


def write_frames(folder: Path, encode: Callable[[int], bytes], names: list[str] | None = None, ext: str = "png") -> Path:
    """``FRAMES_PER_FOLDER`` files ``00000.<ext>`` … (or ``names``), file t holding ``encode(t)``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"{t:05d}.{ext}" for t in range(FRAMES_PER_FOLDER)]
    for t, name in enumerate(names):
        (folder / name).write_bytes(encode(t))
    return folder


def pil_bytes(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# --- the oracle ---------------------------------------------------------------------------------


def ffmpeg_samples(path: Path, channels: int) -> np.ndarray:
    """(H, W, channels) uint16 samples of a 16-bit PNG or TIFF, as ffmpeg's own decoder reads them, as
    stored (-noautorotate: ffmpeg would apply the EXIF orientation itself; the oracle applies it below)."""
    pix_fmt = {1: "gray16le", 2: "ya16le", 3: "rgb48le", 4: "rgba64le"}[channels]
    with av.open(str(path)) as container:  # the stored size, as libavcodec reads it
        width, height = container.streams.video[0].codec_context.width, container.streams.video[0].codec_context.height
    done = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-noautorotate", "-i", str(path), "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"], capture_output=True, check=True)
    return np.frombuffer(done.stdout, "<u2").reshape(height, width, channels)


def bit_depth_rule(samples: np.ndarray, bits: int) -> np.ndarray:
    """The stated rule, written independently of vmac's integer form: floor(v × 255 / (2^bits − 1) + 0.5)."""
    return np.floor(samples.astype(np.float64) * 255.0 / (2 ** bits - 1) + 0.5).astype(np.uint8)


def viewed(path: Path, deep: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 3) uint8: the file as a viewer shows it. ``deep``: (bits, channels) of a file deeper
    than 8 bits, whose samples ffmpeg reads and the rule scales."""
    source = Image.open(path)
    if deep is None:
        picture = source
    else:
        bits, channels = deep
        samples = bit_depth_rule(ffmpeg_samples(path, channels), bits)
        colour = samples[..., :1] if channels <= 2 else samples[..., :3]
        picture = Image.fromarray(np.repeat(colour, 3, -1) if colour.shape[-1] == 1 else colour)
        picture.info["exif"] = source.getexif().tobytes()
    return np.asarray(ImageOps.exif_transpose(picture).convert("RGB"))


def label_oracle(path: Path, levels: dict[int, int] | None = None) -> np.ndarray:
    """(H, W) uint8 ids of an annotation file: palette indices; grey levels mapped by ``levels``
    (the case's statement of what each level is: {128: 1} for a 0/128 binary mask), else
    greyscale 0/255 as 0/1 and other grey levels as ids."""
    image = ImageOps.exif_transpose(Image.open(path))
    values = np.asarray(image).astype(np.int64)
    if image.mode == "P":
        return values.astype(np.uint8)
    if levels is not None:
        ids = values.copy()
        for level, stored in levels.items():
            ids[values == level] = stored
        return ids.astype(np.uint8)
    return (values > 0).astype(np.uint8) if set(np.unique(values).tolist()) <= {0, 255} else values.astype(np.uint8)


# --- what must come out -------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewed:
    """vmac stores the video ``complete``, each frame as ``viewed`` shows its file (scaled like the
    stored frames when the params scale), and with ``masks`` each annotation's ids."""

    deep: tuple[int, int] | None = None
    masks: bool = False
    levels: dict[int, int] | None = None  # grey annotation level → stored id, where the case states it


@dataclass(frozen=True)
class Fails:
    """vmac records the video as failed, with a reason containing ``fragment``."""

    fragment: str


@dataclass(frozen=True)
class Property:
    """vmac stores the video ``complete`` and ``check(stored)`` holds (an assertion with a message)."""

    check: Callable[[Stored], None]


Expect = Viewed | Fails | Property


@dataclass(frozen=True)
class Case:
    """One cell of the matrix. ``make(folder)`` writes the input below ``folder`` and returns the
    source to ingest; ``sequence``: the item of a dataset tree to look at (its folder's name).
    ``record``: fields of vmac's ``VideoRecord`` the contract fixes for this input."""

    id: str
    make: Callable[[Path], Path]
    expect: Expect
    params: DecodeParams = NATIVE
    sequence: str | None = None
    record: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    """What vmac made of one input: the item looked at, its record and arrays (None when failed)."""

    item: SourceItem
    items: list[SourceItem]
    record: VideoRecord
    frames_thwc: np.ndarray | None
    masks_thw: np.ndarray | None
    timestamps_t: np.ndarray | None
    skipped: list[Skipped] = field(default_factory=list)


def ingest(source: Path, store: str, params: DecodeParams, sequence: str | None) -> Stored:
    """vmac's ingest of ``source`` (scan_sources, then ingest_video on the chosen item)."""
    scan = scan_sources([str(source)])
    items = scan.items
    if sequence is None:
        assert len(items) == 1, f"expected one video in {source.name}, found {[i.uri for i in items]}"
        item = items[0]
    else:
        matches = [i for i in items if Path(i.uri).name == sequence]
        assert matches, f"no item for sequence {sequence!r}; found {[Path(i.uri).name for i in items]}"
        item = matches[0]
    outcome = ingest_video(item, store, params)
    snapshot = open_snapshot(store)
    record = snapshot.records()[outcome.video_id]
    frames = masks = times = None
    if record.status is Status.complete:
        group = snapshot.group(outcome.video_id)
        frames = group[FRAMES][:]
        masks = group[MASKS][:] if MASKS in group else None
        times = group[TIMESTAMPS][:] if TIMESTAMPS in group else None
    return Stored(item, items, record, frames, masks, times, scan.skipped)


def check_viewed(stored: Stored, expect: Viewed, params: DecodeParams) -> None:
    """Every stored frame against the oracle of its file; with masks, every stored mask."""
    frames = [Path(uri) for uri in stored.item.frame_uris]
    assert stored.frames_thwc is not None and len(stored.frames_thwc) == len(frames), (
        f"stored {None if stored.frames_thwc is None else len(stored.frames_thwc)} frames of {len(frames)} files")
    height, width = stored.frames_thwc.shape[1:3]
    for t, path in enumerate(frames):
        want = viewed(path, expect.deep)
        if params.short_side and want.shape[:2] != (height, width):
            want = np.asarray(Image.fromarray(want).resize((width, height), Image.Resampling.BICUBIC))
        got = stored.frames_thwc[t]
        if got.shape != want.shape:
            raise AssertionError(f"frame {t} ({path.name}) stored {got.shape[1]}×{got.shape[0]}, a viewer shows "
                                 f"{want.shape[1]}×{want.shape[0]}")
        diff = np.abs(got.astype(np.int16) - want)
        if diff.any():
            raise AssertionError(f"frame {t} ({path.name}) differs from what a viewer shows: {int((diff > 0).sum())} "
                                 f"samples, max {int(diff.max())} levels")
    if expect.masks:
        assert stored.masks_thw is not None, "no masks stored"
        for t, uri in enumerate(stored.item.mask_uris):
            want = (np.full((height, width), NOT_ANNOTATED, np.uint8) if uri is None
                    else label_oracle(Path(uri), expect.levels))
            if want.shape != (height, width):
                want = np.asarray(Image.fromarray(want).resize((width, height), Image.Resampling.NEAREST))
            if not np.array_equal(stored.masks_thw[t], want):
                raise AssertionError(f"mask {t} differs from its annotation file ({uri})")


# --- dataset trees ------------------------------------------------------------------------------


def jpeg(t: int, seed: int, h: int = H, w: int = W) -> bytes:
    return pil_bytes(Image.fromarray(pattern(t, seed, h, w)), "JPEG", quality=90)


def palette_png(ids_hw: np.ndarray) -> bytes:
    image = Image.fromarray(ids_hw.astype(np.uint8), mode="P")
    image.putpalette(DAVIS_PALETTE)
    return pil_bytes(image, "PNG")


def object_ids(t: int, objects: dict[int, int], h: int = H, w: int = W) -> np.ndarray:
    """(h, w) ids: object k (appearing from frame ``objects[k]``) is a 6×8 box moving right by 2 px a frame."""
    ids = np.zeros((h, w), np.uint8)
    for slot, (k, first) in enumerate(sorted(objects.items())):
        if t >= first:
            top, left = 2 + 7 * slot, 2 + 2 * t + 4 * slot
            ids[top:top + 6, left:left + 8] = k
    return ids


def sequence(root: Path, images: str, annotations: str | None, names: list[str],
             objects: dict[int, int], seed: int, annotated: Callable[[int], dict[int, int] | None] | None = None) -> None:
    """JPEG frames ``names`` under ``root/images``; palette masks under ``root/annotations`` (for the
    frames where ``annotated(t)`` gives the objects to draw, by default all of them)."""
    write_frames(root / images, lambda t: jpeg(t, seed), names)
    if annotations is not None:
        folder = root / annotations
        folder.mkdir(parents=True, exist_ok=True)
        for t, name in enumerate(names):
            drawn = objects if annotated is None else annotated(t)
            if drawn is not None:
                (folder / name.replace(".jpg", ".png")).write_bytes(palette_png(object_ids(t, drawn)))


def ytvos_meta(videos: dict[str, dict[int, tuple[str, list[str]]]]) -> str:
    """meta.json: video → object id → (category, frames)."""
    return json.dumps({"videos": {v: {"objects": {str(k): {"category": c, "frames": f} for k, (c, f) in objs.items()}}
                                  for v, objs in videos.items()}})


def jhmdb_tree(folder: Path, split_flag: str = "2") -> Path:
    root = folder / "JHMDB"
    write_frames(root / "Rename_Images" / "wave" / "clip1", lambda t: pil_bytes(Image.fromarray(pattern(t, 41)), "PNG"),
                 [f"{t + 1:05d}.png" for t in range(FRAMES_PER_FOLDER)])
    joints = root / "joint_positions" / "wave" / "clip1"
    joints.mkdir(parents=True)
    pos = np.stack(np.broadcast_arrays(np.arange(15.0)[:, None] + np.arange(FRAMES_PER_FOLDER), 10.0), 0)
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"pos_img": pos})
    (joints / "joint_positions.mat").write_bytes(buffer.getvalue())
    (root / "splits").mkdir()
    (root / "splits" / "wave_test_split1.txt").write_text(f"clip1.avi {split_flag}\n")
    return root


# --- the matrix ---------------------------------------------------------------------------------


def _folder(key: str, encode: Callable[[int], bytes], ext: str = "png", names: list[str] | None = None):
    """A maker of a plain frame folder ``<key>/`` whose file t holds ``encode(t)``."""
    return lambda root: write_frames(root / key, encode, names, ext)


def _image(mode: str, seed: int, fmt: str = "PNG", **options) -> Callable[[int], bytes]:
    """File t: the pattern converted to PIL ``mode`` and saved as ``fmt``."""
    def encode(t: int) -> bytes:
        rgb = Image.fromarray(pattern(t, seed))
        image = rgb.convert(mode) if mode not in ("P", "PT") else rgb.quantize(16)
        if mode == "PT":
            options.setdefault("transparency", 0)
        return pil_bytes(image, fmt, **options)
    return encode


def _deep(channels: int, codec: str, seed: int, top: int = 65535, floor: int = 0) -> Callable[[int], bytes]:
    """File t: 16-bit samples (grey, grey+alpha, RGB, RGBA) in [floor, floor + top], written by
    libpng or libtiff (imagecodecs)."""
    def encode(t: int) -> bytes:
        samples = pattern(t, seed, top=top) + np.uint16(floor)
        samples = samples[..., :channels] if channels != 2 else np.stack([samples[..., 0], samples[..., 1]], -1)
        samples = samples[..., 0] if channels == 1 else samples
        if codec == "png":
            return imagecodecs.png_encode(np.ascontiguousarray(samples))
        return imagecodecs.tiff_encode(np.ascontiguousarray(samples), photometric="rgb" if channels >= 3 else None)
    return encode


def _oriented(fmt: str, orientation: int, seed: int) -> Callable[[int], bytes]:
    def encode(t: int) -> bytes:
        image = Image.fromarray(pattern(t, seed))
        if fmt == "PNG":
            return png_with_exif(pil_bytes(image, "PNG"), orientation)
        return pil_bytes(image, fmt, exif=exif_bytes(orientation), **({"quality": 90} if fmt == "JPEG" else {}))
    return encode


def _deep_oriented(fmt: str, orientation: int, seed: int) -> Callable[[int], bytes]:
    """File t: 16-bit samples with an EXIF orientation: RGB through libpng plus an eXIf chunk, or
    grey through PIL's TIFF writer (whose reader then orients it as it loads)."""
    def encode(t: int) -> bytes:
        if fmt == "PNG":
            return png_with_exif(imagecodecs.png_encode(pattern(t, seed, top=65535)), orientation)
        grey = Image.fromarray(pattern(t, seed, top=65535)[..., 0])
        return pil_bytes(grey, "TIFF", exif=exif_bytes(orientation))
    return encode


def _even_clock(true_s: list[float], within: float) -> Callable[[Stored], None]:
    """Timestamps evenly spaced, each within ``within`` seconds of the time its name was rounded
    from (``true_s``): the names' rounding does not make the clock uneven."""
    def check(stored: Stored) -> None:
        got = stored.timestamps_t
        assert got is not None, "no timestamps stored (--fps gives a folder a clock)"
        steps = np.diff(got)
        assert np.allclose(steps, steps.mean(), atol=1e-9), f"uneven clock {got.round(5).tolist()}"
        assert np.abs(got - np.asarray(true_s)).max() <= within, f"timestamps {got.round(5).tolist()}, true {true_s}"
    return check


def _times(expected: list[float]) -> Callable[[Stored], None]:
    def check(stored: Stored) -> None:
        got = stored.timestamps_t
        assert got is not None, "no timestamps stored (--fps gives a folder a clock)"
        assert np.allclose(got, expected), f"timestamps {got.round(4).tolist()}, expected {expected}"
    return check


def _no_clipping(stored: Stored) -> None:
    """A depth map of 500-8000 (millimetres) in 16 bits: what a viewer shows by the rule, nothing
    at 255, levels 2-31 (500 × 255 / 65535 ≈ 1.9, 8000 × 255 / 65535 ≈ 31.1)."""
    check_viewed(stored, Viewed((16, 1)), NATIVE)
    frames = stored.frames_thwc
    assert (frames == 255).mean() == 0, f"{(frames == 255).mean():.1%} of the samples are 255 (clipped)"
    assert frames.min() == 2 and frames.max() == 31, f"levels {frames.min()}-{frames.max()}, expected 2-31"


def image_cases() -> list[Case]:
    """Frame folders of each image kind, and folders that must fail."""
    v, deep16 = Viewed(), 16
    cases = [
        Case("png-rgb8", _folder("png-rgb8", _image("RGB", 1)), v, record={"bit_depth": 8, "image_modes": ["RGB"]}),
        Case("png-rgba8", _folder("png-rgba8", _image("RGBA", 2)), v, record={"image_modes": ["RGBA"]}),
        Case("png-grey8", _folder("png-grey8", _image("L", 3)), v, record={"image_modes": ["L"]}),
        Case("png-greyalpha8", _folder("png-greyalpha8", _image("LA", 4)), v, record={"image_modes": ["LA"]}),
        Case("png-palette", _folder("png-palette", _image("P", 5)), v, record={"image_modes": ["P"]}),
        Case("png-palette-transparent", _folder("png-palette-transparent", _image("PT", 6)), v),
        Case("png-bilevel", _folder("png-bilevel", _image("1", 7)), v, record={"image_modes": ["1"]}),
        Case("png-grey16", _folder("png-grey16", _deep(1, "png", 8)), Viewed((deep16, 1)),
             record={"bit_depth": 16, "image_modes": ["I;16"]}),
        Case("png-greyalpha16", _folder("png-greyalpha16", _deep(2, "png", 9)), Viewed((deep16, 2)), record={"bit_depth": 16}),
        Case("png-rgb16", _folder("png-rgb16", _deep(3, "png", 10)), Viewed((deep16, 3)), record={"bit_depth": 16}),
        Case("png-rgba16", _folder("png-rgba16", _deep(4, "png", 11)), Viewed((deep16, 4)), record={"bit_depth": 16}),
        Case("png-depth16-not-clipped", _folder("png-depth16", _deep(1, "png", 12, top=7500, floor=500)), Property(_no_clipping),
             record={"bit_depth": 16}),
        Case("jpeg-rgb", _folder("jpeg-rgb", _image("RGB", 13, "JPEG", quality=90), "jpg"), v),
        Case("jpeg-progressive", _folder("jpeg-progressive", _image("RGB", 14, "JPEG", progressive=True), "jpg"), v),
        Case("jpeg-grey", _folder("jpeg-grey", _image("L", 15, "JPEG"), "jpg"), v, record={"image_modes": ["L"]}),
        Case("jpeg-cmyk", _folder("jpeg-cmyk", _image("CMYK", 16, "JPEG", quality=95), "jpg"), v,
             record={"image_modes": ["CMYK"]}),
        Case("webp-lossy", _folder("webp-lossy", _image("RGB", 17, "WEBP", quality=80), "webp"), v),
        Case("webp-lossless", _folder("webp-lossless", _image("RGB", 18, "WEBP", lossless=True), "webp"), v),
        Case("webp-alpha", _folder("webp-alpha", _image("RGBA", 19, "WEBP", lossless=True), "webp"), v),
        Case("tiff-rgb8", _folder("tiff-rgb8", _image("RGB", 20, "TIFF"), "tif"), v),
        Case("tiff-lzw", _folder("tiff-lzw", _image("RGB", 21, "TIFF", compression="tiff_lzw"), "tiff"), v),
        Case("tiff-cmyk", _folder("tiff-cmyk", _image("CMYK", 22, "TIFF"), "tif"), v, record={"image_modes": ["CMYK"]}),
        Case("tiff-grey16", _folder("tiff-grey16", _deep(1, "tiff", 23), "tif"), Viewed((deep16, 1)), record={"bit_depth": 16}),
        Case("tiff-rgb16", _folder("tiff-rgb16", _deep(3, "tiff", 24), "tif"), Viewed((deep16, 3)), record={"bit_depth": 16}),
        Case("bmp-rgb", _folder("bmp-rgb", _image("RGB", 25, "BMP"), "bmp"), v),
        Case("png-odd-size-native", _folder("png-odd", lambda t: pil_bytes(Image.fromarray(pattern(t, 26, 17, 33)), "PNG")),
             v, record={"width": 33, "height": 17}),
        Case("png-rgb8-scaled", _folder("png-scaled", _image("RGB", 27)), v, params=SCALED,
             record={"height": 20, "width": 33}),
        Case("mixed-png-and-jpeg", _folder("mixed", lambda t: (_image("RGB", 28) if t % 2 else _image("RGB", 28, "JPEG"))(t),
                                           names=["00000.jpg", "00001.png", "00002.jpg"]), v,
             record={"image_modes": ["RGB"]}),
        Case("unpadded-names-natural-order", _folder("unpadded", _image("RGB", 29), names=["1.png", "2.png", "10.png"]),
             v, record={"frame_names": ["1.png", "2.png", "10.png"], "numbering_gaps": [
                 {"frame": 2, "before": "2.png", "after": "10.png", "missing": 7}]}),
    ]
    for orientation in range(1, 9):
        cases.append(Case(f"jpeg-exif-orientation-{orientation}",
                          _folder(f"jpeg-exif-{orientation}", _oriented("JPEG", orientation, 30 + orientation), "jpg"),
                          v, record={"exif_orientations": {} if orientation == 1 else {orientation: FRAMES_PER_FOLDER},
                                     "width": H if orientation >= 5 else W}))
    cases += [
        Case("png-exif-orientation-6", _folder("png-exif-6", _oriented("PNG", 6, 40)), v,
             record={"exif_orientations": {6: FRAMES_PER_FOLDER}, "width": H, "height": W}),
        Case("webp-exif-orientation-3", _folder("webp-exif-3", _oriented("WEBP", 3, 41), "webp"), v,
             record={"exif_orientations": {3: FRAMES_PER_FOLDER}}),
        Case("tiff-exif-orientation-8", _folder("tiff-exif-8", _oriented("TIFF", 8, 42), "tif"), v,
             record={"exif_orientations": {8: FRAMES_PER_FOLDER}, "width": H}),
        Case("png-rgb16-exif-orientation-5", _folder("png16-exif-5", _deep_oriented("PNG", 5, 44)), Viewed((16, 3)),
             record={"exif_orientations": {5: FRAMES_PER_FOLDER}, "bit_depth": 16, "width": H}),
        Case("tiff-grey16-exif-orientation-6", _folder("tiff16-exif-6", _deep_oriented("TIFF", 6, 45), "tif"),
             Viewed((16, 1)), record={"exif_orientations": {6: FRAMES_PER_FOLDER}, "bit_depth": 16, "width": H}),
        Case("jpeg-exif-6-scaled", _folder("jpeg-exif-6-scaled", _oriented("JPEG", 6, 43), "jpg"), v, params=SCALED,
             record={"width": 20, "height": 33}),
    ]
    return cases + failing_cases() + numbering_cases()


def failing_cases() -> list[Case]:
    good = _image("RGB", 50)

    def with_bad(bad: Callable[[int], bytes], at: int = 1) -> Callable[[int], bytes]:
        return lambda t: bad(t) if t == at else good(t)

    truncated_png = lambda t: good(t)[: len(good(t)) // 2]  # noqa: E731 - one-line file makers read best inline
    truncated_jpeg = lambda t: _image("RGB", 50, "JPEG")(t)[:400]  # noqa: E731
    animated = lambda t: pil_bytes(Image.fromarray(pattern(t, 51)), "WEBP", save_all=True,  # noqa: E731
                                   append_images=[Image.fromarray(pattern(t + k, 51)) for k in (9, 10)],
                                   lossless=True)
    return [
        Case("zero-byte-frame", _folder("zero-byte", with_bad(lambda t: b"")), Fails("00001.png is empty (0 bytes)")),
        Case("truncated-png", _folder("truncated-png", with_bad(truncated_png)), Fails("00001.png is not a readable image")),
        Case("truncated-jpeg", _folder("truncated-jpeg", with_bad(truncated_jpeg), "jpg"),
             Fails("00001.jpg is not a readable image")),
        Case("random-bytes-named-png", _folder("random-bytes", with_bad(lambda t: np.random.default_rng(t).bytes(900))),
             Fails("00001.png is not an image")),
        Case("decompression-bomb-beyond-pil", _folder("bomb-pil", with_bad(lambda t: bomb_png(40000, 40000), 0)),
             Fails("00000.png is too large to decode")),
        Case("decompression-bomb-beyond-vmac", _folder("bomb-vmac", with_bad(lambda t: bomb_png(12000, 12000), 0)),
             Fails("00000.png is 12000×12000 = 144,000,000 pixels, above the limit")),
        Case("animated-webp", _folder("animated", with_bad(animated), "webp"), Fails("00001.webp holds 3 pictures")),
        Case("tiff-float32", _folder("tiff-float", lambda t: imagecodecs.tiff_encode(pattern(t, 52)[..., 0].astype(np.float32)),
                                     "tif"), Fails("floating-point samples")),
        Case("mixed-sizes", _folder("mixed-sizes", lambda t: pil_bytes(Image.fromarray(pattern(t, 53, H, W + (t == 2))), "PNG")),
             Fails("frame 00002.png is 41×24, the first frame 00000.png is 40×24")),
        Case("orientation-changes-shape", _folder("orientation-shape", lambda t: _oriented("JPEG", 6 if t == 2 else 1, 54)(t),
                                                  "jpg"), Fails("frame 00002.jpg is 24×40, the first frame 00000.jpg is 40×24")),
    ]


def numbering_cases() -> list[Case]:
    gap_names = ["00000.png", "00001.png", "00004.png"]
    step5 = ["00000.jpg", "00005.jpg", "00010.jpg"]
    gap = {"frame": 2, "before": "00001.png", "after": "00004.png", "missing": 2}
    return [
        Case("numbering-gap", _folder("gap", _image("RGB", 60), names=gap_names), Viewed(),
             record={"numbering_step": 1, "numbering_gaps": [gap]}),
        Case("numbering-gap-fps", _folder("gap-fps", _image("RGB", 61), names=gap_names), Property(_times([0, 0.1, 0.4])),
             params=DecodeParams(short_side=0, fps=10), record={"frame_rate_mode": "variable", "fps": 5.0}),
        Case("numbering-step-5-fps", _folder("step5", _image("RGB", 62, "JPEG"), names=step5),
             Property(_times([0, 1 / 6, 1 / 3])), params=DecodeParams(short_side=0, fps=30),
             record={"numbering_step": 5, "numbering_gaps": [], "frame_rate_mode": "constant", "fps": 6.0}),
        Case("no-gap-fps", _folder("no-gap-fps", _image("RGB", 63)), Property(_times([0, 0.04, 0.08])),
             params=DecodeParams(short_side=0, fps=25), record={"fps": 25.0, "numbering_gaps": []}),
        *[_lattice_case(step, count, removed, 64 + i) for i, (step, count, removed) in enumerate(
            [(2.5, 10, ()), (1.5, 10, ()), (1.25, 13, ()), (1.5, 12, (6,)), (2.5, 12, (3, 4, 9)), (1, 9, (3, 7))])],
    ]


def _lattice_case(step: float, count: int, removed: tuple[int, ...], seed: int) -> Case:
    """Every ``step``-th frame of a source (a rate conversion: names round(k × step), which
    alternate two differences when the step is fractional), with the frames ``removed`` (k) missing.
    The oracle is the removal: one gap per run of removed k, at the kept frame after it, of the
    run's length; no gap where nothing was removed, however unevenly the names advance."""
    def name(k: int) -> str:
        return f"{int(k * step + 0.5):05d}.png"
    kept = [k for k in range(count) if k not in removed]
    gaps = [{"frame": i, "before": name(kept[i - 1]), "after": name(k), "missing": k - kept[i - 1] - 1}
            for i, k in enumerate(kept) if i and k - kept[i - 1] > 1]
    key = f"lattice-{step}-{'-'.join(map(str, removed)) or 'whole'}"
    return Case(f"numbering-step-{step}-{'missing-' + '-'.join(map(str, removed)) if removed else 'no-gap'}",
                _folder(key, _image("RGB", seed), names=[name(k) for k in kept]), Viewed(),
                record={"numbering_gaps": gaps})


def davis_2017(folder: Path) -> Path:
    """DAVIS-2017 trainval: bear (train, 2 objects), blackswan (val, 1), cows (val, 2, a void band
    of 255 along object 1's edge and an annotation file whose frame is missing)."""
    root = folder / "DAVIS"
    names = [f"{t:05d}.jpg" for t in range(FRAMES_PER_FOLDER)]
    for seed, (seq, objects) in enumerate({"bear": {1: 0, 2: 0}, "blackswan": {1: 0}, "cows": {1: 0, 2: 0}}.items()):
        sequence(root, f"JPEGImages/480p/{seq}", f"Annotations/480p/{seq}", names, objects, 70 + seed)
    cows = root / "Annotations/480p/cows"
    for path in sorted(cows.glob("*.png")):
        ids = np.asarray(Image.open(path)).copy()
        ids[1:2, :] = 255  # the void band davis2017-evaluation scores as background
        path.write_bytes(palette_png(ids))
    (cows / "00099.png").write_bytes(palette_png(object_ids(0, {1: 0})))
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/train.txt").write_text("bear\n")
    (root / "ImageSets/2017/val.txt").write_text("blackswan\ncows\n")
    return root


def davis_2016(folder: Path) -> Path:
    """DAVIS-2016: 0/255 greyscale masks; ImageSets/480p/val.txt lists path pairs."""
    root = folder / "DAVIS2016"
    names = [f"{t:05d}.jpg" for t in range(FRAMES_PER_FOLDER)]
    write_frames(root / "JPEGImages/480p/bear", lambda t: jpeg(t, 80), names)
    masks = root / "Annotations/480p/bear"
    masks.mkdir(parents=True)
    for t in range(FRAMES_PER_FOLDER):
        (masks / f"{t:05d}.png").write_bytes(pil_bytes(Image.fromarray(object_ids(t, {1: 0}) * 255), "PNG"))
    (root / "ImageSets/480p").mkdir(parents=True)
    (root / "ImageSets/480p/val.txt").write_text(
        "".join(f"/JPEGImages/480p/bear/{t:05d}.jpg /Annotations/480p/bear/{t:05d}.png\n" for t in range(3)))
    return root


def davis_full_resolution(folder: Path) -> Path:
    root = folder / "DAVIS-full"
    sequence(root, "JPEGImages/Full-Resolution/dog", "Annotations/Full-Resolution/dog",
             [f"{t:05d}.jpg" for t in range(FRAMES_PER_FOLDER)], {1: 0}, 81)
    return root


def davis_bad_annotation(folder: Path) -> Path:
    root = folder / "DAVIS-bad"
    sequence(root, "JPEGImages/480p/car", None, [f"{t:05d}.jpg" for t in range(FRAMES_PER_FOLDER)], {}, 82)
    (root / "Annotations/480p/car").mkdir(parents=True)
    (root / "Annotations/480p/car/00000.png").write_bytes(palette_png(np.zeros((H // 2, W // 2), np.uint8)))
    return root


STEP5 = [f"{5 * t:05d}.jpg" for t in range(4)]


def ytvos(folder: Path, split: str) -> Path:
    """A YouTube-VOS tree: frames every 5th frame; video a (objects 2 then 1: id 1 appears at 00010),
    video b (objects 1 and 3, no 2). train annotates every frame with every object; valid only each
    object's first frame, with only that object (0 elsewhere does not mean background)."""
    root = folder / "youtube-vos" / split
    videos = {"a": {2: ("fish", STEP5), 1: ("hand", STEP5[2:])}, "b": {1: ("cat", STEP5), 3: ("dog", STEP5)}}
    (root).mkdir(parents=True)
    (root / "meta.json").write_text(ytvos_meta(videos))
    for seed, (video, objects) in enumerate(videos.items()):
        first = {k: STEP5.index(frames[0]) for k, (_, frames) in objects.items()}

        def annotated(t: int, first=first) -> dict[int, int] | None:
            if split == "train":
                return {k: f for k, f in first.items() if f <= t}
            new = {k: f for k, f in first.items() if f == t}
            return new or None

        sequence(root, f"JPEGImages/{video}", f"Annotations/{video}", STEP5, first, 90 + seed, annotated)
    return root


def ytvos_all_frames(folder: Path) -> Path:
    root = folder / "youtube-vos" / "train_all_frames"
    root.mkdir(parents=True)
    (root / "meta.json").write_text(ytvos_meta({"a": {1: ("fish", ["00000.jpg"])}}))
    write_frames(root / "JPEGImages/a", lambda t: jpeg(t, 95), [f"{t:05d}.jpg" for t in range(4)])
    return root


def vip_tree(folder: Path) -> Path:
    root = folder / "VIP_Fine"
    names = [f"{t + 1:012d}.jpg" for t in range(FRAMES_PER_FOLDER)]
    write_frames(root / "Images/v1", lambda t: jpeg(t, 100), names)
    parts = root / "Annotations/Category_ids/v1"
    parts.mkdir(parents=True)
    for t, name in enumerate(names):
        classes = np.where(object_ids(t, {1: 0, 2: 0}) > 0, object_ids(t, {1: 0, 2: 0}) * 7, 0).astype(np.uint8)
        (parts / name.replace(".jpg", ".png")).write_bytes(pil_bytes(Image.fromarray(classes), "PNG"))
    (root / "lists").mkdir()
    (root / "lists/val_videos.txt").write_text("v1\n")
    return root


def bare_jpegimages(folder: Path) -> Path:
    """JPEGImages/ and Annotations/ with none of DAVIS's or YouTube-VOS's defining files."""
    root = folder / "custom-vos"
    sequence(root, "JPEGImages/seq", "Annotations/seq", [f"{t:05d}.jpg" for t in range(FRAMES_PER_FOLDER)], {1: 0}, 110)
    return root


def images_without_vip_labels(folder: Path) -> Path:
    root = folder / "holiday"
    write_frames(root / "Images/day1", lambda t: jpeg(t, 111), [f"IMG_{t:04d}.jpg" for t in range(FRAMES_PER_FOLDER)])
    return root


def _items(check: Callable[[list[SourceItem]], None]) -> Callable[[Stored], None]:
    return lambda stored: check(stored.items)


def _layouts(expected: dict[str, tuple[str, str | None]]) -> Callable[[Stored], None]:
    """Every item of the tree: folder name → (layout, split)."""
    def check(stored: Stored) -> None:
        got = {Path(i.uri).name: (i.layout, i.split) for i in stored.items}
        assert got == expected, f"items {got}, expected {expected}"
    return check


def _valid_masks(stored: Stored) -> None:
    """Annotated only where an object first appears, holding only that object."""
    masks = stored.masks_thw
    annotated = [t for t in range(len(masks)) if not (masks[t] == NOT_ANNOTATED).all()]
    assert annotated == [0, 2], f"annotated frames {annotated}, expected [0, 2] (each object's first)"
    assert set(np.unique(masks[2]).tolist()) == {0, 1}, f"frame 2 holds {np.unique(masks[2]).tolist()}, expected 0 and 1"


def layout_cases() -> list[Case]:
    mv = Viewed(masks=True)
    trainval = {"bear": ("davis", "train"), "blackswan": ("davis", "val"), "cows": ("davis", "val")}
    return [
        Case("davis2017-trainval-layout", davis_2017, Property(_layouts(trainval)), sequence="bear"),
        Case("davis2017-frames-and-masks", davis_2017, mv, sequence="bear",
             record={"layout": "davis", "split": "train", "object_ids": [1, 2], "mask_semantics": "complete"}),
        Case("davis2017-void-band", davis_2017, mv, sequence="cows", record={"object_ids": [1, 2]}),
        Case("davis2017-orphan-annotation", davis_2017, mv, sequence="cows",
             record={"orphan_annotations": ["00099.png"], "split": "val"}),
        Case("davis2016-greyscale-masks", davis_2016, mv, sequence="bear", record={"split": "val", "object_ids": [1]}),
        Case("davis-full-resolution", davis_full_resolution, mv, sequence="dog", record={"layout": "davis"}),
        Case("davis-annotation-size", davis_bad_annotation, Fails("annotation 00000.png is 20×12, its frames are 40×24"),
             sequence="car"),
        Case("ytvos-train-layout", lambda f: ytvos(f, "train"),
             Property(_layouts({"a": ("youtube-vos", "train"), "b": ("youtube-vos", "train")})), sequence="a"),
        Case("ytvos-train-late-object", lambda f: ytvos(f, "train"), mv, sequence="a",
             record={"mask_semantics": "complete", "object_ids": [1, 2], "object_first_frames": {1: 2, 2: 0},
                     "numbering_step": 5, "numbering_gaps": [], "object_categories": {1: "hand", 2: "fish"}}),
        Case("ytvos-train-ids-not-from-1", lambda f: ytvos(f, "train"), mv, sequence="b",
             record={"object_ids": [1, 3], "object_categories": {1: "cat", 3: "dog"}}),
        Case("ytvos-valid-layout", lambda f: ytvos(f, "valid"),
             Property(_layouts({"a": ("youtube-vos", "valid"), "b": ("youtube-vos", "valid")})), sequence="a"),
        Case("ytvos-valid-first-appearance", lambda f: ytvos(f, "valid"), Property(_valid_masks), sequence="a",
             record={"mask_semantics": "first_appearance", "object_first_frames": {1: 2, 2: 0}}),
        Case("ytvos-valid-masks", lambda f: ytvos(f, "valid"), mv, sequence="b"),
        Case("ytvos-train-all-frames", ytvos_all_frames, Viewed(), sequence="a",
             record={"layout": "youtube-vos", "split": "train", "has_masks": False, "numbering_step": 1}),
        Case("ytvos-bad-meta", lambda f: _bad_meta(f), Fails("meta.json beside JPEGImages/ is not YouTube-VOS's"),
             sequence="train"),
        Case("vip-layout", vip_tree, mv, sequence="v1", record={"layout": "vip", "split": "val", "object_ids": [7, 14]}),
        Case("jhmdb-layout", jhmdb_tree, Viewed(), sequence="clip1",
             record={"layout": "jhmdb", "split": "test", "has_keypoints": True, "num_joints": 15}),
        Case("jpegimages-without-defining-files", bare_jpegimages, mv, sequence="seq", record={"layout": "folder"}),
        Case("images-folder-without-vip-labels", images_without_vip_labels, Viewed(), sequence="day1",
             record={"layout": "folder", "has_masks": False}),
    ]


def _bad_meta(folder: Path) -> Path:
    root = ytvos(folder, "train")
    (root / "meta.json").write_text("{\"videos\": [1, 2]}")
    return root


# --- a new user's trial: deep TIFF layouts, MPO, GIF, names, grey masks, split lists -------------


def tiff_bytes(samples: np.ndarray, photometric: int, planar: int = 1, sample_format: int = 1,
               inkset: int | None = None) -> bytes:
    """An uncompressed little-endian TIFF of ``samples`` (H, W, S) uint8/uint16/int16, written here
    field by field (one strip, one per plane when ``planar`` is 2), so what a reader returns can
    be held to the samples written, not to another reader."""
    height, width, spp = samples.shape
    little = samples.astype(samples.dtype.newbyteorder("<"))
    strips = [little.tobytes()] if planar == 1 else [little[..., i].tobytes() for i in range(spp)]
    entries: list[tuple[int, int, list[int]]] = [
        (256, 4, [width]), (257, 4, [height]), (258, 3, [samples.itemsize * 8] * spp), (259, 3, [1]),
        (262, 3, [photometric]), (273, 4, []), (277, 3, [spp]), (278, 4, [height]),
        (279, 4, [len(strip) for strip in strips]), (284, 3, [planar]), (339, 3, [sample_format] * spp)]
    if inkset is not None:
        entries.append((332, 3, [inkset]))
    if spp in (2, 4) and photometric in (1, 2):
        entries.append((338, 3, [2]))  # the last sample is unassociated alpha
    entries.sort()
    data = b"".join(strips)
    offsets, spill = [8 + sum(len(x) for x in strips[:i]) for i in range(len(strips))], b""
    body = []
    for tag, kind, values in entries:
        values = offsets if tag == 273 else values
        packed = struct.pack("<" + ("H" if kind == 3 else "I") * len(values), *values)
        if len(packed) > 4:
            body.append(struct.pack("<HHII", tag, kind, len(values), 8 + len(data) + len(spill)))
            spill += packed
        else:
            body.append(struct.pack("<HHI", tag, kind, len(values)) + packed.ljust(4, b"\0"))
    ifd_at = 8 + len(data) + len(spill) + (len(data) + len(spill)) % 2
    pad = b"\0" * ((len(data) + len(spill)) % 2)
    return (b"II*\0" + struct.pack("<I", ifd_at) + data + spill + pad + struct.pack("<H", len(body))
            + b"".join(body) + struct.pack("<I", 0))


def _samples_shown(expected: Callable[[int], np.ndarray]) -> Callable[[Stored], None]:
    """Every stored frame t equals ``expected(t)`` (H, W, 3) uint8: what the written samples show."""
    def check(stored: Stored) -> None:
        for t in range(len(stored.item.frame_uris)):
            want, got = expected(t), stored.frames_thwc[t]
            assert got.shape == want.shape, f"frame {t} stored {got.shape}, the samples show {want.shape}"
            diff = np.abs(got.astype(np.int16) - want)
            assert not diff.any(), f"frame {t}: {int((diff > 0).sum())} samples differ, max {int(diff.max())} levels"
    return check


def _deep_tiff(channels: int, seed: int, photometric: int, planar: int = 1) -> tuple[Callable, Callable]:
    """(file maker, what file t shows): 16-bit samples written as a TIFF of ``photometric`` and
    ``planar`` layout, and the picture the bit-depth rule gives of them (WhiteIsZero inverted,
    CMYK by PIL's conversion of the 8-bit inks, as an 8-bit CMYK file is shown)."""
    def samples(t: int) -> np.ndarray:
        both = np.concatenate([pattern(t, seed, top=65535), pattern(t + 7, seed, top=65535)], -1)
        return np.ascontiguousarray(both[..., :channels])

    def shown(t: int) -> np.ndarray:
        eight = bit_depth_rule(samples(t), 16)
        if photometric == 0:
            return np.repeat(255 - eight, 3, -1)
        if photometric == 5:
            return np.asarray(Image.fromarray(eight, "CMYK").convert("RGB"))
        return np.repeat(eight, 3, -1) if channels <= 2 and photometric == 1 else eight[..., :3]

    return (lambda t: tiff_bytes(samples(t), photometric, planar)), shown


def _mpo(seed: int) -> Callable[[int], bytes]:
    """A phone's JPEG: the main picture, then a half-size grey gain map (an MPO of two pictures)."""
    def encode(t: int) -> bytes:
        main = Image.fromarray(pattern(t, seed))
        gain = Image.fromarray(pattern(t, seed + 1, H // 2, W // 2)[..., 0]).convert("RGB")
        return pil_bytes(main, "MPO", save_all=True, append_images=[gain], quality=90)
    return encode


def _missing_eoi(cut: int) -> Callable[[Path], Path]:
    """A JPEG folder whose middle file lost its last ``cut`` bytes (2: only its EOI marker)."""
    def make(root: Path) -> Path:
        folder = write_frames(root / f"jpeg-cut-{cut}", _image("RGB", 140, "JPEG", quality=92), ext="jpg")
        whole = (folder / "00001.jpg").read_bytes()
        assert whole[-2:] == b"\xff\xd9"
        (folder / "whole.bin").write_bytes(whole)  # not an image name: the walk leaves it out
        (folder / "00001.jpg").write_bytes(whole[:-cut])
        return folder
    return make


def _as_complete_file(stored: Stored) -> None:
    """The file without its EOI shows what the complete file shows (PIL on the complete bytes)."""
    folder = Path(stored.item.uri)
    whole = np.asarray(Image.open(folder / "whole.bin").convert("RGB"))
    assert np.array_equal(stored.frames_thwc[1], whole), "the frame differs from the complete file's picture"
    for t in (0, 2):
        assert np.array_equal(stored.frames_thwc[t], viewed(folder / f"{t:05d}.jpg"))


def _gif_stills_and_an_animation(root: Path) -> Path:
    folder = write_frames(root / "gifs", lambda t: pil_bytes(Image.fromarray(pattern(t, 150)), "GIF"), ext="gif")
    Image.fromarray(pattern(0, 151)).save(folder / "zz-anim.gif", save_all=True,
                                          append_images=[Image.fromarray(pattern(k, 151)) for k in (1, 2)])
    return folder


def _gif_items(stored: Stored) -> None:
    kinds = {Path(i.uri).name: (i.kind.value, len(i.frame_uris)) for i in stored.items}
    assert kinds == {"gifs": ("frames", 3), "zz-anim.gif": ("video", 0)}, kinds
    check_viewed(stored, Viewed(), NATIVE)


def _two_prefixes(root: Path) -> Path:
    return write_frames(root / "prefixes", _image("RGB", 152),
                        names=["frame_0001.png", "frame_0002.png", "frame_0003.png", "img_1.png", "img_2.png", "thumb_9.png"])


def _split_by_prefix(stored: Stored) -> None:
    got = {Path(i.uri).name: [Path(u).name for u in i.frame_uris] for i in stored.items}
    assert got == {"frame_[0-9]*": ["frame_0001.png", "frame_0002.png", "frame_0003.png"],
                   "img_[0-9]*": ["img_1.png", "img_2.png"]}, got
    assert [(Path(s.uri).name, s.counts) for s in stored.skipped] == [("thumb_9.png", False)], stored.skipped
    check_viewed(stored, Viewed(), NATIVE)


def _repeats_noted(stored: Stored) -> None:
    check_viewed(stored, Viewed(), NATIVE)
    assert "frame numbers repeat (01.png, 1.png): stored in name order" in (folder_notes(stored.record) or "")


def grey_tree(folder: Path, key: str, levels_of: Callable[[int], np.ndarray], bits: int = 8) -> Path:
    """``key/JPEGImages/seq`` JPEG frames and grey annotations ``levels_of(t)`` (H, W) at ``bits``."""
    root = folder / key
    write_frames(root / "JPEGImages/seq", lambda t: jpeg(t, 160), [f"{t:05d}.jpg" for t in range(FRAMES_PER_FOLDER)])
    (root / "Annotations/seq").mkdir(parents=True)
    for t in range(FRAMES_PER_FOLDER):
        levels = levels_of(t)
        data = (imagecodecs.png_encode(levels.astype(np.uint16)) if bits == 16
                else pil_bytes(Image.fromarray(levels.astype(np.uint8), "L"), "PNG"))
        (root / f"Annotations/seq/{t:05d}.png").write_bytes(data)
    return root


_SOFT_READING = "grey annotations read as one object with soft edges: its 9 levels 51-255 are object 1"


def _soft_edge(ids: np.ndarray, level: int) -> np.ndarray:
    """A one-object mask at ``level`` with an anti-aliased rim: the pixels around the object take
    8 levels between 20 % and 80 % of ``level`` (as a resize or a feathered brush leaves them)."""
    inside = ids > 0
    padded = np.pad(inside, 1)
    grown = np.zeros_like(inside)
    for dy in range(3):
        for dx in range(3):
            grown |= padded[dy:dy + inside.shape[0], dx:dx + inside.shape[1]]
    rim = grown & ~inside
    out = inside.astype(np.uint8) * level
    out[rim] = (level * (0.2 + 0.6 * (np.arange(rim.sum()) % 8) / 7)).astype(np.uint8)
    return out


def _band(ids: np.ndarray, level: int = 255) -> np.ndarray:
    ids = ids.copy()
    ids[1:3, :] = level  # a void band along the top, as DAVIS draws one along edges
    return ids


def _bad_annotation(key: str, bad: Callable[[Path], None]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        root = folder / key
        sequence(root, "JPEGImages/seq", "Annotations/seq", [f"{t:05d}.jpg" for t in range(FRAMES_PER_FOLDER)], {1: 0}, 161)
        bad(root / "Annotations/seq")
        return root
    return make


def _jpeg_annotation(folder: Path) -> None:
    (folder / "00000.png").unlink()
    (folder / "00000.jpg").write_bytes(pil_bytes(Image.fromarray(object_ids(0, {1: 0}) * 255, "L"), "JPEG"))


def davis_lists(folder: Path, key: str, lists: dict[str, str], sequences: tuple[str, ...] = ("bear", "bmx", "cows"),
                extra: Callable[[Path], None] | None = None) -> Path:
    """A DAVIS tree of ``sequences`` and ``lists`` (ImageSets path → its text, written as bytes)."""
    root = folder / key
    names = [f"{t:05d}.jpg" for t in range(FRAMES_PER_FOLDER)]
    for seed, seq in enumerate(sequences):
        sequence(root, f"JPEGImages/480p/{seq}", f"Annotations/480p/{seq}", names, {1: 0}, 170 + seed)
    for where, text in lists.items():
        (root / "ImageSets" / where).parent.mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / where).write_bytes(text.encode("utf-8"))
    if extra:
        extra(root)
    return root


def _pairs(*sequences: str) -> str:
    """DAVIS-2016's ImageSets/480p lists: one '/JPEGImages/… /Annotations/…' pair a frame."""
    return "".join(f"/JPEGImages/480p/{s}/{t:05d}.jpg /Annotations/480p/{s}/{t:05d}.png\n"
                   for s in sequences for t in range(FRAMES_PER_FOLDER))


def _full_resolution_beside(root: Path) -> None:
    sequence(root, "JPEGImages/Full-Resolution/bear", "Annotations/Full-Resolution/bear",
             [f"{t:05d}.jpg" for t in range(FRAMES_PER_FOLDER)], {1: 0}, 180)


def _skipped(expected: list[tuple[str, str, bool]]) -> Callable[[Stored], None]:
    """The walk's left-out entries: (the entry's name, a fragment of the reason, whether it counts)."""
    def check(stored: Stored) -> None:
        got = [(Path(s.uri).name, s.reason, s.counts) for s in stored.skipped]
        assert len(got) == len(expected) and all(
            name == n and fragment in reason and counts == c for (n, reason, c), (name, fragment, counts) in
            zip(got, expected)), f"left out {got}, expected {expected}"
    return check


def _davis_2016_lists(stored: Stored) -> None:
    _layouts({"bear": ("davis", "train"), "bmx": ("davis", "train"), "cows": ("davis", "val")})(stored)
    cows = next(i for i in stored.items if Path(i.uri).name == "cows")
    assert (cows.splits, cows.dataset_splits) == (("trainval", "val"), ("train", "trainval", "val"))


def _full_resolution_left_out(stored: Stored) -> None:
    assert {Path(i.uri).parent.name for i in stored.items} == {"480p"}
    _skipped([("Full-Resolution", "DAVIS Full-Resolution beside 480p: not ingested", False)])(stored)


def ytvos_inconsistent(folder: Path) -> Path:
    """A YouTube-VOS train tree whose meta.json lists a video the tree lacks, omits one it holds,
    and does not list an object id the masks show."""
    root = folder / "youtube-vos" / "train"
    videos = {"listed": {1: ("cat", STEP5)}, "only-in-meta": {1: ("cow", STEP5)}}
    root.mkdir(parents=True)
    (root / "meta.json").write_text(ytvos_meta(videos))
    sequence(root, "JPEGImages/listed", "Annotations/listed", STEP5, {1: 0, 2: 1}, 190)
    sequence(root, "JPEGImages/not-in-meta", "Annotations/not-in-meta", STEP5, {1: 0}, 191)
    return root


def _meta_notes(stored: Stored) -> None:
    _skipped([("only-in-meta", "listed in meta.json, not in the tree", True)])(stored)
    assert folder_notes(stored.record) == "object id(s) 2 in the masks, not in meta.json", folder_notes(stored.record)
    other = next(i for i in stored.items if Path(i.uri).name == "not-in-meta")
    assert other.notes == ("not in meta.json: no object categories",), other.notes


def trial_cases() -> list[Case]:
    """What a new user's trial found (issue 20's follow-up), each as a class with its oracle."""
    planar_rgb, planar_rgb_shown = _deep_tiff(3, 120, 2, planar=2)
    planar_rgba, planar_rgba_shown = _deep_tiff(4, 121, 2, planar=2)
    white, white_shown = _deep_tiff(1, 122, 0)
    cmyk, cmyk_shown = _deep_tiff(4, 123, 5)
    cmyk_planar, cmyk_planar_shown = _deep_tiff(4, 124, 5, planar=2)
    grey_alpha, _ = _deep_tiff(2, 125, 1)
    ms = [f"cam_{1_700_000_000_000 + round(i * 1000 / 30)}.jpg" for i in range(5)]
    one_object = lambda t: object_ids(t, {1: 0})  # noqa: E731 - one-line level makers read best inline
    two_objects = lambda t: object_ids(t, {1: 0, 2: 0}) if t != 1 else object_ids(t, {2: 0})  # noqa: E731
    return [
        Case("jpeg-mpo-gain-map", _folder("mpo", _mpo(110), "jpg"), Viewed(),
             record={"image_notes": {MORE_PICTURES: FRAMES_PER_FOLDER}}),
        Case("tiff-multipage", _folder("tiff-pages", lambda t: pil_bytes(Image.fromarray(pattern(t, 111)), "TIFF", save_all=True,
                                                                  append_images=[Image.fromarray(pattern(t + 1, 111))]),
                                       "tif"), Fails("00000.tif holds 2 pictures")),
        Case("tiff-rgb16-planar", _folder("tiff16-planar", planar_rgb, "tif"), Property(_samples_shown(planar_rgb_shown)),
             record={"bit_depth": 16}),
        Case("tiff-rgba16-planar", _folder("tiff16-rgba-planar", planar_rgba, "tif"),
             Property(_samples_shown(planar_rgba_shown))),
        Case("tiff-rgb8-planar", _folder("tiff8-planar", lambda t: tiff_bytes(pattern(t, 126), 2, planar=2), "tif"),
             Property(_samples_shown(lambda t: pattern(t, 126)))),
        Case("tiff-grey16-white-is-zero", _folder("tiff16-white", white, "tif"), Property(_samples_shown(white_shown))),
        Case("tiff-grey8-white-is-zero", _folder("tiff8-white", lambda t: tiff_bytes(pattern(t, 127)[..., :1], 0), "tif"),
             Property(_samples_shown(lambda t: np.repeat(255 - pattern(t, 127)[..., :1], 3, -1)))),
        Case("tiff-cmyk16", _folder("tiff16-cmyk", cmyk, "tif"), Property(_samples_shown(cmyk_shown)),
             record={"image_modes": ["CMYK"], "bit_depth": 16}),
        Case("tiff-cmyk16-planar", _folder("tiff16-cmyk-planar", cmyk_planar, "tif"),
             Property(_samples_shown(cmyk_planar_shown))),
        # PIL opens no 16-bit grey+alpha TIFF: the reason says it is a TIFF, not "not an image".
        Case("tiff-greyalpha16", _folder("tiff16-greyalpha", grey_alpha, "tif"),
             Fails("00000.tif is a TIFF of a kind vmac's image reader (PIL) does not open")),
        Case("tiff-signed16", _folder("tiff-signed", lambda t: tiff_bytes(
            (pattern(t, 128, top=65535)[..., :1].astype(np.int32) - 32768).astype(np.int16), 1, sample_format=2), "tif"),
            Fails("holds signed 16-bit integer samples (negative values)")),
        Case("numbering-ms-timestamps", _folder("ms", _image("RGB", 129, "JPEG"), names=ms), Viewed(),
             record={"numbering_step": 33, "numbering_gaps": []}),
        Case("numbering-ms-timestamps-fps", _folder("ms-fps", _image("RGB", 130, "JPEG"), names=ms),
             Property(_even_clock([i / 30 for i in range(5)], 1e-3)), params=DecodeParams(short_side=0, fps=1000),
             record={"frame_rate_mode": "constant", "numbering_gaps": []}),
        Case("numbering-repeats", _folder("repeats", _image("RGB", 131), names=["1.png", "01.png", "2.png"]),
             Property(_repeats_noted), record={"numbering_step": None, "frame_names": ["01.png", "1.png", "2.png"]}),
        Case("two-name-prefixes", _two_prefixes, Property(_split_by_prefix), sequence="frame_[0-9]*"),
        Case("gif-stills", _folder("gif-stills", lambda t: pil_bytes(Image.fromarray(pattern(t, 132)), "GIF"), "gif"),
             Viewed(), record={"image_modes": ["P"]}),
        Case("gif-animated-beside-stills", _gif_stills_and_an_animation, Property(_gif_items), sequence="gifs"),
        Case("jpeg-missing-eoi", _missing_eoi(2), Property(_as_complete_file), record={"image_notes": {NO_EOI: 1}}),
        Case("jpeg-cut-before-eoi", _missing_eoi(3), Fails("00001.jpg is not a readable image")),
        Case("jpeg-cut-in-data-no-eoi", _missing_eoi(200), Fails("00001.jpg is not a readable image")),
        Case("jpeg-progressive-missing-eoi", _folder("prog-eoi", lambda t: _image("RGB", 133, "JPEG", progressive=True)(t)
                                                     [:-2 if t == 1 else None], "jpg"),
             Fails("00001.jpg is not a readable image")),
        Case("jpeg-jfif-and-jpe-names", _folder("jfif", _image("RGB", 134, "JPEG"),
                                                names=["00000.jpe", "00001.jfif", "00002.jpg"]), Viewed()),
        Case("grey-masks-0-128", lambda f: grey_tree(f, "grey128", lambda t: one_object(t) * 128),
             Viewed(masks=True, levels={128: 1}), sequence="seq", record={"object_ids": [1]}),
        Case("grey-masks-0-1", lambda f: grey_tree(f, "grey1", one_object), Viewed(masks=True, levels={}),
             sequence="seq", record={"object_ids": [1]}),
        Case("grey16-masks-0-65535", lambda f: grey_tree(f, "grey16", lambda t: one_object(t).astype(np.uint16) * 65535, 16),
             Viewed(masks=True, levels={65535: 1}), sequence="seq", record={"object_ids": [1]}),
        Case("grey-ids-one-object-out-of-view", lambda f: grey_tree(f, "grey-ids", two_objects),
             Viewed(masks=True, levels={}), sequence="seq", record={"object_ids": [1, 2]}),
        Case("grey-ids-void-band", lambda f: grey_tree(f, "grey-void", lambda t: _band(two_objects(t))),
             Viewed(masks=True, levels={}), sequence="seq", record={"object_ids": [1, 2]}),
        Case("grey-binary-void-band", lambda f: grey_tree(f, "grey128-void", lambda t: _band(one_object(t) * 128)),
             Viewed(masks=True, levels={128: 1}), sequence="seq", record={"object_ids": [1]}),
        Case("grey16-ids-above-254", lambda f: grey_tree(f, "grey16-300", lambda t: two_objects(t).astype(np.uint16) * 150, 16),
             Fails("annotations: grey levels 150, 300 are neither object ids (1-31) nor one object with soft edges"), sequence="seq"),
        Case("grey-ids-above-31-apart", lambda f: grey_tree(f, "grey-100-200", lambda t: two_objects(t) * 100),
             Fails("grey levels 100, 200 are neither object ids (1-31) nor one object with soft edges"), sequence="seq"),
        Case("grey-soft-edge-0-255", lambda f: grey_tree(f, "soft255", lambda t: _soft_edge(one_object(t), 255)),
             Viewed(masks=True, levels=dict.fromkeys(range(1, 256), 1)), sequence="seq",
             record={"object_ids": [1], "label_reading": _SOFT_READING}),
        Case("grey-soft-edge-0-128-void-band", lambda f: grey_tree(f, "soft128", lambda t: _band(_soft_edge(one_object(t), 128))),
             Viewed(masks=True, levels=dict.fromkeys(range(1, 255), 1)), sequence="seq", record={"object_ids": [1]}),
        Case("annotation-zero-byte", _bad_annotation("ann-empty", lambda d: (d / "00001.png").write_bytes(b"")),
             Fails("annotation 00001.png is empty (0 bytes)"), sequence="seq"),
        Case("annotation-not-an-image", _bad_annotation("ann-random", lambda d: (d / "00002.png").write_bytes(b"junk" * 50)),
             Fails("annotation 00002.png is not an image"), sequence="seq"),
        Case("annotation-jpeg", _bad_annotation("ann-jpeg", _jpeg_annotation),
             Fails("annotation 00000.jpg is a JPEG: lossy compression changes the ids"), sequence="seq"),
        Case("davis2016-official-lists", lambda f: davis_lists(f, "D16", {
            "480p/train.txt": _pairs("bear", "bmx"), "480p/trainval.txt": _pairs("bear", "bmx", "cows"),
            "480p/val.txt": _pairs("cows")}), Property(_davis_2016_lists), sequence="cows",
            record={"split": "val", "splits": ["trainval", "val"], "dataset_splits": ["train", "trainval", "val"]}),
        Case("davis-list-bom-and-crlf", lambda f: davis_lists(f, "bom", {"2017/val.txt": "\ufeffbear\r\nbmx\r\ncows\r\n"}),
             Property(_layouts({s: ("davis", "val") for s in ("bear", "bmx", "cows")})), sequence="bear"),
        Case("davis-dev-list-only", lambda f: davis_lists(f, "dev", {"480p/dev.txt": _pairs("bear", "bmx", "cows")}),
             Property(_layouts({s: ("davis", "dev") for s in ("bear", "bmx", "cows")})), sequence="bmx",
             record={"split": "dev", "dataset_splits": ["dev"]}),
        Case("davis-480p-and-full-resolution", lambda f: davis_lists(f, "both-res", {"2017/val.txt": "bear\n"}, ("bear",),
                                                                     _full_resolution_beside),
             Property(_full_resolution_left_out), sequence="bear", record={"width": W, "height": H}),
        Case("davis-list-names-a-missing-sequence", lambda f: davis_lists(f, "missing", {"2017/val.txt": "bear\ngone\n"},
                                                                          ("bear",)),
             Property(_skipped([("gone", "named in ImageSets/2017/val.txt (split val), not in the tree", True)])),
             sequence="bear"),
        Case("ytvos-meta-inconsistent", ytvos_inconsistent, Property(_meta_notes), sequence="listed",
             record={"object_ids": [1, 2], "object_categories": {1: "cat"}}),
    ]


def cases() -> list[Case]:
    return image_cases() + layout_cases() + trial_cases()
