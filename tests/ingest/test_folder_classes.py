"""What the folder matrix cannot hold: what a run's summary says about a frame folder (gaps,
orphan annotations, orientation), a decompression bomb failing its own folder while the others
are stored, a FIFO in a dataset tree named, lone GIFs, and a stored sequence taking its tree's
corrected split lists."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from storage_schemas.records import DecodeParams, Status
from tasks.ingest.report import summary_markdown
from tasks.ingest.video import ingest_video
from tasks.io.sources import scan_sources
from tasks.io.store import open_snapshot, read_catalog
from tests.ingest.folder_conformance import bomb_png, exif_bytes, pattern
from tests.stores import put_video

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


def test_a_fifo_among_a_dataset_trees_annotations_is_named(tmp_path):
    root = tmp_path / "tree"
    _frames(root / "JPEGImages/480p/seq", [f"{t:05d}.jpg" for t in range(3)], 5)
    (root / "Annotations/480p/seq").mkdir(parents=True)
    Image.fromarray(np.zeros((24, 40), np.uint8), mode="L").save(root / "Annotations/480p/seq/00000.png")
    os.mkfifo(root / "Annotations/480p/seq/00001.png")
    [item] = scan_sources([str(root)]).items
    outcome = ingest_video(item, str(tmp_path / "s.zarr"), PARAMS)
    assert outcome.action == "failed"
    assert outcome.reason == "unreadable: tree/Annotations/480p/seq/00001.png: not a regular file (a FIFO (named pipe))"


def test_a_lone_still_gif_is_an_image_and_a_lone_animated_one_a_video(tmp_path):
    """A one-picture GIF is a still image, ignored alone as a single PNG is; an animated GIF is a
    video (ffmpeg decodes its pictures)."""
    (tmp_path / "still").mkdir()
    Image.fromarray(pattern(0, 6)).save(tmp_path / "still" / "only.gif")
    (tmp_path / "anim").mkdir()
    Image.fromarray(pattern(0, 7)).save(tmp_path / "anim" / "a.gif", save_all=True,
                                        append_images=[Image.fromarray(pattern(t, 7)) for t in (1, 2)])
    scan = scan_sources([str(tmp_path)])
    assert [(Path(i.uri).name, i.kind.value) for i in scan.items] == [("a.gif", "video")]
    assert [(Path(s.uri).name, s.counts) for s in scan.skipped] == [("only.gif", False)]
    assert "a single image" in scan.skipped[0].reason
    outcome = ingest_video(scan.items[0], str(tmp_path / "s.zarr"), PARAMS)
    assert (outcome.action, outcome.frames) == ("decoded", 3)


def test_a_stored_sequence_takes_its_trees_corrected_split_without_decoding_again(tmp_path):
    """Stores ingested when DAVIS-2016's val sequences were read as trainval: a second ingest of
    the unchanged tree rewrites the record's split lists only (the frames stay; action 'skipped')."""
    root = tmp_path / "DAVIS"
    _frames(root / "JPEGImages/480p/cows", [f"{t:05d}.jpg" for t in range(3)], 8)
    (root / "ImageSets/480p").mkdir(parents=True)
    for split in ("trainval", "val"):
        (root / f"ImageSets/480p/{split}.txt").write_text("".join(
            f"/JPEGImages/480p/cows/{t:05d}.jpg /Annotations/480p/cows/{t:05d}.png\n" for t in range(3)))
    store = str(tmp_path / "s.zarr")
    [item] = scan_sources([str(root)]).items
    assert ingest_video(item, store, PARAMS).action == "decoded"
    stored = read_catalog(store)[item.video_id]
    version = put_video(store, stored.model_copy(update={"split": "trainval", "splits": [], "dataset_splits": None}))
    again = ingest_video(item, store, PARAMS)
    tip = open_snapshot(store)
    record = tip.records()[item.video_id]
    assert again.action == "skipped" and tip.entries[item.video_id].version == version  # the same frames
    assert (record.split, record.splits, record.dataset_splits) == ("val", ["trainval", "val"], ["trainval", "val"])
