"""``vmac migrate``: a store written before snapshots (store format 1) converted in place, once.

Format 1 kept each video's record in its group's attributes and rewrote the group's arrays in
place on a re-decode. Converting moves each video's arrays into a version folder
(``videos/<video_id>/<version>/``, with the record in its attributes), commits the first
snapshot naming them all, and only then marks the root as format 2. Nothing is decoded again and
no frame byte changes: a move is a rename on a local disk (a copy, then a delete, on an object
store). The version folder's name is derived from the video (its record's time and id), so a
conversion that was interrupted is finished by running it again. Format 1's lock folder and its
validation stamp are removed; validate the store again before training on it.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

import zarr

from storage_schemas.layout import (
    LEGACY_LOCKS_DIR,
    STORE_FORMAT,
    STORE_INFO_ATTR,
    VIDEO_RECORD_ATTR,
    VIDEOS_GROUP,
)
from storage_schemas.records import StoreInfo
from storage_schemas.snapshots import CatalogEntry
from storage_schemas.validation import VALIDATION_ATTR
from tasks.io.lineage import code_version
from tasks.io.names import inside
from tasks.io.snapshots import commit
from tasks.io.store import open_root, open_store, store_info, version_path
from tasks.io.uris import filesystem, join, local_path, normalize


@dataclass(frozen=True)
class MigrationResult:
    store: str
    videos: int  # video groups converted (or found converted by an earlier, interrupted run)
    snapshot: str | None  # the first snapshot; None when the store was already of format 2
    already: bool = False


def legacy_version_id(video_id: str, record: dict | None) -> str:
    """The version folder a video of format 1 moves to: its record's write time (else the epoch)
    and 8 hex digits of its id, the same on every run of the conversion."""
    try:
        written = datetime.fromisoformat((record or {}).get("written_at") or "").astimezone(timezone.utc)
    except ValueError:
        written = datetime.fromtimestamp(0, timezone.utc)
    return f"{written:%Y%m%dT%H%M%SZ}-{hashlib.sha256(video_id.encode('utf-8')).hexdigest()[:8]}"


def _convert_video(store: str, root: zarr.Group, video_id: str) -> CatalogEntry | None:
    """Move one video group's arrays into its version folder; its catalog entry (None for a group
    that holds neither a record nor a converted version: nothing to list)."""
    group = root[f"{VIDEOS_GROUP}/{video_id}"]
    raw = group.attrs.get(VIDEO_RECORD_ATTR)
    if raw is None:  # converted by an earlier run that stopped before its commit
        versions = sorted(group.group_keys())
        if not versions:
            return None
        version = versions[-1]
        return CatalogEntry(version=version, record=root[version_path(video_id, version)].attrs[VIDEO_RECORD_ATTR])
    arrays = sorted(group.array_keys())
    if not arrays:  # a video that failed stored nothing
        del group.attrs[VIDEO_RECORD_ATTR]
        return CatalogEntry(version=None, record=raw)
    version = legacy_version_id(video_id, raw)
    target = version_path(video_id, version)
    if local_path(store) is not None:
        inside(local_path(store), VIDEOS_GROUP, video_id, version)  # never through a link planted in the store
    if target not in root:
        root.create_group(target, attributes={VIDEO_RECORD_ATTR: raw})
    fs, _ = filesystem(store)
    for name in arrays:
        _, source = filesystem(join(store, VIDEOS_GROUP, video_id, name))
        _, destination = filesystem(join(store, target, name))
        fs.mv(source, destination, recursive=True)
    del group.attrs[VIDEO_RECORD_ATTR]
    return CatalogEntry(version=version, record=raw)


def migrate(store: str, log=lambda line: None) -> MigrationResult:
    """Convert the store at ``store`` to format 2 (module docstring); ``log`` gets a line per video.

    Raises FileNotFoundError when there is no store there. A store of format 2 is left as it is."""
    uri = normalize(store)
    info = store_info(open_store(uri, mode="r"))
    if info is not None and info.store_format >= STORE_FORMAT:
        return MigrationResult(uri, 0, None, already=True)
    root = open_root(uri)
    entries: dict[str, CatalogEntry] = {}
    for video_id in sorted(root[VIDEOS_GROUP].group_keys()):
        entry = _convert_video(uri, root, video_id)
        if entry is not None:
            entries[video_id] = entry
            log(f"{video_id}: {'version ' + entry.version if entry.version else 'no arrays (failed)'}")
    _, snapshot = commit(uri, lambda videos, validation: ({**videos, **entries}, None), "migrate",
                         f"converted from store format 1: {len(entries)} videos", code_version=code_version())
    fs, locks = filesystem(join(uri, LEGACY_LOCKS_DIR))
    with contextlib.suppress(FileNotFoundError):
        fs.rm(locks, recursive=True)
    root.attrs.pop(VALIDATION_ATTR, None)
    new_info = (info or StoreInfo(name=uri.rstrip("/").rsplit("/", 1)[-1], created_by="vmac"))
    root.attrs[STORE_INFO_ATTR] = new_info.model_copy(update={"store_format": STORE_FORMAT}).model_dump(mode="json")
    return MigrationResult(uri, len(entries), snapshot.id)
