"""The Zarr v3 frame store: open it over fsspec, read a snapshot of its catalog, write versions.

A store keeps each decode of a video in a *version folder* of its own,
``videos/<video_id>/<version>/``, written once and never changed after it is committed; its
catalog lives in snapshots (``tasks.io.snapshots``). A writer decodes into a new version folder,
which no reader looks at until a commit names it in a snapshot; a reader opens one snapshot
(``open_snapshot``) and reads the version folders it names, whatever is committed meanwhile. A run
killed at any point leaves at worst a version folder no snapshot names (``vmac gc`` removes it).

Stores written before snapshots (store format 1: records in each video group, arrays rewritten in
place) are refused with a message naming ``vmac migrate`` (``tasks.io.migrate``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass

import numpy as np
import zarr
from pydantic import ValidationError
from zarr.storage import FsspecStore, LocalStore

from storage_schemas.codecs import DEFAULT_FRAME_CODEC, LEGACY_FRAME_CODEC
from storage_schemas.layout import (
    LINEAGE_DIR,
    STORE_FORMAT,
    STORE_INFO_ATTR,
    VIDEO_RECORD_ATTR,
    VIDEOS_GROUP,
)
from storage_schemas.records import DecodeParams, StoreInfo, VideoRecord
from storage_schemas.snapshots import REFS_DIR, SNAPSHOTS_DIR, CatalogEntry, SnapshotData
from storage_schemas.validation import VALIDATION_DIR, catalog_fingerprint
from tasks.io import snapshots
from tasks.io.files import check_path
from tasks.io.names import inside
from tasks.io.secrets import redact_json, reveal
from tasks.io.snapshots import LegacyStoreError
from tasks.io.uris import exists, filesystem, join, local_path, normalize, storage_options

UNREADABLE = "unreadable"  # the status a catalog shows for a video whose record cannot be parsed


def _zarr_store(store: str, read_only: bool = False):
    path = local_path(store)
    if path is not None:
        return LocalStore(path, read_only=read_only)
    return FsspecStore.from_url(reveal(store), read_only=read_only, storage_options=storage_options(store))


def open_root(store: str, read_only: bool = False) -> zarr.Group:
    """The root group of an existing store, as it is (no creation, no format check)."""
    return zarr.open_group(_zarr_store(store, read_only=read_only), mode="r" if read_only else "r+")


def store_info(root: zarr.Group) -> StoreInfo | None:
    raw = root.attrs.get(STORE_INFO_ATTR)
    try:
        return StoreInfo.model_validate(raw) if raw else None
    except ValidationError:
        return None


def open_store(store: str, mode: str = "a", created_by: str = "vmac", frame_codec: str | None = None) -> zarr.Group:
    """The store's root group: read (``r``; FileNotFoundError without a store), or opened for
    writing (``a``), created when missing with its frames kept as ``frame_codec`` (default
    ``DEFAULT_FRAME_CODEC``) and its first, empty snapshot. Writing refuses a store of format 1
    (LegacyStoreError)."""
    if mode == "r":
        try:
            return zarr.open_group(_zarr_store(store, read_only=True), mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise FileNotFoundError(f"no vmac store at {store}") from exc
    check_bookkeeping(store)
    # Several writers may create a new store at once (Dask workers, concurrent runs): whoever
    # loses a creation race finds the group made by the other, which is what it wanted.
    try:
        root = zarr.open_group(_zarr_store(store), mode="a")
    except zarr.errors.ContainsGroupError:
        root = zarr.open_group(_zarr_store(store), mode="a")
    info = store_info(root)
    if info is None and VIDEOS_GROUP not in root:
        name = os.path.basename(store.rstrip("/")) or store
        info = StoreInfo(name=name, created_by=created_by, frame_codec=frame_codec or DEFAULT_FRAME_CODEC,
                         store_format=STORE_FORMAT)
        root.attrs[STORE_INFO_ATTR] = info.model_dump(mode="json")
    if info is None or info.store_format < STORE_FORMAT:
        raise LegacyStoreError(store)
    if VIDEOS_GROUP not in root:
        with contextlib.suppress(zarr.errors.ContainsGroupError):
            root.require_group(VIDEOS_GROUP)
    if snapshots.read_tip(store) is None:
        with contextlib.suppress(FileExistsError):
            snapshots.commit(store, lambda videos, validation: (videos, validation), "create", f"store {info.name}")
    return root


# The entries of a store's root that vmac itself writes (Zarr's metadata, and vmac's folders).
BOOKKEEPING = ("zarr.json", VIDEOS_GROUP, LINEAGE_DIR, VALIDATION_DIR, SNAPSHOTS_DIR, REFS_DIR)


def check_bookkeeping(store: str) -> None:
    """For a local store: refuse (OutsideError) a store reached through another user's link, or
    whose own entries (``BOOKKEEPING``, and ``videos/zarr.json``) are symbolic links: Zarr and
    the commits would write through them, outside the store (a crafted store from elsewhere)."""
    path = local_path(store)
    if path is None:
        return
    check_path(path)
    for entry in BOOKKEEPING:
        inside(path, entry)
    inside(path, VIDEOS_GROUP, "zarr.json")


class FrameCodecMismatchError(ValueError):
    """A store's frames are kept with one codec; an ingest asked for another."""


def store_frame_codec(root: zarr.Group) -> str:
    """The frame codec a store records (stores older than the record hold ``LEGACY_FRAME_CODEC``)."""
    info = store_info(root)
    return info.frame_codec if info else LEGACY_FRAME_CODEC


def resolve_frame_codec(store: str, params: DecodeParams) -> DecodeParams:
    """``params`` with the frame codec the store holds (a new store: the one asked for, or the
    default). Raises FrameCodecMismatchError when the store holds another than the one asked for:
    one store keeps one codec."""
    try:
        held = store_frame_codec(open_store(store, mode="r"))
    except FileNotFoundError:
        held = None
    if held and params.frame_codec and params.frame_codec != held:
        raise FrameCodecMismatchError(
            f"store {store} keeps its frames as {held}; --frame-codec {params.frame_codec} would mix two codecs in "
            "one store (ingest into a new store, or leave --frame-codec out)")
    return params.model_copy(update={"frame_codec": params.frame_codec or held or DEFAULT_FRAME_CODEC})


def parse_record(raw: dict | None) -> VideoRecord | None:
    """A record from its JSON, or None when it is missing or unreadable (redo it)."""
    try:
        return VideoRecord.model_validate(raw) if raw is not None else None
    except (ValidationError, ValueError, TypeError):
        return None


def read_record(group: zarr.Group) -> VideoRecord | None:
    """The record in a version folder's attributes, or None when missing or unreadable."""
    return parse_record(group.attrs.get(VIDEO_RECORD_ATTR))


def version_path(video_id: str, version: str) -> str:
    """Where a version's arrays lie below the store's root."""
    return f"{VIDEOS_GROUP}/{video_id}/{version}"


@dataclass(frozen=True)
class Snapshot:
    """One committed state of a store, as a reader sees it for its whole run.

    ``store``: the store's location (no ``@``); ``data``: the snapshot (catalog and validation
    stamp). ``ref`` names it for other processes (``STORE@ID``), which then read the same state."""

    store: str
    data: SnapshotData

    @property
    def id(self) -> str:
        return self.data.id

    @property
    def ref(self) -> str:
        return f"{self.store}@{self.id}" if self.id else self.store

    @property
    def entries(self) -> dict[str, CatalogEntry]:
        return self.data.videos

    def records(self) -> dict[str, VideoRecord | None]:
        """video_id → record, by video id (None where the record is unreadable)."""
        return {video_id: parse_record(self.entries[video_id].record) for video_id in sorted(self.entries)}

    def path(self, video_id: str) -> str | None:
        """The video's version folder below the root; None for a video that stored nothing (failed)."""
        entry = self.entries.get(video_id)
        return version_path(video_id, entry.version) if entry is not None and entry.version else None

    def root(self) -> zarr.Group:
        return open_root(self.store, read_only=True)

    def narrowed(self, video_ids: list[str]) -> Snapshot:
        """The same snapshot naming only ``video_ids``: what one unit of work ships to a Dask
        worker, so that a task's size does not grow with the catalog."""
        videos = {video_id: self.entries[video_id] for video_id in video_ids if video_id in self.entries}
        return Snapshot(self.store, self.data.model_copy(update={"videos": videos}))

    def group(self, video_id: str, root: zarr.Group | None = None) -> zarr.Group:
        """The video's version folder, read-only; KeyError when the snapshot stores nothing for it."""
        path = self.path(video_id)
        if path is None:
            raise KeyError(f"{self.ref} stores no arrays for {video_id}")
        return (root if root is not None else self.root())[path]


def open_snapshot(store: str) -> Snapshot:
    """The snapshot ``store`` names: ``STORE`` (its tip), ``STORE@SNAPSHOT_ID`` or ``STORE@TAG``.

    Raises FileNotFoundError without a store, LegacyStoreError for a store of format 1 and
    ``tasks.io.snapshots.SnapshotNotFoundError`` for an unknown snapshot or tag."""
    uri, ref = snapshots.split_ref(store)
    uri = normalize(uri)
    root = open_store(uri, mode="r")
    info = store_info(root)
    if info is None or info.store_format < STORE_FORMAT:
        raise LegacyStoreError(uri)
    return Snapshot(uri, snapshots.resolve(uri, ref))


def read_catalog(store: str | Snapshot) -> dict[str, VideoRecord | None]:
    """video_id → record of every video in the snapshot (a store's tip, ``STORE@REF``, or an
    opened Snapshot); None where the record is unreadable."""
    return (open_snapshot(store) if isinstance(store, str) else store).records()


def new_version(root: zarr.Group, video_id: str) -> zarr.Group:
    """A new, empty version folder for ``video_id`` (``videos/<video_id>/<version>``), which no
    reader sees until a commit names it."""
    version = snapshots.new_version_id()
    if isinstance(root.store, LocalStore):
        # A link planted in the store (videos/<id> → elsewhere) is not written through.
        inside(str(root.store.root), VIDEOS_GROUP, video_id, version)
    with contextlib.suppress(zarr.errors.ContainsGroupError):
        root.require_group(f"{VIDEOS_GROUP}/{video_id}")
    return root.create_group(version_path(video_id, version))


def remove_version(store: str, video_id: str, version: str) -> None:
    """Delete a version folder this process made and no snapshot names (a decode the machine
    failed, or one another writer's commit made redundant). In a local store, OutsideError when
    the path goes through a symbolic link (``tasks.io.names.inside``): nothing is deleted there."""
    store = normalize(store)
    if local_path(store) is not None:
        inside(local_path(store), VIDEOS_GROUP, video_id, version)
    fs, path = filesystem(join(store, version_path(video_id, version)))
    if fs.exists(path):
        fs.rm(path, recursive=True)


def is_store(uri: str) -> bool:
    """True when ``uri`` (a local path or fsspec URL; ``STORE@REF`` names its store) is a vmac
    store's root, of any format: a Zarr group holding a ``videos`` group. A video folder inside a
    store holds arrays, so it is not one."""
    base, _ = snapshots.split_ref(uri)
    return exists(join(base, "zarr.json")) and exists(join(base, VIDEOS_GROUP, "zarr.json"))


def fingerprint_of(snapshot: Snapshot) -> str:
    """The catalog fingerprint of a snapshot: which videos, decoded how, in which state and
    which version folder (``storage_schemas.validation.catalog_fingerprint``). Validation stamps
    it; pre-training and lineage record it. Version folders are never rewritten, so an equal
    fingerprint means equal stored data."""
    rows = []
    for video_id, record in snapshot.records().items():
        version = snapshot.entries[video_id].version
        rows.append((video_id, record.decode_key if record else None, record.status.value if record else UNREADABLE,
                     version))
    return catalog_fingerprint(rows)


class UnreadableFramesError(ValueError):
    """Stored frames that do not decode: their shard was truncated or its bytes damaged."""


# A stored frame larger than this (pixels) is not read: a damaged or crafted array header may claim
# any shape (16K × 16K, as tasks.io.probe.MAX_FRAME_PIXELS for decoding).
MAX_STORED_FRAME_PIXELS = 1 << 28
# Bytes of frames read at once while hashing (as tasks.io.shards.MAX_SHARD_BYTES bounds writing).
HASH_BLOCK_BYTES = 256 << 20


def check_claimed_shape(array) -> None:
    """Raise UnreadableFramesError when a (T, ...) array's header claims more than its store holds
    (shards that were never written: reading them would return fill values for as long as the
    claim goes on) or frames too large to read. One listing of the array's keys, no reads."""
    frame_pixels = int(np.prod(array.shape[1:3])) if array.ndim >= 3 else 1
    if frame_pixels > MAX_STORED_FRAME_PIXELS:
        raise UnreadableFramesError(f"the array's header claims frames of {' × '.join(map(str, array.shape[1:]))}, "
                                    "larger than vmac reads")
    per_shard = array.shards[0] if array.shards else array.chunks[0]
    expected = -(-array.shape[0] // per_shard) if array.shape[0] else 0
    chunks_per_shard = int(np.prod([s // c for s, c in zip(array.shards, array.chunks)])) if array.shards else 1
    stored = array.nchunks_initialized // max(chunks_per_shard, 1)
    if stored < expected:
        raise UnreadableFramesError(f"the array's header claims {array.shape[0]} frames ({expected} shards), its "
                                    f"store holds {stored} shard(s): missing or truncated")


def frames_sha256(array) -> str:
    """sha256 of a (T, ...) Zarr array's bytes in C order, read a shard (at most
    ``HASH_BLOCK_BYTES``) at a time.

    The digest the ingest writer computes shard by shard (``tasks.io.shards.ShardWriter``), with
    memory bounded by one block. Raises UnreadableFramesError naming the frames whose shard
    does not decode, or when the header claims more than the store holds (``check_claimed_shape``).
    """
    check_claimed_shape(array)
    frame_bytes = int(np.prod(array.shape[1:])) * array.dtype.itemsize
    step = array.shards[0] if array.shards else array.chunks[0]
    step = max(1, min(step, HASH_BLOCK_BYTES // max(frame_bytes, 1)))
    digest = hashlib.sha256()
    for start in range(0, array.shape[0], step):
        stop = min(start + step, array.shape[0])
        try:
            block = array[start:stop]
        except Exception as exc:  # noqa: BLE001 - the codecs fail with whichever error the damage causes
            raise UnreadableFramesError(f"frames {start}-{stop - 1} do not decode: their shard is truncated or "
                                        f"damaged ({exc.__class__.__name__})") from exc
        digest.update(np.ascontiguousarray(block).tobytes())
    return digest.hexdigest()


def write_record(group: zarr.Group, record: VideoRecord) -> None:
    """Write ``record`` into a version folder's attributes (a version still being written), every
    URL in it redacted (``tasks.io.secrets``)."""
    group.attrs[VIDEO_RECORD_ATTR] = redact_json(record.model_dump(mode="json"))
