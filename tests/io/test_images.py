"""The image-decoding path's rules on tiny inputs: the bit-depth rule, EXIF orientations against
PIL's, the numbering of frame names (gaps) and the clock --fps gives a folder."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from tasks.io.frame_files import describe_gaps, frame_times, numbering
from tasks.io.images import ORIENTATIONS, orient, to_8bit


def test_bit_depth_rule_spans_the_whole_range_and_rounds_half_up():
    v = np.arange(65536, dtype=np.uint16)
    got = to_8bit(v, 16)
    assert got[0] == 0 and got[-1] == 255 and got[257] == 1
    assert np.array_equal(got, np.floor(v.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8))
    assert np.all(np.diff(got.astype(int)) >= 0), "monotonic"
    assert np.array_equal(to_8bit(np.arange(4096), 12), np.floor(np.arange(4096) * 255 / 4095 + 0.5).astype(np.uint8))


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_orient_matches_pils_exif_transpose(orientation):
    pixels = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", exif=exif.tobytes())
    shown = np.asarray(ImageOps.exif_transpose(Image.open(buffer)))
    assert np.array_equal(orient(pixels, orientation), shown)
    assert np.array_equal(orient(pixels[..., 0], orientation), shown[..., 0]), "label ids turn with their frame"


def test_numbering_finds_the_step_and_the_gaps():
    assert numbering(["00000.jpg", "00005.jpg", "00010.jpg"]).step == 5
    gapped = numbering(["f_0001.png", "f_0002.png", "f_0005.png", "f_0006.png", "f_0010.png"])
    assert gapped.step == 1 and [(g.frame, g.before, g.missing) for g in gapped.gaps] == [
        (2, "f_0002.png", 2), (4, "f_0006.png", 3)]
    assert describe_gaps(gapped.gaps) == ("2 gaps in the numbering (5 frames missing: after f_0002.png 2, "
                                          "after f_0006.png 3)")
    assert numbering(["b.png", "a.png"]).numbers is None
    assert numbering(["3.png", "1.png"]).numbers is None, "numbers that do not increase are no clock"


def test_fps_clock_follows_the_file_numbers():
    assert np.allclose(frame_times(3, (0, 1, 4), 10.0), [0, 0.1, 0.4])
    assert np.allclose(frame_times(3, None, 10.0), [0, 0.1, 0.2])
