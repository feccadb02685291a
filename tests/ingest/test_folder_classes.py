"""What the folder matrix cannot hold: what a run's summary says about a frame folder (gaps,
orphan annotations, orientation), and a decompression bomb failing its own folder while the
others are stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from storage_schemas.records import DecodeParams, Status
from tasks.ingest.report import summary_markdown
from tasks.ingest.video import ingest_video
from tasks.io.sources import scan_sources
from tasks.io.store import read_catalog
from tests.ingest.folder_conformance import bomb_png, exif_bytes, pattern

PARAMS = DecodeParams(short_side=0, shard_frames=4)


def _frames(folder: Path, names: list[str], seed: int, **save) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t, name in enumerate(names):
        Image.fromarray(pattern(t, seed)).save(folder / name, **save)


def test_the_summary_shows_gaps_orphan_annotations_and_orientation(tmp_path):
    root = tmp_path / "DAVIS"
    _frames(root / "JPEGImages/480p/cows", ["00000.jpg", "00001.jpg", "00004.jpg", "00005.jpg"], 1,
            exif=exif_bytes(6))
    (root / "Annotations/480p/cows").mkdir(parents=True)
    for name in ("00000.png", "00003.png"):  # 00003 has no frame: it cannot be stored
        Image.fromarray(np.zeros((40, 24), np.uint8), mode="L").save(root / "Annotations/480p/cows" / name)
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("cows\n")
    [item] = scan_sources([str(root)]).items
    outcome = ingest_video(item, str(tmp_path / "s.zarr"), PARAMS)
    assert outcome.action == "decoded"
    assert outcome.reason == ("1 gap in the numbering (2 frames missing: after 00001.jpg 2); 1 annotation file(s) "
                              "without a frame, not stored (00003.png); EXIF orientation applied: rotated 90° "
                              "clockwise ×4")
    markdown = summary_markdown(str(tmp_path / "s.zarr"), [outcome])
    assert "1 gap in the numbering (2 frames missing: after 00001.jpg 2)" in markdown
    record = read_catalog(str(tmp_path / "s.zarr"))[outcome.video_id]
    assert (record.width, record.height, record.orphan_annotations) == (24, 40, ["00003.png"])


def test_a_decompression_bomb_fails_its_own_folder_and_the_others_are_stored(tmp_path):
    _frames(tmp_path / "in" / "good", ["0.png", "1.png"], 2)
    bombs = tmp_path / "in" / "bomb"
    _frames(bombs, ["0.png"], 3)
    (bombs / "1.png").write_bytes(bomb_png(30000, 30000))
    _frames(tmp_path / "in" / "webp-and-tiff", ["0.webp", "1.tif"], 4, **{})
    items = scan_sources([str(tmp_path / "in")]).items
    outcomes = {Path(item.uri).name: ingest_video(item, str(tmp_path / "s.zarr"), PARAMS) for item in items}
    assert outcomes["good"].action == "decoded" and outcomes["webp-and-tiff"].action == "decoded"
    assert outcomes["bomb"].action == "failed"
    assert outcomes["bomb"].reason == ("1.png is too large to decode (Image size (900000000 pixels) exceeds limit of "
                                       "178956970 pixels, could be decompression bomb DOS attack.)")
    catalog = read_catalog(str(tmp_path / "s.zarr"))
    assert sorted(r.status.value for r in catalog.values()) == [Status.complete.value] * 2 + [Status.failed.value]
