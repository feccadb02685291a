"""One decoding path for every image file a frame folder holds, frames and annotations alike.

What a viewer shows is what is stored, or the file fails with a one-line reason
(``LayoutError``, the input's own fault):

- **Bytes.** An empty file fails as empty ("00003.jpg is empty (0 bytes)"), bytes no image
  format recognises as "not an image", damaged or truncated data as "not a readable image (…)".
- **Size.** Width × height is read from the header first; above ``MAX_IMAGE_PIXELS`` the file
  fails before anything is decoded (a decompression bomb fails its own video, never the run).
- **One picture per file.** An animated WebP or PNG, or a multi-page TIFF, fails: a frame
  folder's files are its frames.
- **Orientation.** The EXIF orientation (tag 274; JPEG, PNG ``eXIf``, WebP, TIFF) is applied as
  viewers apply it (the transposes of ``PIL.ImageOps.exif_transpose``) and returned, so the
  caller records it. Annotations go through the same path, so a label stays on its pixel.
- **Bit depth** (``to_8bit``). Samples deeper than 8 bits (16-bit PNG and TIFF: depth,
  thermal, microscopy) are scaled to 8 bits over the file's whole declared range,
  ``v8 = round(v × 255 / (2^b − 1))`` (half up; for b = 16 that is ``(v + 128) // 257``). No
  sample is clipped, and one value maps to one level in every frame (a per-frame stretch would
  flicker). ffmpeg's gray16/rgb48 to rgb24 conversion maps the same range the same way. 32-bit
  integer and floating-point samples have no range to scale by and fail, saying so.
- **Colour.** Grey, palette, CMYK (Adobe's inverted CMYK included) and YCbCr become RGB by
  PIL's conversion. Alpha is dropped: the colour channels as stored, as ffmpeg's rgb24
  conversion of a video with alpha does (nothing is composited over a colour the file does not
  name).
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import imagecodecs
import numpy as np
from PIL import Image, UnidentifiedImageError

from storage_schemas.layout import NOT_ANNOTATED
from tasks.io.faults import reason_of
from tasks.io.uris import open_uri

# 2^27 pixels (a 16384 × 8192 panorama): an RGB frame of that size is 400 MB decoded, 800 MB at
# 16 bits. PIL refuses above 2 × 89,478,485 on its own; this limit is vmac's and comes first.
MAX_IMAGE_PIXELS = 1 << 27
EXIF_ORIENTATION = 0x0112
# What each EXIF orientation asks a viewer to do, in words (the record and the summary say it).
ORIENTATIONS = {
    1: "as stored", 2: "mirrored left-right", 3: "rotated 180°", 4: "mirrored top-bottom",
    5: "transposed", 6: "rotated 90° clockwise", 7: "transversed", 8: "rotated 90° anticlockwise",
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class LayoutError(ValueError):
    """A frame folder whose files cannot make one video (unreadable images, mixed sizes, labels
    that do not fit): the input's own fault; the message is the one-line reason stored in the catalog."""


@dataclass(frozen=True)
class Picture:
    """One decoded image file, oriented as a viewer shows it.

    ``pixels``: (H, W, 3) uint8 RGB (``decode_frame``) or (H, W) uint8 label ids
    (``decode_labels``). ``orientation``: the EXIF orientation applied (1: none). ``bit_depth``:
    bits per sample in the file. ``mode``: PIL's mode of the file as opened (``I;16``, ``CMYK``, ``P``…).
    """

    pixels: np.ndarray
    orientation: int
    bit_depth: int
    mode: str


def read_bytes(uri: str) -> bytes:
    """The file's bytes. An OSError with an errno (permission, I/O) is the machine's and propagates."""
    with open_uri(uri) as handle:
        return handle.read()


def open_image(data: bytes, name: str) -> tuple[Image.Image, int]:
    """(PIL's image of ``data`` with only its header read, its EXIF orientation); LayoutError for
    an empty file, bytes that are no image, a picture above MAX_IMAGE_PIXELS, or a file holding
    several pictures. The orientation is read first: PIL's TIFF reader forgets it once it has
    counted or loaded the pictures."""
    if not data:
        raise LayoutError(f"{name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # PIL warns above 89 Mpx; vmac's own limit below decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise LayoutError(f"{name} is too large to decode ({reason_of(exc)})") from None
    except UnidentifiedImageError:
        raise LayoutError(f"{name} is not an image (no image format recognises its bytes)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise LayoutError(f"{name} is not a readable image ({reason_of(exc)})") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise LayoutError(f"{name} is {width}×{height} = {width * height:,} pixels, above the limit of "
                          f"{MAX_IMAGE_PIXELS:,} (a decompression bomb, or a picture no frame should be)")
    orientation = orientation_of(image)
    pictures = getattr(image, "n_frames", 1)
    if pictures > 1:
        raise LayoutError(f"{name} holds {pictures} pictures (an animation or a multi-page file); "
                          "each file of a frame folder is one frame")
    return image, orientation


def orientation_of(image: Image.Image) -> int:
    """The EXIF orientation (1-8) the file declares; 1 when it declares none or a value outside 1-8."""
    try:
        value = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1  # damaged EXIF: PIL's viewer path ignores it too
    return value if value in ORIENTATIONS else 1


def displayed_size(image: Image.Image, orientation: int) -> tuple[int, int]:
    """(width, height) as a viewer shows the image: the stored size, swapped for orientations 5-8.
    (PIL reports a TIFF's size already oriented, so a TIFF's stored size is read from its tags.)"""
    width, height = image.size
    if image.format == "TIFF" and 256 in image.tag_v2 and 257 in image.tag_v2:
        width, height = int(image.tag_v2[256]), int(image.tag_v2[257])
    return (height, width) if orientation >= 5 else (width, height)


def _still_to_orient(image: Image.Image, orientation: int) -> int:
    """The orientation left to apply after PIL loaded ``image``: PIL's TIFF reader applies the
    orientation itself as it loads (and drops the tag), the other readers leave the pixels as stored."""
    return 1 if orientation != 1 and orientation_of(image) == 1 else orientation


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """``pixels`` (H, W[, C]) as EXIF ``orientation`` asks a viewer to show them (PIL's
    ``exif_transpose``: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE,
    6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90)."""
    steps = {
        1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(steps[orientation](pixels))


def sample_depth(image: Image.Image, data: bytes) -> int:
    """Bits per sample the file declares: the PNG header's bit depth, TIFF's BitsPerSample, else
    what PIL's mode holds (8 for the modes video frames come in)."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
        return max(int(data[24]), 8) if data[25] != 3 else 8  # colour type 3: palette indices
    if image.format == "TIFF":
        bits = image.tag_v2.get(258, 8)
        return int(max(bits) if isinstance(bits, tuple) else bits)
    return {"I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}.get(image.mode, 8)


def to_8bit(samples: np.ndarray, bits: int) -> np.ndarray:
    """Samples of ``bits`` bits scaled to uint8 over the whole range: round(v × 255 / (2^bits − 1)),
    half up. Nothing is clipped: 0 stays 0 and 2^bits − 1 becomes 255."""
    top = (1 << bits) - 1
    wide = np.asarray(samples, dtype=np.uint64)
    return ((wide * 255 * 2 + top) // (2 * top)).astype(np.uint8)


def _deep_samples(image: Image.Image, data: bytes, name: str) -> np.ndarray:
    """(H, W[, C]) uint16 samples of a 16-bit file. PIL keeps 16 bits only for greyscale
    (``I;16``): it reduces 16-bit RGB, RGBA and grey+alpha to 8 bits by dropping the low byte,
    so those are decoded again by imagecodecs (libpng, libtiff)."""
    if image.mode.startswith("I;16"):
        image.load()
        return np.asarray(image).astype(np.uint16)
    try:
        decode = imagecodecs.png_decode if data[:8] == _PNG_SIGNATURE else imagecodecs.tiff_decode
        return np.asarray(decode(data))
    except Exception as exc:  # noqa: BLE001 - the codecs raise their own classes for damaged data
        raise LayoutError(f"{name} is not a readable image ({reason_of(exc)})") from None


def decode_frame(uri: str) -> Picture:
    """The RGB picture of one frame file, as a viewer shows it (the module docstring's rules)."""
    name = os.path.basename(uri)
    data = read_bytes(uri)
    image, orientation = open_image(data, name)
    bits = sample_depth(image, data)
    try:
        if bits > 16 or image.mode in ("I", "F"):
            raise LayoutError(f"{name} holds {bits}-bit {'floating-point' if image.mode == 'F' else 'integer'} "
                              "samples, which have no range to scale into 8 bits; convert them to 16- or 8-bit images")
        if bits > 8:
            loads = image.mode.startswith("I;16")  # read by PIL, which orients a TIFF as it loads
            samples = to_8bit(_deep_samples(image, data, name), bits)
            rgb, left = _as_rgb(samples), _still_to_orient(image, orientation) if loads else orientation
        else:
            image.load()
            rgb, left = np.asarray(image.convert("RGB")), _still_to_orient(image, orientation)
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, LayoutError):
            raise
        raise LayoutError(f"{name} is not a readable image ({reason_of(exc)})") from None
    return Picture(orient(rgb, left), orientation, bits, image.mode)


def _as_rgb(samples: np.ndarray) -> np.ndarray:
    """(H, W, 3) from 8-bit samples (H, W) grey, (H, W, 2) grey+alpha, (H, W, 3) RGB or (H, W, 4) RGBA."""
    if samples.ndim == 2:
        samples = samples[..., None]
    channels = samples.shape[-1]
    colour = samples[..., :1] if channels in (1, 2) else samples[..., :3]
    return np.ascontiguousarray(np.broadcast_to(colour, (*samples.shape[:2], 3)))


def decode_labels(uri: str) -> Picture:
    """The label ids (H, W) uint8 of one annotation file, oriented as its frame is shown
    (``label_ids``' rules)."""
    name = os.path.basename(uri)
    data = read_bytes(uri)
    image, orientation = open_image(data, name)
    try:
        image.load()
        left = _still_to_orient(image, orientation)
        ids = label_ids(image)
    except LayoutError as exc:
        raise LayoutError(f"annotation {name}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise LayoutError(f"{name} is not a readable image ({reason_of(exc)})") from None
    return Picture(orient(ids, left), orientation, sample_depth(image, data), image.mode)


def label_ids(image: Image.Image) -> np.ndarray:
    """Ids (H, W) uint8 from an annotation image: palette indices (DAVIS object ids, VIP
    classes), greyscale 0/255 masks as 0/1, other grey values (8 or 16 bits) as ids below 255,
    grey+alpha by its grey channel, bilevel as 0/1. Ids are never scaled: they are names, not levels."""
    if image.mode == "P":
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "I;16N"):
        grey = np.asarray(image.getchannel(0) if image.mode == "LA" else image).astype(np.int64)
        if image.mode == "1":
            return grey.astype(np.uint8)
        values = np.unique(grey)
        if set(values.tolist()) <= {0, 255}:
            return (grey > 0).astype(np.uint8)
        if values.max() >= NOT_ANNOTATED or values.min() < 0:
            raise LayoutError(f"label ids must be 0-{NOT_ANNOTATED - 1}, found {values.min()}-{values.max()}")
        return grey.astype(np.uint8)
    raise LayoutError(f"unsupported annotation image mode {image.mode!r} (label ids are palette or grey images)")
