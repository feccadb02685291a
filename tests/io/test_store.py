"""The store layout on disk and in memory://, exactly as storage_schemas declares it: version
folders, snapshots and the branch's commit files."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
import zarr

from storage_schemas.layout import (
    FRAMES,
    SCHEMA_VERSION,
    STORE_FORMAT,
    STORE_INFO_ATTR,
    VIDEO_RECORD_ATTR,
    VIDEOS_GROUP,
)
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from storage_schemas.snapshots import VERSION_ID, CommitInfo, SnapshotData
from tasks.io.shards import ShardWriter
from tasks.io.store import LegacyStoreError, open_snapshot, open_store, read_catalog
from tests.stores import new_video_folder, put_video


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
    open_store(store_url)
    group = new_video_folder(store_url, _record("v1"))
    frames = np.random.default_rng(0).integers(0, 256, (11, 6, 8, 3), dtype=np.uint8)
    writer = ShardWriter(group, FRAMES, (6, 8, 3), "uint8", shard_frames=4, expected_frames=5)
    for block in (frames[:3], frames[3:4], frames[4:10], frames[10:]):
        writer.append(block)
    assert writer.close() == 11
    assert "v1" not in read_catalog(store_url)  # written, not committed: no reader sees it
    put_video(store_url, _record("v1", Status.complete), group.basename)
    reread = open_snapshot(store_url).group("v1")[FRAMES]
    assert reread.shape == (11, 6, 8, 3)
    np.testing.assert_array_equal(reread[:], frames)
    assert reread.chunks == (1, 6, 8, 3) and reread.shards == (4, 6, 8, 3)


def test_catalog_reads_records_and_flags_unreadable_ones(store_url):
    open_store(store_url)
    put_video(store_url, _record("ok", Status.complete))
    broken = _record("broken").model_dump(mode="json")
    del broken["source_uri"]  # a record this vmac cannot parse
    from storage_schemas.snapshots import CatalogEntry
    from tasks.io.snapshots import commit

    commit(store_url, lambda videos, v: ({**videos, "broken": CatalogEntry(version=None, record=broken)}, v), "test")
    catalog = read_catalog(store_url)
    assert catalog["ok"].status is Status.complete
    assert catalog["broken"] is None


def test_layout_on_disk(tmp_path):
    path = tmp_path / "layout.zarr"
    open_store(str(path))
    group = new_video_folder(str(path), _record("v1"))
    writer = ShardWriter(group, FRAMES, (4, 4, 3), "uint8", shard_frames=4, expected_frames=8)
    writer.append(np.full((8, 4, 4, 3), 7, np.uint8))
    writer.close()
    put_video(str(path), _record("v1", Status.complete), group.basename)
    root_meta = json.loads((path / "zarr.json").read_text())
    assert root_meta["zarr_format"] == 3 and root_meta["node_type"] == "group"
    info = root_meta["attributes"][STORE_INFO_ATTR]
    assert info["schema_version"] == SCHEMA_VERSION == 3 and info["store_format"] == STORE_FORMAT == 2
    # The video's arrays live in a version folder named by its start time.
    assert VERSION_ID.fullmatch(group.basename)
    version = path / VIDEOS_GROUP / "v1" / group.basename
    frames_meta = json.loads((version / FRAMES / "zarr.json").read_text())
    assert frames_meta["shape"] == [8, 4, 4, 3] and frames_meta["data_type"] == "uint8"
    sharding = frames_meta["codecs"][0]
    assert sharding["name"] == "sharding_indexed"
    assert sharding["configuration"]["chunk_shape"] == [1, 4, 4, 3]
    # One object per shard along time: c/0/0/0/0 and c/1/0/0/0.
    shards = sorted(p.relative_to(version / FRAMES).as_posix() for p in (version / FRAMES / "c").rglob("*") if p.is_file())
    assert shards == ["c/0/0/0/0", "c/1/0/0/0"]
    assert zarr.open_group(str(path), mode="r")[f"{VIDEOS_GROUP}/v1/{group.basename}"].attrs[VIDEO_RECORD_ATTR][
        "video_id"] == "v1"
    # The branch: commit 0 made the empty store, commit 1 the video; each names its snapshot file.
    commits = sorted((path / "refs" / "main").iterdir())
    assert [p.name for p in commits] == ["000000000000.json", "000000000001.json"]
    last = CommitInfo.model_validate_json(commits[-1].read_text())
    assert last.seq == 1 and last.added == ["v1"] and (path / "refs" / "main.json").read_text() == "1"
    snapshot = SnapshotData.model_validate_json((path / "snapshots" / f"{last.snapshot}.json").read_text())
    assert snapshot.videos["v1"].version == group.basename and snapshot.videos["v1"].record["status"] == "complete"
    assert not (path / ".vmac-locks").exists()


def test_open_missing_store_read_only_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no vmac store"):
        open_store(str(tmp_path / "nothing.zarr"), mode="r")
    with pytest.raises(FileNotFoundError, match="no vmac store"):
        open_snapshot(str(tmp_path / "nothing.zarr"))


def test_many_writers_creating_one_new_store_at_once(tmp_path):
    """Dask workers and concurrent runs may all open a store that does not exist yet."""
    from concurrent.futures import ThreadPoolExecutor

    path = str(tmp_path / "race.zarr")
    with ThreadPoolExecutor(8) as pool:
        roots = list(pool.map(lambda _: open_store(path), range(16)))
    assert len(roots) == 16
    assert set(read_catalog(path)) == set()
    assert (tmp_path / "race.zarr" / VIDEOS_GROUP / "zarr.json").exists()
    assert [p.name for p in (tmp_path / "race.zarr" / "refs" / "main").iterdir()] == ["000000000000.json"]


def test_a_store_written_before_snapshots_is_refused_with_the_command_that_converts_it(tmp_path):
    from tests.io.legacy import write_legacy_store

    path = str(tmp_path / "old.zarr")
    write_legacy_store(path, {"clip": 5})
    for attempt in (lambda: open_snapshot(path), lambda: read_catalog(path), lambda: open_store(path)):
        with pytest.raises(LegacyStoreError, match=r"vmac migrate .*old\.zarr"):
            attempt()
