"""docs/architecture.md, "Reading a store from zarr-python and xarray": its code blocks run as
written (the store's path put in for ``data/sample.zarr``), on a store with a re-decoded video, and
read what vmac reads."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from storage_schemas.layout import FRAMES
from storage_schemas.records import DecodeParams
from tasks.ingest.video import ingest_video
from tasks.io.sources import expand_sources
from tasks.io.store import open_snapshot

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
SECTION = "### Reading a store from zarr-python and xarray"


def doc_blocks() -> list[str]:
    """The python code blocks of the section, in order."""
    text = DOC.read_text()
    section = text[text.index(SECTION):]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_documented_reads_return_the_snapshots_frames(tmp_path, make_video):
    pytest.importorskip("xarray", reason="xarray (the dev extra) is not installed")
    for seed, name in enumerate(("a.mp4", "b.mp4")):
        make_video(name, frames=8, height=32, width=48, seed=seed)
    store = str(tmp_path / "s.zarr")
    items = expand_sources([str(tmp_path / "videos")])
    for item in items:
        ingest_video(item, store, DecodeParams(short_side=32, shard_frames=4))
    ingest_video(items[0], store, DecodeParams(short_side=24, shard_frames=4))  # a re-decode: a second version
    tip = open_snapshot(store)
    blocks = doc_blocks()
    assert len(blocks) == 2
    namespace: dict = {}
    exec(blocks[0].replace("data/sample.zarr", store), namespace)  # noqa: S102 - the documentation's own code
    video_id = namespace["video_id"]
    expected = tip.group(video_id)[FRAMES][:]
    np.testing.assert_array_equal(namespace["frames"][:], expected)
    np.testing.assert_array_equal(namespace["dataset"]["frames"].values, expected)
    assert namespace["dataset"]["frames"].dims == ("t", "y", "x", "channel")
    assert namespace["snapshot_id"] == tip.id
    namespace = {}
    exec(blocks[1].replace("data/sample.zarr", store), namespace)  # noqa: S102
    np.testing.assert_array_equal(namespace["frames"][:], expected)
