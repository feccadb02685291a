"""Stores in states ingest does not make on its own (a record in another state, arrays in another
layout), built with the store's own primitives: a version folder (``tasks.io.store.new_version``)
and a commit (``tasks.io.snapshots.commit``)."""

from __future__ import annotations

import zarr

from storage_schemas.records import VideoRecord
from storage_schemas.snapshots import CatalogEntry
from tasks.io.snapshots import commit
from tasks.io.store import new_version, open_snapshot, open_store, write_record


def put_video(store: str, record: VideoRecord, version: str | None = None) -> str | None:
    """Commit ``record`` for ``record.video_id`` at the tip, naming ``version`` (an existing version
    folder; None: keep the one the tip names). Returns the version committed."""
    if version is None:
        entry = open_snapshot(store).entries.get(record.video_id)
        version = entry.version if entry is not None else None

    def edit(videos, validation):
        videos[record.video_id] = CatalogEntry(version=version, record=record.model_dump(mode="json"))
        return videos, validation

    commit(store, edit, "test", f"put {record.video_id}")
    return version


def new_video_folder(store: str, record: VideoRecord) -> zarr.Group:
    """A new version folder of ``record.video_id`` holding ``record``, writable, not yet committed
    (``put_video(store, record, group.basename)`` commits it)."""
    group = new_version(open_store(store), record.video_id)
    write_record(group, record)
    return group


def writable_group(store: str, video_id: str) -> zarr.Group:
    """The version folder the tip names for ``video_id``, opened for writing: what tests that damage
    stored data on purpose write into (vmac itself never writes a committed version)."""
    snapshot = open_snapshot(store)
    return open_store(store)[snapshot.path(video_id)]
