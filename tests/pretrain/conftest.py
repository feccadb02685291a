"""Real ingested stores for the pair index and loader tests."""

from __future__ import annotations

import numpy as np
import pytest

from storage_schemas.layout import FRAMES
from storage_schemas.records import DecodeParams, Status
from tasks.ingest.video import ingest_video
from tasks.io.ffmpeg import encode_video
from tasks.io.sources import expand_sources
from tasks.io.store import open_snapshot, read_catalog
from tests.conftest import moving_frames
from tests.stores import put_video

SIZE = 24
# Shards of 4 frames, so pairs cross shard boundaries and videos end in a partial shard.
PARAMS = DecodeParams(short_side=0, shard_frames=4)
LENGTHS = {"a.mp4": 11, "b.mp4": 6, "c.mp4": 3}


def ingest_folder(videos_dir, store: str) -> dict[str, str]:
    """Ingest every file of ``videos_dir``; returns file name → video id."""
    ids = {}
    for item in expand_sources([str(videos_dir)]):
        outcome = ingest_video(item, store, PARAMS)
        ids[item.uri.rsplit("/", 1)[-1]] = outcome.video_id
    return ids


def write_videos(folder, lengths=LENGTHS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (name, frames) in enumerate(lengths.items()):
        encode_video(moving_frames(frames, 32, 48, seed=seed), str(folder / name), 12)
    (folder / "broken.mp4").write_bytes(b"")  # ingests as a failed record


@pytest.fixture(scope="session")
def disk_store(tmp_path_factory):
    """A local store: three complete videos, one failed, one stuck in ``writing``."""
    root = tmp_path_factory.mktemp("pairs")
    write_videos(root / "videos")
    store = str(root / "s.zarr")
    ids = ingest_folder(root / "videos", store)
    encode_video(moving_frames(8, 32, 48, seed=9), str(root / "stuck.mp4"), 12)
    [stuck] = expand_sources([str(root / "stuck.mp4")])
    ids["stuck.mp4"] = ingest_video(stuck, store, PARAMS).video_id
    record = read_catalog(store)[ids["stuck.mp4"]]
    put_video(store, record.model_copy(update={"status": Status.writing}))
    return store, ids


def stored_frames(store: str, video_id: str) -> np.ndarray:
    return open_snapshot(store).group(video_id)[FRAMES][:]
