"""Source expansion and video ids: what gets ingested, under which name."""

from __future__ import annotations

import re

import fsspec
import pytest

from storage_schemas.records import SourceKind
from tasks.io.items import video_id_for
from tasks.io.sources import expand_sources, hash_source

SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "/abs/path", "a b c", "été à l'ombre", "$(rm -rf ~);`x`|&>", "..", ".hidden", "", "日本語"],
)
def test_video_id_is_safe_and_cannot_escape(name):
    vid = video_id_for(name, f"/src/{name}")
    assert SAFE.match(vid), vid
    assert "/" not in vid and ".." not in vid.split("-")[0][:2]


def test_video_ids_differ_for_same_name_in_different_folders():
    assert video_id_for("clip", "/a/clip.mp4") != video_id_for("clip", "/b/clip.mp4")
    assert video_id_for("clip", "/a/clip.mp4") == video_id_for("clip", "/a/clip.mp4")


def test_folder_walk_finds_videos_recursively_and_skips_other_files(tmp_path, make_video):
    make_video("a.mp4")
    make_video("b.MKV", folder=tmp_path / "videos" / "deeper")
    (tmp_path / "videos" / "readme.txt").write_text("not a video")
    items = expand_sources([str(tmp_path / "videos")])
    assert [i.uri.rsplit("/", 1)[-1] for i in items] == ["a.mp4", "b.MKV"]
    assert all(i.kind is SourceKind.video and i.error is None for i in items)


def test_explicit_file_is_tried_whatever_its_extension_and_missing_path_is_reported(tmp_path):
    odd = tmp_path / "clip.txt"
    odd.write_text("x")
    items = expand_sources([str(odd), str(tmp_path / "missing.mp4")])
    by_name = {i.uri.rsplit("/", 1)[-1]: i for i in items}
    assert by_name["clip.txt"].error is None
    assert by_name["missing.mp4"].error == "unreadable path: no such file or folder"


def test_glob_and_duplicates(tmp_path, make_video):
    a = make_video("a.mp4")
    make_video("b.mp4")
    items = expand_sources([str(tmp_path / "videos" / "*.mp4"), str(a)])
    assert len(items) == 2


def test_davis_layout_becomes_one_frame_video_per_sequence_with_masks_and_split(tmp_path):
    import numpy as np
    from PIL import Image

    root = tmp_path / "DAVIS"
    for seq in ("bear", "cows"):
        (root / "JPEGImages/480p" / seq).mkdir(parents=True)
        (root / "Annotations/480p" / seq).mkdir(parents=True)
        for t in range(3):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "JPEGImages/480p" / seq / f"{t:05d}.jpg")
        Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(root / "Annotations/480p" / seq / "00000.png")
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("bear\n")
    items = expand_sources([str(tmp_path)])
    assert [i.layout for i in items] == ["davis", "davis"]
    bear = items[0]
    assert bear.kind is SourceKind.frames and len(bear.frame_uris) == 3
    assert bear.mask_uris[0].endswith("00000.png") and bear.mask_uris[1:] == (None, None)
    assert bear.split == "val" and items[1].split is None


def test_memory_url_sources_and_hash(tmp_path):
    fs = fsspec.filesystem("memory")
    fs.pipe("/src-test/one.mp4", b"abc")
    fs.pipe("/src-test/sub/two.webm", b"defg")
    items = expand_sources(["memory://src-test"])
    assert [i.uri for i in items] == ["memory:///src-test/one.mp4", "memory:///src-test/sub/two.webm"]
    assert [i.uri for i in expand_sources(["memory://src-test/*.mp4"])] == ["memory:///src-test/one.mp4"]
    digest, size = hash_source(items[0])
    assert size == 3 and digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
