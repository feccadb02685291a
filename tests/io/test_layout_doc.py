"""The store layout is written once, in storage_schemas/layout.py's docstring, and that text is
held to the code: the root attributes to ``StoreInfo``, every array to its constant and its
dimension names, the folders to their constants, the codec to the default frame codec; no other
document restates the layout."""

from __future__ import annotations

import re
from pathlib import Path

from storage_schemas import layout, snapshots
from storage_schemas.codecs import DEFAULT_FRAME_CODEC
from storage_schemas.records import StoreInfo

ROOT = Path(__file__).resolve().parents[2]
DOC = layout.__doc__
TREE = DOC[DOC.index("```\n") + 4:DOC.rindex("```")]


def test_the_root_attributes_are_store_info():
    assert f"attrs: {layout.STORE_INFO_ATTR}, a StoreInfo" in TREE
    named = re.search(r"StoreInfo \(([^)]*)\)", TREE.replace("\n", " "))
    fields = [name.split(":")[0].strip() for name in named.group(1).split(",")]
    assert [" ".join(f.split()) for f in fields] == list(StoreInfo.model_fields)


def axes(text: str) -> int:
    """How many axes the shape that opens ``text`` ("(T, ceil(H / 8), …)…") has: top-level commas."""
    depth, count, seen = 0, 0, False
    for char in text:
        depth += (char == "(") - (char == ")")
        if depth == 0:
            break
        if depth == 1 and char == ",":
            count += 1
        seen = seen or (depth == 1 and char.isalnum())
    return count + seen - (text[:text.index(")")].rstrip().endswith(","))


def test_every_array_is_named_with_its_dimensions():
    arrays = dict(re.findall(r"^ {4}(\w+) +(?:uint8|float32|float64) (\(.*)$", TREE, re.M))
    assert set(arrays) == set(layout.DIMENSIONS) == {layout.FRAMES, layout.TIMESTAMPS, layout.MASKS,
                                                      layout.KEYPOINTS, layout.MOTION}
    for name, shape in arrays.items():
        assert axes(shape) == len(layout.DIMENSIONS[name]), (name, shape)


def test_the_folders_and_the_codec_are_the_codes():
    for folder in (f"{layout.VIDEOS_GROUP}/<video_id>/<version>/", f"{snapshots.SNAPSHOTS_DIR}/",
                   f"{snapshots.REFS_DIR}/{snapshots.BRANCH}/", f"{snapshots.REFS_DIR}/{snapshots.TAGS_DIR}/",
                   f"{layout.LINEAGE_DIR}/"):
        assert re.search(rf"^  {re.escape(folder)}", TREE, re.M), folder
    assert f"frame_codec (default {DEFAULT_FRAME_CODEC})" in " ".join(TREE.split())
    assert f"{layout.MOTION_CELL}×{layout.MOTION_CELL}-pixel" in TREE


def test_no_other_document_restates_the_layout():
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
    restating = [str(path.relative_to(ROOT)) for path in documents
                 if re.search(r"^\s*(<store>\.zarr/|videos/<video_id>/)", path.read_text(encoding="utf-8"), re.M)]
    assert not restating, f"the layout is written in storage_schemas/layout.py only; restated in {restating}"
