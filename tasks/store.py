"""The Zarr v3 frame store: open it over fsspec, read the catalog, lock and write one video.

Writers own whole video groups. Within a video, each write covers whole shards along time
(``DecodeParams.shard_frames``), so a shard is never read back and rewritten. A video's record
says ``writing`` while its arrays are written and ``complete`` only after the last one is, so a
run killed at any point leaves nothing half-written that claims to be complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import warnings
from collections.abc import Iterator

import zarr
from pydantic import ValidationError
from zarr.codecs import BloscCodec
from zarr.storage import FsspecStore, LocalStore

from storage_schemas.layout import (
    COMPRESSOR,
    LINEAGE_DIR,
    LOCKS_DIR,
    STORE_INFO_ATTR,
    VIDEO_RECORD_ATTR,
    VIDEOS_GROUP,
)
from storage_schemas.records import StoreInfo, VideoRecord
from tasks.sources import is_url


def local_path(store: str) -> str | None:
    """The filesystem path of a local store, or None for a remote/in-memory URL."""
    if is_url(store):
        return None
    return os.path.abspath(os.path.expanduser(store.removeprefix("file://")))


def _zarr_store(store: str, read_only: bool = False):
    path = local_path(store)
    if path is not None:
        return LocalStore(path, read_only=read_only)
    return FsspecStore.from_url(store, read_only=read_only)


def open_store(store: str, mode: str = "a", created_by: str = "vmac") -> zarr.Group:
    """Open (``a``: creating it if missing) or read (``r``) a store's root group."""
    if mode == "r":
        try:
            return zarr.open_group(_zarr_store(store, read_only=True), mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise FileNotFoundError(f"no vmac store at {store}") from exc
    # Several writers may create a new store at once (Dask workers, concurrent runs): whoever
    # loses a creation race finds the group made by the other, which is what it wanted.
    try:
        root = zarr.open_group(_zarr_store(store), mode="a")
    except zarr.errors.ContainsGroupError:
        root = zarr.open_group(_zarr_store(store), mode="a")
    if STORE_INFO_ATTR not in root.attrs:
        name = os.path.basename(store.rstrip("/")) or store
        root.attrs[STORE_INFO_ATTR] = StoreInfo(name=name, created_by=created_by).model_dump(mode="json")
    for group in (VIDEOS_GROUP, LINEAGE_DIR, LOCKS_DIR):
        if group not in root:
            with contextlib.suppress(zarr.errors.ContainsGroupError):
                root.require_group(group)
    return root


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


def reset_video(root: zarr.Group, video_id: str, record: VideoRecord) -> zarr.Group:
    """Drop whatever ``videos/<video_id>`` holds and start it again with ``record``."""
    videos = root[VIDEOS_GROUP]
    if video_id in videos:
        del videos[video_id]
    group = videos.create_group(video_id, overwrite=True)
    group.attrs[VIDEO_RECORD_ATTR] = record.model_dump(mode="json")
    return group


def write_record(group: zarr.Group, record: VideoRecord) -> None:
    group.attrs[VIDEO_RECORD_ATTR] = record.model_dump(mode="json")


class ShardWriter:
    """Append-only writer of one array along time, one whole shard per write.

    The array starts with an estimated length and is resized to what was written at ``close``.
    Chunks are single frames inside shards of ``shard_frames`` frames: random (t, t+gap) reads
    touch little data, and each write is one store object per shard.
    """

    def __init__(self, group: zarr.Group, name: str, frame_shape: tuple[int, ...], dtype: str,
                 shard_frames: int, expected_frames: int, compress: bool = True):
        self.shard_frames = shard_frames
        self.frame_shape = tuple(frame_shape)
        capacity = max(expected_frames, shard_frames)
        self.array = group.create_array(
            name,
            shape=(capacity, *frame_shape),
            chunks=(1, *frame_shape),
            shards=(shard_frames, *frame_shape),
            dtype=dtype,
            compressors=BloscCodec(**COMPRESSOR) if compress else None,
            fill_value=0,
            overwrite=True,
        )
        self.written = 0
        self._pending: list = []
        self._pending_frames = 0
        self.sha256 = hashlib.sha256()

    def append(self, block) -> None:
        """Buffer ``block`` (t, *frame_shape) and flush every full shard."""
        import numpy as np

        if tuple(block.shape[1:]) != self.frame_shape:
            raise ValueError(f"{self.array.path}: frame shape {block.shape[1:]} != {self.frame_shape}")
        self._pending.append(np.ascontiguousarray(block))
        self._pending_frames += len(block)
        while self._pending_frames >= self.shard_frames:
            joined = np.concatenate(self._pending)
            self._write(joined[: self.shard_frames])
            rest = joined[self.shard_frames:]
            self._pending = [rest] if len(rest) else []
            self._pending_frames = len(rest)

    def _write(self, shard) -> None:
        start = self.written
        if start % self.shard_frames:
            raise ValueError("writes must start on a shard boundary")
        end = start + len(shard)
        if end > self.array.shape[0]:
            grow = -(-end // self.shard_frames) * self.shard_frames
            self.array.resize((max(grow, 2 * self.array.shape[0]), *self.frame_shape))
        self.array[start:end] = shard
        self.sha256.update(shard.tobytes())
        self.written = end

    def close(self) -> int:
        """Flush the last partial shard, trim the array to the frames written; return the count."""
        import numpy as np

        if self._pending_frames:
            self._write(np.concatenate(self._pending))
            self._pending, self._pending_frames = [], 0
        if self.array.shape[0] != self.written:
            self.array.resize((self.written, *self.frame_shape))
        return self.written


@contextlib.contextmanager
def video_lock(store: str, video_id: str) -> Iterator[None]:
    """Exclusive lock on one video of one store, across processes and threads of this host.

    Local stores keep lock files inside the store (``locks/``), so runs on other hosts that
    share the filesystem see them too; remote stores lock in this host's temp folder, which
    protects concurrent runs on one host only (a documented limit).
    """
    path = local_path(store)
    if path is not None:
        folder = os.path.join(path, LOCKS_DIR)
    else:
        key = hashlib.sha1(store.encode("utf-8")).hexdigest()[:16]
        folder = os.path.join(tempfile.gettempdir(), "vmac-locks", key)
    os.makedirs(folder, exist_ok=True)
    # flock locks belong to the open file description, so two opens in one process exclude
    # each other as well as two processes do.
    with open(os.path.join(folder, f"{video_id}.lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

