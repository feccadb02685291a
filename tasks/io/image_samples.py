"""Samples deeper than 8 bits (16-bit PNG and TIFF: depth, thermal, microscopy) read as the file's
own header lays them out, and scaled to 8 bits by one stated rule.

- **Layout by the header.** A PNG's samples are read by libpng (imagecodecs), a TIFF's by
  tifffile, which returns them as stored: a planar TIFF (PlanarConfiguration 2) comes as
  (S, H, W) and is put back to (H, W, S) by that tag. What was decoded is held to the header
  (height, width and samples per pixel from PNG's IHDR or TIFF's tags 257, 256 and 277) before
  anything is stored; a file whose samples do not fit its own header fails, saying both.
- **Photometric interpretation** (TIFF tag 262): WhiteIsZero grey is inverted (as PIL inverts
  it at 8 bits); CMYK (Separated, 4 inks) becomes RGB by PIL's conversion after the bit-depth
  rule, the same conversion an 8-bit CMYK file gets; grey, grey+alpha, RGB and RGBA keep their
  colour channels. Other interpretations (YCbCr, CIELab, a palette deeper than 8 bits) fail by name.
- **Bit depth** (``to_8bit``): ``v8 = round(v × 255 / (2^b − 1))``, half up (no value of any b
  ties, so rounding down or up at .5 never decides), through a 2^b-entry table applied a band of
  rows at a time: the decode needs about the decoded samples plus their 8-bit copy, never a
  64-bit temporary per sample.
- **Sample formats** PIL or the tags mark signed (TIFF SampleFormat 2) or floating-point (3), and
  unsigned samples deeper than 16 bits, have no range this rule scales: they fail, saying which.
"""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
import tifffile
from PIL import Image

from tasks.io.faults import reason_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type → samples per pixel (grey, RGB, palette, grey+alpha, RGBA).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# TIFF PhotometricInterpretation values vmac reads at more than 8 bits.
WHITE_IS_ZERO, BLACK_IS_ZERO, RGB, SEPARATED = 0, 1, 2, 5
_ROWS_PER_BAND = 256  # rows scaled at once: bounds the table lookup's index temporaries


class SampleError(ValueError):
    """A deep file whose samples vmac cannot turn into 8-bit RGB; the message is the reason."""


def header_shape(image: Image.Image, data: bytes) -> tuple[int, int, int]:
    """(height, width, samples per pixel) as the file's header declares them, as stored (before
    any EXIF orientation): PNG's IHDR, TIFF's ImageLength, ImageWidth and SamplesPerPixel."""
    if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        return height, width, _PNG_SAMPLES.get(data[25], 0)
    tags = image.tag_v2
    return int(tags.get(257, 0)), int(tags.get(256, 0)), int(tags.get(277, 1))


def sample_format(image: Image.Image) -> str:
    """``unsigned``, ``signed`` or ``floating-point``: TIFF's SampleFormat (tag 339), else what
    PIL's mode holds (``I`` is 32-bit signed, ``F`` 32-bit float)."""
    if image.format == "TIFF" and 339 in image.tag_v2:
        value = image.tag_v2[339]
        value = value[0] if isinstance(value, tuple) else value
        return {2: "signed", 3: "floating-point"}.get(int(value), "unsigned")
    return {"I": "signed", "F": "floating-point", "I;16S": "signed"}.get(image.mode, "unsigned")


def unscalable(image: Image.Image, bits: int) -> str | None:
    """Why the samples have no range ``to_8bit`` scales (signed, floating-point, deeper than 16
    bits), in words for the reason; None when they do."""
    kind = sample_format(image)
    if kind == "floating-point":
        return (f"{bits}-bit floating-point samples, which have no range to scale into 8 bits; convert them to "
                "unsigned 8- or 16-bit images")
    if kind == "signed":
        return (f"signed {bits}-bit integer samples (negative values), which have no unsigned range to scale into "
                "8 bits; convert them to unsigned 8- or 16-bit images")
    if bits > 16:
        return f"{bits}-bit samples; vmac scales at most 16 bits into 8: convert them to unsigned 8- or 16-bit images"
    return None


def to_8bit(samples: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned samples of ``bits`` (≤ 16) bits scaled to uint8 over the whole range:
    round(v × 255 / (2^bits − 1)), half up. Nothing is clipped: 0 stays 0 and 2^bits − 1 becomes 255."""
    top = (1 << bits) - 1
    table = ((np.arange(top + 1, dtype=np.uint32) * 510 + top) // (2 * top)).astype(np.uint8)
    samples = np.asarray(samples)
    out = np.empty(samples.shape, np.uint8)
    if samples.ndim < 2:
        return table[samples] if samples.size else out
    for start in range(0, samples.shape[0], _ROWS_PER_BAND):
        out[start:start + _ROWS_PER_BAND] = table[samples[start:start + _ROWS_PER_BAND]]
    return out


def deep_rgb(image: Image.Image, data: bytes, name: str, bits: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a PNG or TIFF whose samples are ``bits`` (9-16) deep, as stored
    (not yet oriented). Raises SampleError (the reason, naming the file) when the samples do
    not fit the header or their interpretation is not one vmac reads."""
    samples = _decoded(image, data, name)
    height, width, channels = header_shape(image, data)
    if samples.shape != (height, width, channels):
        raise SampleError(f"{name}: its samples decode as {' × '.join(map(str, samples.shape))}, its header says "
                          f"{height} × {width} × {channels} (height × width × samples); vmac cannot lay them out")
    photometric = int(image.tag_v2.get(262, BLACK_IS_ZERO)) if image.format == "TIFF" else None
    eight = to_8bit(samples, bits)
    del samples
    if photometric == WHITE_IS_ZERO:
        np.subtract(255, eight, out=eight)  # white is zero: inverted, as PIL inverts 8-bit WhiteIsZero
    if photometric == SEPARATED:
        if channels != 4 or int(image.tag_v2.get(332, 1)) != 1:
            raise SampleError(f"{name} holds {channels} separated inks that are not CMYK (InkSet "
                              f"{image.tag_v2.get(332, 1)}); vmac reads CMYK only")
        return np.asarray(Image.fromarray(eight, "CMYK").convert("RGB"))
    if photometric not in (None, WHITE_IS_ZERO, BLACK_IS_ZERO, RGB):
        raise SampleError(f"{name} holds {bits}-bit samples in TIFF photometric interpretation {photometric} "
                          "(YCbCr, CIELab or a palette deeper than 8 bits); vmac reads grey, RGB and CMYK")
    return colour_of(eight)


def colour_of(samples: np.ndarray) -> np.ndarray:
    """(H, W, 3) from 8-bit samples (H, W, 1) or (H, W) grey, (H, W, 2) grey+alpha, (H, W, 3) RGB or
    (H, W, 4) RGBA: the colour channels; alpha is dropped."""
    if samples.ndim == 2:
        samples = samples[..., None]
    colour = samples[..., :1] if samples.shape[-1] in (1, 2) else samples[..., :3]
    return np.ascontiguousarray(np.broadcast_to(colour, (*samples.shape[:2], 3)))


def _decoded(image: Image.Image, data: bytes, name: str) -> np.ndarray:
    """The samples (H, W, S) as the file stores them: libpng for a PNG; tifffile for a TIFF,
    whose planar layout (S, H, W) is put back by PlanarConfiguration."""
    try:
        if data[:8] == PNG_SIGNATURE:
            samples = np.asarray(imagecodecs.png_decode(data))
        else:
            with tifffile.TiffFile(io.BytesIO(data)) as tiff:
                page = tiff.pages[0]
                samples = page.asarray()
                if int(page.planarconfig) == 2 and samples.ndim == 3:
                    samples = np.moveaxis(samples, 0, -1)
    except Exception as exc:  # noqa: BLE001 - libpng and tifffile raise their own classes for damaged data
        raise SampleError(f"{name} is not a readable image ({reason_of(exc)})") from None
    return samples[..., None] if samples.ndim == 2 else samples
