"""One re-hash each: stored frames (or motion map), a file, a video's source; and a catalog row against the ingest
record that wrote it. Each returns what drifted (a ``Drift``), or None / [] when all matches.

Memory stays within one shard (frames) or one MiB block (files) at a time.
"""

from __future__ import annotations

from storage_schemas.audit import Drift
from storage_schemas.layout import FRAMES, LINEAGE_DIR, VIDEOS_GROUP
from storage_schemas.lineage import Dataset, LineageRecord
from storage_schemas.records import SourceKind, VideoRecord
from tasks.io.faults import reason_of
from tasks.io.files import file_sha256
from tasks.io.items import SourceItem
from tasks.io.sources import expand_sources, hash_source
from tasks.io.store import Snapshot, UnreadableFramesError, frames_sha256
from tasks.io.uris import exists, is_url, join


def check_frames(snapshot: Snapshot, video_id: str, recorded: str | None, record: str,
                 array_name: str = FRAMES, root=None) -> Drift | None:
    """Re-hash ``<array_name>`` (the frames, or the motion map) of the version folder ``snapshot``
    names for ``video_id`` against ``recorded`` (``root``: the store's root group, opened once by
    the caller); a Drift (``what`` is the array's name), or None when it matches."""
    path = snapshot.path(video_id)
    uri = join(snapshot.store, path or join(VIDEOS_GROUP, video_id), array_name)
    try:
        array = snapshot.group(video_id, root)[array_name]
    except KeyError:
        return Drift(what=array_name, uri=uri, video_id=video_id, recorded=recorded, detail="missing", record=record)
    try:
        found = frames_sha256(array)
    except UnreadableFramesError as exc:  # a damaged shard: that is the finding
        return Drift(what=array_name, uri=uri, video_id=video_id, recorded=recorded,
                     detail=f"unreadable: {exc}"[:300], record=record)
    if found != recorded:
        return Drift(what=array_name, uri=uri, video_id=video_id, recorded=recorded, found=found,
                     detail="changed", record=record)
    return None


def check_file(uri: str, what: str, recorded: str | None, record: str) -> Drift | None:
    """Re-hash one file against ``recorded``; a Drift, or None when it matches."""
    if not exists(uri):
        return Drift(what=what, uri=uri, recorded=recorded, detail="missing", record=record)
    found = file_sha256(uri)
    if found != recorded:
        return Drift(what=what, uri=uri, recorded=recorded, found=found, detail="changed", record=record)
    return None


def source_item(row: VideoRecord, video_id: str, ingest: LineageRecord | None,
                expanded: dict[tuple[str, ...], dict[str, SourceItem]]) -> SourceItem | None:
    """The source as ingest saw it, to re-hash exactly: the ingest record's source roots expanded
    again (a frame folder's hash covers its frame, mask and keypoint files) and matched by
    video_id; for a plain video file, the file itself. None when it cannot be rebuilt.

    ``expanded`` caches each set of roots, which many videos share.
    """
    roots = tuple((ingest.parameters.get("sources") or []) if ingest else [])
    if roots:
        if roots not in expanded:
            expanded[roots] = {item.video_id: item for item in expand_sources(list(roots))}
        item = expanded[roots].get(video_id)
        if item is not None and item.error is None:
            return item
    if row.source_kind is SourceKind.video:
        return SourceItem(uri=row.source_uri, video_id=video_id, kind=SourceKind.video, layout=row.layout)
    return None


def check_source(row: VideoRecord, video_id: str, item: SourceItem, record: str) -> Drift | None:
    """Re-hash a video's source against its catalog row; a Drift, or None when it matches."""
    try:
        found, _ = hash_source(item)
    except (FileNotFoundError, IsADirectoryError):
        return Drift(what="source", uri=item.uri, video_id=video_id, recorded=row.sha256, detail="missing", record=record)
    except OSError as exc:
        return Drift(what="source", uri=item.uri, video_id=video_id, recorded=row.sha256,
                     detail=f"unreadable: {reason_of(exc)}", record=record)
    except Exception as exc:  # noqa: BLE001 - a remote filesystem's own classes (aiohttp: 401, 403)
        if not is_url(item.uri):
            raise
        return Drift(what="source", uri=item.uri, video_id=video_id, recorded=row.sha256,
                     detail=f"unreadable: {reason_of(exc)}", record=record)
    if found != row.sha256:
        return Drift(what="source", uri=item.uri, video_id=video_id, recorded=row.sha256, found=found,
                     detail="changed", record=record)
    return None


def check_catalog_against_lineage(row: VideoRecord, video_id: str, store: str, found: tuple[LineageRecord, Dataset],
                                  catalog_where: str) -> list[Drift]:
    """The catalog row and the ingest record that wrote the video must agree on both hashes."""
    record, dataset = found
    where = f"{join(store, LINEAGE_DIR)} record {record.id[:12]}"
    drifts = []
    if dataset.sha256 != row.frames_sha256:
        drifts.append(Drift(what="record", uri=catalog_where, video_id=video_id, recorded=dataset.sha256,
                            found=row.frames_sha256, detail="catalog frames_sha256 differs from the ingest record",
                            record=where))
    source_sha = dataset.facets.get("source_sha256")
    if source_sha and source_sha != row.sha256:
        drifts.append(Drift(what="record", uri=catalog_where, video_id=video_id, recorded=source_sha,
                            found=row.sha256, detail="catalog source sha256 differs from the ingest record",
                            record=where))
    return drifts
