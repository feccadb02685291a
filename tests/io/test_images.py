"""The image-decoding path's rules on tiny inputs: the bit-depth rule and its memory, EXIF
orientations against PIL's, the numbering of frame names (gaps, uneven steps, repeats) and the
clock --fps gives a folder."""

from __future__ import annotations

import io
import tracemalloc

import imagecodecs
import numpy as np
import pytest
from PIL import Image, ImageOps

from tasks.io.frame_files import describe_gaps, frame_times, numbering
from tasks.io.image_samples import to_8bit
from tasks.io.images import ORIENTATIONS, decode_frame, orient


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
    assert np.allclose(frame_times(3, numbering(["0.png", "1.png", "4.png"]), 10.0), [0, 0.1, 0.4])
    assert np.allclose(frame_times(3, numbering(["a.png", "b.png", "c.png"]), 10.0), [0, 0.1, 0.2])


@pytest.mark.parametrize("fps", [23.976, 24, 25, 29.97, 30, 50, 59.94, 60])
def test_numbers_that_advance_unevenly_by_rounding_are_no_gap_and_a_real_gap_is_found(fps):
    """Millisecond timestamps as names (round(i × 1000 / fps): 0, 33, 67, 100…) step by 33 or 34:
    no gap, and --fps gives an even clock. Numbers removed from them (a seeded subset of runs) are
    exactly the gaps found, each with its count."""
    rng = np.random.default_rng(int(fps * 1000))
    stamps = [round(i * 1000 / fps) for i in range(120)]
    even = numbering([f"cam_{1_700_000_000_000 + ms}.jpg" for ms in stamps])
    assert even.gaps == () and even.step in (int(1000 // fps), int(1000 // fps) + 1), (even.step, even.gaps)
    times = frame_times(len(stamps), even, 1000.0)
    assert np.allclose(np.diff(times), np.diff(times).mean(), atol=1e-9), "an even clock"
    # Each time is within rounding (a number, 1 ms) of its name, and the clock runs at the true rate.
    assert np.abs(times - np.asarray(stamps) / 1000).max() <= 1e-3
    assert abs(times[-1] - (len(stamps) - 1) / fps) < 0.1e-3
    removed: list[tuple[int, int]] = []  # (index of the first missing frame, run length)
    keep = np.ones(len(stamps), bool)
    for start in sorted(rng.choice(np.arange(2, 110, 6), 4, replace=False).tolist()):
        length = int(rng.integers(1, 4))
        keep[start:start + length] = False
        removed.append((start, length))
    kept = [s for s, k in zip(stamps, keep) if k]
    gapped = numbering([f"{1_700_000_000_000 + ms}.jpg" for ms in kept])
    index_of = {s: i for i, s in enumerate(kept)}
    want = [(index_of[stamps[start + length]], length) for start, length in removed]
    assert [(g.frame, g.missing) for g in gapped.gaps] == want


def test_repeated_numbers_are_named():
    found = numbering(["01.png", "1.png", "2.png", "10.png"])
    assert found.numbers is None and found.repeats == ("01.png", "1.png")


def test_a_16bit_decode_peaks_near_twice_its_decoded_size(tmp_path):
    """16-bit RGB, 768 × 1024: the samples (4.7 MB) and their 8-bit copy; the 64-bit arithmetic
    it replaced peaked at about 108 bytes a pixel (54× the samples' 6 bytes)."""
    height, width = 768, 1024
    samples = np.random.default_rng(0).integers(0, 65536, (height, width, 3), dtype=np.uint16)
    path = tmp_path / "deep.png"
    path.write_bytes(imagecodecs.png_encode(samples, level=1))
    tracemalloc.start()
    try:
        picture = decode_frame(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    decoded = samples.nbytes
    assert np.array_equal(picture.pixels, to_8bit(samples, 16))
    assert peak <= 2.2 * decoded + path.stat().st_size, f"peak {peak / decoded:.2f}× the decoded samples"
