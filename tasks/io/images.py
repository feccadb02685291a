"""One decoding path for every image file a frame folder holds, frames and annotations alike.

What a viewer shows is what is stored, or the file fails with a one-line reason
(``LayoutError``, the input's own fault):

- **Bytes.** An empty file fails as empty ("00003.jpg is empty (0 bytes)"), bytes no image
  format recognises as "not an image", damaged or truncated data as "not a readable image (…)".
  A JPEG that lacks only its end marker (EOI: cameras and some writers leave it out) is read
  whole and the record says so: its pixels are the ones the file holds, which is known because
  they do not depend on what would follow the data (``complete_without_eoi``). A JPEG cut short
  anywhere else still fails as truncated.
- **Size.** Width × height is read from the header first; above ``MAX_IMAGE_PIXELS`` the file
  fails before anything is decoded (a decompression bomb fails its own video, never the run).
- **One picture per file.** An animated WebP, GIF or PNG, or a multi-page TIFF, fails: a frame
  folder's files are its frames. An MPO (a phone's JPEG with a gain map or depth picture after
  the main one) is not an animation: a viewer shows its first picture, which is stored, and the
  record says the file held more.
- **Orientation.** The EXIF orientation (tag 274; JPEG, PNG ``eXIf``, WebP, TIFF) is applied as
  viewers apply it (the transposes of ``PIL.ImageOps.exif_transpose``) and returned, so the
  caller records it. Annotations go through the same path, so a label stays on its pixel.
- **Bit depth.** Samples deeper than 8 bits are read as their header lays them out and scaled to
  8 bits by one rule (``tasks.io.image_samples``: ``v8 = round(v × 255 / (2^b − 1))``, never
  clipped; WhiteIsZero inverted, CMYK converted). Signed, floating-point and 32-bit samples fail,
  saying which.
- **Colour.** Grey, palette, CMYK (Adobe's inverted CMYK included) and YCbCr become RGB by
  PIL's conversion. Alpha is dropped: the colour channels as stored, as ffmpeg's rgb24
  conversion of a video with alpha does (nothing is composited over a colour the file does not
  name).
- **Annotations** (``decode_labels``) give their stored values: palette indices, or grey levels
  (up to 16 bits), which ``tasks.io.frame_files`` reads as ids for the whole sequence at once.
  Every failure of an annotation file says "annotation". A JPEG annotation fails: lossy
  compression changes the ids along every edge.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from tasks.io.faults import reason_of
from tasks.io.image_samples import PNG_SIGNATURE, SampleError, deep_rgb, unscalable
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
# Formats whose further pictures are not frames: a viewer shows the first (MPO: a phone's main
# picture, then a gain map, a depth map or a second eye).
FIRST_PICTURE_FORMATS = frozenset({"MPO"})
# What a frame file needed, as the record counts it (``VideoRecord.image_notes``).
MORE_PICTURES = "held more than one picture (MPO: a gain map or depth after the main picture): the first stored"
NO_EOI = "JPEG without its end marker (EOI): its data is complete, read whole"
_EOI = b"\xff\xd9"
# First bytes of the formats vmac reads, to tell a file of a known format PIL cannot open from
# bytes that are no image.
_SIGNATURES = ((b"II*\0", "TIFF"), (b"MM\0*", "TIFF"), (PNG_SIGNATURE, "PNG"), (b"\xff\xd8\xff", "JPEG"),
               (b"GIF8", "GIF"))
GREY_MODES = ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "I;16N")


class LayoutError(ValueError):
    """A frame folder whose files cannot make one video (unreadable images, mixed sizes, labels
    that do not fit): the input's own fault; the message is the one-line reason stored in the catalog."""


@dataclass(frozen=True)
class Picture:
    """One decoded image file, oriented as a viewer shows it.

    ``pixels``: (H, W, 3) uint8 RGB (``decode_frame``) or (H, W) label values (``decode_labels``:
    uint8 palette indices, or grey levels as uint16). ``orientation``: the EXIF orientation
    applied (1: none). ``bit_depth``: bits per sample in the file. ``mode``: PIL's mode of the
    file as opened (``I;16``, ``CMYK``, ``P``…). ``notes``: what the file needed (``MORE_PICTURES``,
    ``NO_EOI``).
    """

    pixels: np.ndarray
    orientation: int
    bit_depth: int
    mode: str
    notes: tuple[str, ...] = ()

    @property
    def is_grey(self) -> bool:
        """Label values are grey levels (not palette indices)."""
        return self.mode in GREY_MODES


def read_bytes(uri: str) -> bytes:
    """The file's bytes. An OSError with an errno (permission, I/O) is the machine's and propagates."""
    with open_uri(uri) as handle:
        return handle.read()


def open_image(data: bytes, name: str) -> tuple[Image.Image, int]:
    """(PIL's image of ``data`` with only its header read, its EXIF orientation); LayoutError for
    an empty file, bytes that are no image, a picture above MAX_IMAGE_PIXELS, or a file holding
    several frames. The orientation is read first: PIL's TIFF reader forgets it once it has
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
        known = next((fmt for magic, fmt in _SIGNATURES if data.startswith(magic)), None)
        if known:
            raise LayoutError(f"{name} is a {known} of a kind vmac's image reader (PIL) does not open (its sample "
                              "layout or compression); convert it to 8- or 16-bit grey or RGB") from None
        raise LayoutError(f"{name} is not an image (no image format recognises its bytes)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise LayoutError(f"{name} is not a readable image ({reason_of(exc)})") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise LayoutError(f"{name} is {width}×{height} = {width * height:,} pixels, above the limit of "
                          f"{MAX_IMAGE_PIXELS:,} (a decompression bomb, or a picture no frame should be)")
    orientation = orientation_of(image)
    pictures = getattr(image, "n_frames", 1)
    if pictures > 1 and image.format not in FIRST_PICTURE_FORMATS:
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
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR":
        return max(int(data[24]), 8) if data[25] != 3 else 8  # colour type 3: palette indices
    if image.format == "TIFF":
        bits = image.tag_v2.get(258, 8)
        return int(max(bits) if isinstance(bits, tuple) else bits)
    return {"I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I;16S": 16, "I": 32, "F": 32}.get(image.mode, 8)


def decode_frame(uri: str) -> Picture:
    """The RGB picture of one frame file, as a viewer shows it (the module docstring's rules)."""
    name = os.path.basename(uri)
    data = read_bytes(uri)
    image, orientation = open_image(data, name)
    notes = (MORE_PICTURES,) if getattr(image, "n_frames", 1) > 1 else ()
    try:
        rgb, left = _rgb(image, data, name, orientation)
    except OSError as exc:
        whole = complete_without_eoi(image, data)
        if whole is None:
            raise LayoutError(f"{name} is not a readable image ({reason_of(exc)})") from None
        image, orientation = open_image(whole, name)
        rgb, left = _rgb(image, whole, name, orientation)
        notes += (NO_EOI,)
    return Picture(orient(rgb, left), orientation, sample_depth(image, data), image.mode, notes)


def _rgb(image: Image.Image, data: bytes, name: str, orientation: int) -> tuple[np.ndarray, int]:
    """((H, W, 3) uint8 RGB as stored, the orientation still to apply). OSError for damaged or
    truncated data; LayoutError for samples vmac does not scale."""
    bits = sample_depth(image, data)
    if bits > 16 or image.mode in ("I", "F", "I;16S"):
        raise LayoutError(f"{name} holds {unscalable(image, bits) or f'{bits}-bit samples vmac does not scale'}")
    try:
        if bits > 8:  # read by libpng or tifffile, which leave the orientation to vmac
            return deep_rgb(image, data, name, bits), orientation
        image.load()
        return np.asarray(image.convert("RGB")), _still_to_orient(image, orientation)
    except SampleError as exc:
        raise LayoutError(str(exc)) from None
    except (SyntaxError, ValueError) as exc:
        raise LayoutError(f"{name} is not a readable image ({reason_of(exc)})") from None


def complete_without_eoi(image: Image.Image, data: bytes) -> bytes | None:
    """``data`` with the JPEG end marker (EOI) appended when that is all it lacks, else None.

    Appending EOI to a JPEG cut short anywhere would also decode (libjpeg fills what is missing),
    so the test is whether the pixels depend on what follows the data: a sequential JPEG whose
    entropy-coded data is complete decodes the same whether EOI or other bytes come next (the
    decoder reads no further than its last block), while a cut one decodes the following bytes
    as its missing blocks. Progressive JPEGs, whose last scans may read no bits for a run of
    blocks, are not tested and stay failed."""
    if image.format != "JPEG" or data[-2:] == _EOI or image.info.get("progressive"):
        return None
    decoded = []
    for tail in (_EOI, b"\x55" * 64 + _EOI, b"\xaa" * 64 + _EOI):
        try:
            decoded.append(np.asarray(Image.open(io.BytesIO(data + tail)).convert("RGB")))
        except (OSError, SyntaxError, ValueError):
            return None
    return data + _EOI if all(np.array_equal(decoded[0], d) for d in decoded[1:]) else None


def decode_labels(uri: str) -> Picture:
    """The label values (H, W) of one annotation file as stored, oriented as its frame is shown:
    uint8 palette indices, or uint16 grey levels (grey, grey+alpha's grey, bilevel 0/1).
    ``tasks.io.frame_files.label_rule`` turns grey levels into ids for a whole sequence. Every
    LayoutError names the file as an annotation."""
    name = os.path.basename(uri)
    with _annotation(name):
        data = read_bytes(uri)
        image, orientation = open_image(data, name)
        if image.format in ("JPEG", "MPO"):
            raise LayoutError(f"{name} is a JPEG: lossy compression changes the ids along every edge; "
                              "annotations must be lossless (PNG)")
        image.load()
        left = _still_to_orient(image, orientation)
        values = _label_values(image, name)
    return Picture(orient(values, left), orientation, sample_depth(image, data), image.mode)


def annotation_mode(uri: str) -> str:
    """PIL's mode of an annotation file (``P``, ``L``, ``I;16``…), from its header alone."""
    name = os.path.basename(uri)
    with _annotation(name):
        return open_image(read_bytes(uri), name)[0].mode


@contextlib.contextmanager
def _annotation(name: str) -> Iterator[None]:
    """Failures reading an annotation file as LayoutErrors that say "annotation"; the machine's
    own OSErrors (with an errno: permission, I/O) propagate, to be retried."""
    try:
        yield
    except LayoutError as exc:
        raise LayoutError(f"annotation {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise LayoutError(f"annotation {name} is not a readable image ({reason_of(exc)})") from None


def _label_values(image: Image.Image, name: str) -> np.ndarray:
    """(H, W) values of a loaded annotation image: uint8 palette indices, or uint16 grey levels."""
    if image.mode == "P":
        return np.asarray(image, dtype=np.uint8)
    if image.mode not in GREY_MODES:
        raise LayoutError(f"{name} holds {image.mode} colour pixels; label ids are palette or grey images")
    grey = np.asarray(image.getchannel(0) if image.mode == "LA" else image)
    if grey.dtype.kind == "b":
        return grey.astype(np.uint16)
    if grey.size and (grey.min() < 0 or grey.max() > 65535):
        raise LayoutError(f"{name} holds grey values {grey.min()}-{grey.max()}; label ids are 0-254")
    return grey.astype(np.uint16)

