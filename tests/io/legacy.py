"""Stores as vmac wrote them before snapshots (store format 1), for the migration tests.

``write_legacy_store`` writes the layout the ingest of commit ``LEGACY_COMMIT`` wrote, key for key:
the root group's ``vmac_store`` attributes (no ``store_format``), the ``videos``, ``lineage`` and
``.vmac-locks`` groups, and per video a group holding its record in its attributes and its arrays
(``frames`` written by the same ``ShardWriter``, ``timestamps``), with a lock file beside.
``tests/io/test_migrate.py`` also migrates a store written by that commit's own code, when the
repository's history holds it.
"""

from __future__ import annotations

import os

import numpy as np
import zarr
from zarr.storage import LocalStore

from storage_schemas.codecs import frame_codec
from storage_schemas.records import DecodeParams, SourceKind, Status, VideoRecord
from tasks.io.shards import ShardWriter
from tests.conftest import moving_frames

# The last commit whose ingest wrote stores of format 1 (records in the video groups).
LEGACY_COMMIT = "5f45cbd"
CODEC = "lz4"


def write_legacy_store(path: str, videos: dict[str, int], size: tuple[int, int] = (16, 24),
                       validated: bool = False) -> dict[str, np.ndarray]:
    """A format-1 store at ``path`` with ``videos`` (video id → frame count) complete; returns each
    video's frames (T, H, W, 3). ``validated``: a validation stamp on the root, as format 1 kept it."""
    root = zarr.open_group(LocalStore(path), mode="w")
    root.attrs["vmac_store"] = {"schema_version": 3, "name": os.path.basename(path), "created_by": "vmac",
                                "frame_codec": CODEC}
    for name in ("videos", "lineage", ".vmac-locks"):
        root.require_group(name)
    stored = {}
    for seed, (video_id, count) in enumerate(videos.items()):
        frames = moving_frames(count, *size, seed=seed)
        params = DecodeParams(shard_frames=4, frame_codec=CODEC)
        record = VideoRecord(video_id=video_id, source_uri=f"/videos/{video_id}.mp4", source_kind=SourceKind.video,
                             layout="file", status=Status.writing, decode_params=params, sha256=f"{seed:064x}",
                             decode_key=f"{seed + 100:064x}")
        group = root["videos"].create_group(video_id)
        group.attrs["vmac"] = record.model_dump(mode="json")
        writer = ShardWriter(group, "frames", (*size, 3), "uint8", 4, count, codec=frame_codec(CODEC))
        writer.append(frames)
        writer.close()
        group.create_array("timestamps", data=np.arange(count, dtype=np.float64) / 12, chunks=(count,))
        done = record.model_copy(update={"status": Status.complete, "frame_count": count, "height": size[0],
                                         "width": size[1], "fps": 12.0, "frames_sha256": writer.sha256.hexdigest()})
        group.attrs["vmac"] = done.model_dump(mode="json")
        with open(os.path.join(path, ".vmac-locks", f"{video_id}.lock"), "a"):
            pass
        stored[video_id] = frames
    if validated:
        root.attrs["vmac_validation"] = {"passed": True, "validation_id": "old", "catalog_fingerprint": "x"}
    return stored
