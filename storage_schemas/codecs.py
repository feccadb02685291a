"""Frame codecs: how a store keeps its frames, as data (chosen per store, recorded in it).

A store's codec is chosen when the store is created (``vmac ingest --frame-codec NAME``) and
recorded in its root attributes (``StoreInfo.frame_codec``); every ``frames`` array names its
codecs in its own Zarr metadata, which is what readers follow. Masks are always kept losslessly
(``MASK_CODEC``).

- **Lossless** codecs keep the decoded frames bit for bit: they change how bytes are kept, not what
  they are, so they are not part of a video's decode key.
- **Lossy** codecs (JPEG, JPEG XL at a stated quality, as the official code's JPEG folders are)
  change the stored values. Their name is part of the decode key, and a video's ``frames_sha256``
  is the hash of the frames as they decode from the store, not as ffmpeg delivered them.

Measured trade (frames/s in, bytes per frame, loader pairs/s out): README "Performance" and
``benchmarks/results/ingest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FrameCodec:
    """One way of keeping frames. ``kind``: ``blosc`` (numcodecs Blosc; ``config`` holds cname,
    clevel, shuffle) or ``image`` (an imagecodecs image format per frame; ``config`` holds format
    and its settings)."""

    name: str
    lossless: bool
    kind: str
    config: dict = field(default_factory=dict)
    description: str = ""


FRAME_CODECS: dict[str, FrameCodec] = {codec.name: codec for codec in (
    FrameCodec("zstd-3", True, "blosc", {"cname": "zstd", "clevel": 3, "shuffle": "noshuffle"},
               "Blosc zstd level 3, no shuffle (every store before codecs were recorded)"),
    FrameCodec("zstd-1", True, "blosc", {"cname": "zstd", "clevel": 1, "shuffle": "noshuffle"},
               "Blosc zstd level 1, no shuffle"),
    FrameCodec("zstd-1-bitshuffle", True, "blosc", {"cname": "zstd", "clevel": 1, "shuffle": "bitshuffle"},
               "Blosc zstd level 1 with bit shuffle (byte shuffle is a no-op on uint8)"),
    FrameCodec("lz4", True, "blosc", {"cname": "lz4", "clevel": 1, "shuffle": "noshuffle"},
               "Blosc lz4 level 1, no shuffle"),
    FrameCodec("lz4-bitshuffle", True, "blosc", {"cname": "lz4", "clevel": 1, "shuffle": "bitshuffle"},
               "Blosc lz4 level 1 with bit shuffle"),
    FrameCodec("qoi", True, "image", {"format": "qoi"}, "QOI, a fast lossless image format, one image per frame"),
    FrameCodec("jpeg-95", False, "image", {"format": "jpeg", "level": 95}, "JPEG quality 95 (lossy), 4:2:0"),
    FrameCodec("jpeg-90", False, "image", {"format": "jpeg", "level": 90}, "JPEG quality 90 (lossy), 4:2:0"),
    FrameCodec("jpegxl-90", False, "image", {"format": "jpegxl", "level": 90, "effort": 1},
               "JPEG XL quality 90, effort 1 (lossy)"),
)}

# What stores written before the codec was recorded hold.
LEGACY_FRAME_CODEC = "zstd-3"
# A new store's codec unless --frame-codec says otherwise: the best measured trade of ingest
# speed, store size and loader speed (README, "Performance").
DEFAULT_FRAME_CODEC = "lz4"
# Masks (object ids, mostly 0) compress far better than frames and must never be lossy.
MASK_CODEC = FRAME_CODECS["zstd-3"]


def frame_codec(name: str) -> FrameCodec:
    """The codec called ``name``; ValueError listing the known ones otherwise."""
    try:
        return FRAME_CODECS[name]
    except KeyError:
        raise ValueError(f"unknown frame codec {name!r}; known: {', '.join(FRAME_CODECS)}") from None
