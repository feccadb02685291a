"""The label palette of DAVIS annotations and results (PASCAL VOC's colour map).

DAVIS-2017 stores object ids as palette ("P" mode) PNGs with this palette; its evaluation code
reads the indices, so predicted masks written with it (``--save-masks``) are read the same way.
"""

from __future__ import annotations


def _voc_palette() -> bytes:
    """The PASCAL VOC colour map that DAVIS annotations use: id i → colour from i's bits."""
    palette = bytearray()
    for index in range(256):
        r = g = b = 0
        code = index
        for bit in range(8):
            r |= ((code >> 0) & 1) << (7 - bit)
            g |= ((code >> 1) & 1) << (7 - bit)
            b |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        palette += bytes((r, g, b))
    return bytes(palette)


DAVIS_PALETTE = _voc_palette()
