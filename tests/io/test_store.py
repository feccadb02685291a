"""The store layout on disk and in memory://, exactly as storage_schemas declares it."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
import zarr

from storage_schemas.layout import (
    FRAMES,
    LOCKS_DIR,
    SCHEMA_VERSION,
    STORE_INFO_ATTR,
    VIDEO_RECORD_ATTR,
    VIDEOS_GROUP,
)
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from tasks.io.shards import ShardWriter
from tasks.io.store import open_store, read_catalog, reset_video, write_record


def _record(video_id: str, status=Status.writing) -> VideoRecord:
    return VideoRecord(
        video_id=video_id, source_uri="/x.mp4", source_kind=SourceKind.video, layout="file",
        status=status, decode_params=DecodeParams(shard_frames=4),
    )


@pytest.fixture(params=["local", "memory"])
def store_url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "s.zarr")
    return f"memory://store-{uuid.uuid4().hex}.zarr"


def test_shard_writer_round_trip_any_block_sizes(store_url):
    root = open_store(store_url)
    group = reset_video(root, "v1", _record("v1"))
    frames = np.random.default_rng(0).integers(0, 256, (11, 6, 8, 3), dtype=np.uint8)
    writer = ShardWriter(group, FRAMES, (6, 8, 3), "uint8", shard_frames=4, expected_frames=5)
    for block in (frames[:3], frames[3:4], frames[4:10], frames[10:]):
        writer.append(block)
    assert writer.close() == 11
    reread = open_store(store_url, mode="r")[f"{VIDEOS_GROUP}/v1/{FRAMES}"]
    assert reread.shape == (11, 6, 8, 3)
    np.testing.assert_array_equal(reread[:], frames)
    assert reread.chunks == (1, 6, 8, 3) and reread.shards == (4, 6, 8, 3)


def test_catalog_reads_records_and_flags_unreadable_ones(store_url):
    root = open_store(store_url)
    write_record(reset_video(root, "ok", _record("ok")), _record("ok", Status.complete))
    broken = reset_video(root, "broken", _record("broken"))
    broken.attrs[VIDEO_RECORD_ATTR] = {"video_id": "broken"}  # missing required fields
    catalog = read_catalog(store_url)
    assert catalog["ok"].status is Status.complete
    assert catalog["broken"] is None


def test_layout_on_disk(tmp_path):
    path = tmp_path / "layout.zarr"
    root = open_store(str(path))
    group = reset_video(root, "v1", _record("v1"))
    writer = ShardWriter(group, FRAMES, (4, 4, 3), "uint8", shard_frames=4, expected_frames=8)
    writer.append(np.full((8, 4, 4, 3), 7, np.uint8))
    writer.close()
    root_meta = json.loads((path / "zarr.json").read_text())
    assert root_meta["zarr_format"] == 3 and root_meta["node_type"] == "group"
    assert root_meta["attributes"][STORE_INFO_ATTR]["schema_version"] == SCHEMA_VERSION == 3
    frames_meta = json.loads((path / VIDEOS_GROUP / "v1" / FRAMES / "zarr.json").read_text())
    assert frames_meta["shape"] == [8, 4, 4, 3] and frames_meta["data_type"] == "uint8"
    sharding = frames_meta["codecs"][0]
    assert sharding["name"] == "sharding_indexed"
    assert sharding["configuration"]["chunk_shape"] == [1, 4, 4, 3]
    inner = {c["name"]: c.get("configuration") for c in sharding["configuration"]["codecs"]}
    assert inner["blosc"]["cname"] == "zstd" and inner["blosc"]["shuffle"] == "noshuffle"
    # One object per shard along time: c/0/0/0/0 and c/1/0/0/0.
    shards = sorted(p.relative_to(path / VIDEOS_GROUP / "v1" / FRAMES).as_posix()
                    for p in (path / VIDEOS_GROUP / "v1" / FRAMES / "c").rglob("*") if p.is_file())
    assert shards == ["c/0/0/0/0", "c/1/0/0/0"]
    assert (path / LOCKS_DIR / "zarr.json").exists()
    assert zarr.open_group(str(path), mode="r")[f"{VIDEOS_GROUP}/v1"].attrs[VIDEO_RECORD_ATTR]["video_id"] == "v1"


def test_open_missing_store_read_only_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no vmac store"):
        open_store(str(tmp_path / "nothing.zarr"), mode="r")


def test_many_writers_creating_one_new_store_at_once(tmp_path):
    """Dask workers and concurrent runs may all open a store that does not exist yet."""
    from concurrent.futures import ThreadPoolExecutor

    path = str(tmp_path / "race.zarr")
    with ThreadPoolExecutor(8) as pool:
        roots = list(pool.map(lambda _: open_store(path), range(16)))
    assert len(roots) == 16
    assert set(read_catalog(path)) == set()
    assert (tmp_path / "race.zarr" / VIDEOS_GROUP / "zarr.json").exists()
