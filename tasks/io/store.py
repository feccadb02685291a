"""The Zarr v3 frame store: open it over fsspec, read the catalog, fingerprint it, lock one video.

Writers own whole video groups (``video_lock``); their arrays are written shard by shard
(``tasks.io.shards``). A video's record says ``writing`` while its arrays are written and
``complete`` only after the last one is, so a run killed at any point leaves nothing
half-written that claims to be complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import warnings
from collections.abc import Iterator

import fsspec
import numpy as np
import zarr
from pydantic import ValidationError
from zarr.storage import FsspecStore, LocalStore

from storage_schemas.codecs import DEFAULT_FRAME_CODEC, LEGACY_FRAME_CODEC
from storage_schemas.layout import (
    LINEAGE_DIR,
    LOCKS_DIR,
    STORE_INFO_ATTR,
    VIDEO_RECORD_ATTR,
    VIDEOS_GROUP,
)
from storage_schemas.records import DecodeParams, StoreInfo, VideoRecord

UNREADABLE = "unreadable"  # the status a catalog shows for a video group whose record cannot be parsed
from storage_schemas.validation import VALIDATION_DIR, catalog_fingerprint
from tasks.io.files import check_path, private_folder
from tasks.io.names import inside
from tasks.io.secrets import redact_json, reveal
from tasks.io.uris import exists, isdir, join, local_path, storage_options

# What tells one version of a stored file from the next, by filesystem: an object store's tag,
# else a local modification time, else an in-memory file's creation time.
_VERSION_KEYS = ("ETag", "etag", "md5Hash", "generation", "mtime", "LastModified", "created")


def _zarr_store(store: str, read_only: bool = False):
    path = local_path(store)
    if path is not None:
        return LocalStore(path, read_only=read_only)
    return FsspecStore.from_url(reveal(store), read_only=read_only, storage_options=storage_options(store))


def open_store(store: str, mode: str = "a", created_by: str = "vmac", frame_codec: str | None = None) -> zarr.Group:
    """Open (``a``: creating it if missing, its frames kept with ``frame_codec``, default
    ``DEFAULT_FRAME_CODEC``) or read (``r``) a store's root group."""
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
    if STORE_INFO_ATTR not in root.attrs:
        name = os.path.basename(store.rstrip("/")) or store
        info = StoreInfo(name=name, created_by=created_by, frame_codec=frame_codec or DEFAULT_FRAME_CODEC)
        root.attrs[STORE_INFO_ATTR] = info.model_dump(mode="json")
    for group in (VIDEOS_GROUP, LINEAGE_DIR, LOCKS_DIR):
        if group not in root:
            with contextlib.suppress(zarr.errors.ContainsGroupError):
                root.require_group(group)
    return root


# The entries of a store's root that vmac itself writes (Zarr's metadata, and vmac's folders).
BOOKKEEPING = ("zarr.json", VIDEOS_GROUP, LINEAGE_DIR, LOCKS_DIR, VALIDATION_DIR)


def check_bookkeeping(store: str) -> None:
    """For a local store: refuse (OutsideError) a store reached through another user's link, or
    whose own entries (``BOOKKEEPING``, and ``videos/zarr.json``) are symbolic links: Zarr and
    the lock files would write through them, outside the store (a crafted store from elsewhere)."""
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
    raw = root.attrs.get(STORE_INFO_ATTR)
    return StoreInfo.model_validate(raw).frame_codec if raw else LEGACY_FRAME_CODEC


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


def read_record(group: zarr.Group) -> VideoRecord | None:
    """The video's record, or None when its attributes are missing or unreadable (redo it)."""
    try:
        raw = group.attrs.get(VIDEO_RECORD_ATTR)
        return VideoRecord.model_validate(raw) if raw is not None else None
    except (ValidationError, ValueError, TypeError):
        return None


def read_catalog(store: str | zarr.Group) -> dict[str, VideoRecord | None]:
    """video_id → record for every video group (None where the record is unreadable)."""
    root = open_store(store, mode="r") if isinstance(store, str) else store
    if VIDEOS_GROUP not in root:
        return {}
    videos = root[VIDEOS_GROUP]
    out: dict[str, VideoRecord | None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr warns about non-zarr folders it passes over
        names = sorted(videos.group_keys())
    for name in names:
        try:
            out[name] = read_record(videos[name])
        except (KeyError, ValueError, OSError):
            out[name] = None
    return out


def video_group(root: zarr.Group, video_id: str) -> zarr.Group:
    return root[f"{VIDEOS_GROUP}/{video_id}"]


def is_store(uri: str) -> bool:
    """True when ``uri`` (a local path or fsspec URL) is a vmac store's root: a Zarr group
    holding a ``videos`` group. A video group inside a store holds arrays, so it is not one."""
    return exists(join(uri, "zarr.json")) and isdir(join(uri, VIDEOS_GROUP))


def fingerprint_of(catalog: dict[str, VideoRecord | None]) -> str:
    """The catalog fingerprint of ``read_catalog``'s output: which videos, decoded how, in which
    state (``storage_schemas.validation.catalog_fingerprint``). Validation stamps it; pre-training
    and lineage record it, so a changed catalog is noticed."""
    return catalog_fingerprint(
        (video_id, record.decode_key if record else None, record.status.value if record else UNREADABLE)
        for video_id, record in catalog.items()
    )


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


def data_fingerprints(store: str) -> dict[str, str]:
    """video_id → digest of the video's array files as they are now: each one's path below the
    group, size, and modification time (or the object store's version tag). One listing, no
    reads: any write, truncation, addition or removal of a chunk, shard or array header
    changes it. The video's record (its group's attributes) is left out: aliases are added to
    it, and the catalog fingerprint covers what decides training.
    """
    fs, root = fsspec.core.url_to_fs(reveal(store))
    base = f"{root.rstrip('/')}/{VIDEOS_GROUP}"
    if not fs.isdir(base):
        return {}
    lines: dict[str, list[str]] = {}
    for path, info in fs.find(base, detail=True).items():
        rel = path[len(base) + 1:]
        video_id, _, inner = rel.partition("/")
        if not inner or inner == "zarr.json":
            continue  # the videos group's own header, or a video's record
        version = next((info[k] for k in _VERSION_KEYS if info.get(k) is not None), None)
        lines.setdefault(video_id, []).append(f"{inner}\t{info.get('size')}\t{version}")
    return {vid: hashlib.sha256("\n".join(sorted(found)).encode("utf-8")).hexdigest()
            for vid, found in sorted(lines.items())}


def data_fingerprint(per_video: dict[str, str]) -> str:
    """One digest of ``data_fingerprints``' output (what a validation stamp holds)."""
    return hashlib.sha256(json.dumps(per_video, sort_keys=True).encode("utf-8")).hexdigest()


def reset_video(root: zarr.Group, video_id: str, record: VideoRecord) -> zarr.Group:
    """Drop whatever ``videos/<video_id>`` holds and start it again with ``record``. In a local
    store, OutsideError when the group's path leaves the store (a link planted in a store from
    elsewhere: ``tasks.io.names.inside``)."""
    if isinstance(root.store, LocalStore):
        inside(str(root.store.root), VIDEOS_GROUP, video_id)
    videos = root[VIDEOS_GROUP]
    if video_id in videos:
        del videos[video_id]
    group = videos.create_group(video_id, overwrite=True)
    group.attrs[VIDEO_RECORD_ATTR] = redact_json(record.model_dump(mode="json"))
    return group


def write_record(group: zarr.Group, record: VideoRecord) -> None:
    """The video's record as its group's attributes, every URL in it redacted (``tasks.io.secrets``)."""
    group.attrs[VIDEO_RECORD_ATTR] = redact_json(record.model_dump(mode="json"))


@contextlib.contextmanager
def video_lock(store: str, video_id: str) -> Iterator[None]:
    """Exclusive lock on one video of one store, across processes and threads of this host.

    Local stores keep lock files inside the store (``locks/``), so runs on other hosts that
    share the filesystem see them too; remote stores lock in this user's private folder
    (``tasks.io.files.private_folder``, 0700: another user can neither take nor link a lock),
    which protects concurrent runs of this user on one host only (a documented limit).
    """
    path = local_path(store)
    if path is not None:
        folder = str(inside(path, LOCKS_DIR))
    else:
        key = hashlib.sha1(store.encode("utf-8")).hexdigest()[:16]
        folder = str(private_folder("locks") / key)
    os.makedirs(folder, exist_ok=True)
    # flock locks belong to the open file description, so two opens in one process exclude
    # each other as well as two processes do.
    lock = os.open(os.path.join(folder, f"{video_id}.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

