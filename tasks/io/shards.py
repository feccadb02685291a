"""Sharded frame arrays: the writer ingest uses and the direct reader pre-training uses.

Layout (``storage_schemas.layout``): a ``(T, *frame_shape)`` uint8 array with one frame per
inner chunk, inside shards of ``shard_frames`` frames along T (Zarr v3 ``sharding_indexed``),
each chunk encoded with the store's frame codec (``storage_schemas.codecs``), a crc32c-checked
shard index at the shard's end.

- ``ShardWriter`` appends whole shards, so a shard is never read back and rewritten, and
  hashes the frame bytes as it goes (the ``frames_sha256`` of a video's record).
- ``ShardedFrames`` reads single frames straight from the shard files, bypassing Zarr's
  per-call overhead (docs/loader.md).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import numcodecs.blosc
import numpy as np
import zarr
from numcodecs.checksum32 import CRC32C
from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from storage_schemas.codecs import MASK_CODEC, FrameCodec
from storage_schemas.layout import DIMENSIONS
from tasks.io.framecodecs import ChunkCodec, chunk_codec_of, zarr_codec_args


def create_sharded(group: zarr.Group, name: str, frames: int, frame_shape: tuple[int, ...], dtype: str,
                   shard_frames: int, codec: FrameCodec) -> zarr.Array:
    """A (frames, *frame_shape) array of 1-frame chunks in ``shard_frames``-frame shards, kept with
    ``codec``; whatever ``name`` held is replaced."""
    return group.create_array(
        name, shape=(frames, *frame_shape), chunks=(1, *frame_shape), shards=(shard_frames, *frame_shape),
        dtype=dtype, fill_value=0, overwrite=True, dimension_names=DIMENSIONS.get(name), **zarr_codec_args(codec))


# Memory a decode holds per buffer of frames (two are in flight) and per shard of raw frames: a
# native 4K video would otherwise hold 64-frame shards of 1.6 GB. Larger frames get fewer per
# buffer and per shard (docs/ingest.md, "Memory").
READ_BUFFER_BYTES = 64 << 20
MAX_SHARD_BYTES = 256 << 20


def frames_per(budget: int, frame_bytes: int, most: int) -> int:
    """How many frames of ``frame_bytes`` fit in ``budget`` bytes: at least 1, at most ``most``."""
    return max(1, min(most, budget // max(frame_bytes, 1)))


# Threads that encode a shard's chunks. One: ffmpeg already decodes in parallel (FfmpegDecode reads
# ahead in a thread), and a second encoding thread measured no faster on 2 cores (benchmarks/ingest.py).
ENCODE_THREADS = 1


class ShardWriter:
    """Append-only writer of one array along time, one whole shard per write.

    The array starts with an estimated length and is resized to what was written at ``close``.
    Chunks are single frames inside shards of ``shard_frames`` frames: random (t, t+gap) reads
    touch little data, and each write is one store object per shard. Shards are assembled here
    (each chunk encoded with ``codec``, on ``threads`` threads: blosc and imagecodecs release
    the GIL) and written with one store ``set``, in the layout Zarr's ``sharding_indexed`` codec
    reads; Zarr's own write path costs as much again in per-chunk machinery.

    ``sha256`` hashes the frames as a reader will get them: the bytes appended for a lossless
    codec, the decoded chunks for a lossy one. ``first_frame`` starts the writer at another shard
    boundary than 0 (a time range of a longer video, ``tasks.ingest.ranges``); ``create`` False
    writes into an existing array of the right shape.
    """

    def __init__(self, group: zarr.Group, name: str, frame_shape: tuple[int, ...], dtype: str,
                 shard_frames: int, expected_frames: int, codec: FrameCodec = MASK_CODEC, threads: int = 1,
                 first_frame: int = 0, create: bool = True):
        if first_frame % shard_frames:
            raise ValueError(f"a writer starts on a shard boundary, not at frame {first_frame}")
        self.shard_frames = shard_frames
        self.frame_shape = tuple(frame_shape)
        self.codec = codec
        if create:
            self.array = create_sharded(group, name, max(expected_frames, shard_frames), frame_shape, dtype,
                                        shard_frames, codec)
        else:
            self.array = group[name]
        if codec.kind == "blosc":
            # Blosc compresses with its own threads when called from a process's main thread and
            # without them elsewhere (numcodecs' ``use_threads`` default), so a Dask worker's task
            # never uses them. Here too: an ingest worker is one core's work, and on one core the
            # threads cost twice the CPU (lz4, one 455×256 frame: 0.24 ms against 0.12 ms).
            # numcodecs has no per-codec setting; this one is process-wide.
            numcodecs.blosc.use_threads = False
        self._chunks = ChunkCodec.of(codec)
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self.first_frame = first_frame
        self.written = first_frame
        self._pending: list[bytes] = []  # encoded frames of the shard being filled
        self.sha256 = hashlib.sha256()

    def append(self, block) -> None:
        """Encode ``block`` (t, *frame_shape) frame by frame and write each shard once it is full.
        Only encoded frames are kept between calls (memory: one shard's compressed bytes), so
        ``block`` may be reused by the caller once this returns."""
        if tuple(block.shape[1:]) != self.frame_shape:
            raise ValueError(f"{self.array.path}: frame shape {block.shape[1:]} != {self.frame_shape}")
        frames = [np.ascontiguousarray(block[k: k + 1]) for k in range(len(block))]
        blobs = list(self._pool.map(self._chunks.encode, frames) if self._pool else map(self._chunks.encode, frames))
        for frame, blob in zip(frames, blobs):
            self._hash(frame, blob)
            self._pending.append(blob)
            if len(self._pending) == self.shard_frames:
                self._write(self._pending)
                self._pending = []

    def _write(self, blobs: list[bytes]) -> None:
        start = self.written
        end = start + len(blobs)
        if end > self.array.shape[0]:
            grow = -(-end // self.shard_frames) * self.shard_frames
            self.array.resize((max(grow, 2 * self.array.shape[0]), *self.frame_shape))
        index = np.full((self.shard_frames, 2), _MISSING_CHUNK, dtype="<u8")
        sizes = np.fromiter(map(len, blobs), dtype=np.uint64, count=len(blobs))
        index[: len(blobs), 1] = sizes
        index[: len(blobs), 0] = np.cumsum(sizes) - sizes
        body = b"".join([*blobs, bytes(CRC32C().encode(index.tobytes()))])
        key = f"{self.array.path}/{self.array.metadata.encode_chunk_key((start // self.shard_frames,) + (0,) * len(self.frame_shape))}"
        sync(self.array.store_path.store.set(key, default_buffer_prototype().buffer.from_bytes(body)))
        self.written = end

    def _hash(self, frame, blob: bytes) -> None:
        """Hash one frame as a reader will get it: its bytes (lossless), or its decoded chunk (lossy)."""
        if self.codec.lossless:
            self.sha256.update(frame.data)
            return
        decoded = np.empty((1, *self.frame_shape), dtype=frame.dtype)
        self._chunks.decode_into(blob, decoded)
        self.sha256.update(decoded.data)

    def close(self, trim: bool = True) -> int:
        """Flush the last partial shard and, with ``trim``, cut the array to the frames written;
        return the frames this writer wrote."""
        if self._pending:
            self._write(self._pending)
            self._pending = []
        if self._pool is not None:
            self._pool.shutdown()
        if trim and self.array.shape[0] != self.written:
            self.array.resize((self.written, *self.frame_shape))
        return self.written - self.first_frame


# A shard's index: (offset, nbytes) uint64 per inner chunk; both all-ones for a chunk never written.
_MISSING_CHUNK = np.iinfo(np.uint64).max


class ShardedFrames:
    """Reads single frames of one ``frames`` array straight from its shard files.

    The store's layout (``ShardWriter``) is one frame per inner chunk, inside shards
    of ``shard_frames`` frames, blosc-compressed, with a crc32c-checked index at the shard's
    end (the Zarr v3 ``sharding_indexed`` codec). Reading through Zarr costs, per call, a trip
    to its event loop, a re-read of the shard index and thread hand-offs for every byte range
    and decode; for two ~350 kB frames that overhead is as large as decompressing them. Here a
    batch's chunk byte ranges are fetched with one fsspec ``cat_ranges`` call, each shard index
    is read once per process (stores are immutable while training reads them: a ``complete``
    video is never rewritten in place), and each chunk is decompressed straight into the batch
    buffer. ``open`` returns None for any other layout, and the caller reads through Zarr.
    """

    def __init__(self, fs, array_path: str, shape: tuple[int, ...], shard_frames: int, chunk_key, fill_value,
                 chunks: ChunkCodec):
        self.fs = fs
        self.chunks = chunks
        self.array_path = array_path
        self.shape = shape
        self.shard_frames = shard_frames
        self._chunk_key = chunk_key
        self.fill_value = fill_value
        self._indexes: dict[int, np.ndarray] = {}

    @classmethod
    def open(cls, fs, root_path: str, array) -> ShardedFrames | None:
        meta = array.metadata
        codecs = getattr(meta, "codecs", ())
        if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec) or array.dtype != np.uint8:
            return None
        sharding = codecs[0]
        index = tuple(sharding.index_codecs)
        chunks = chunk_codec_of(tuple(sharding.codecs))
        if (tuple(sharding.chunk_shape) != (1, *array.shape[1:]) or sharding.index_location.value != "end"
                or chunks is None
                or [type(c) for c in index] != [BytesCodec, Crc32cCodec]
                or index[0].endian is None or index[0].endian.value != "little"):
            return None
        shard_shape = tuple(meta.chunk_grid.chunk_shape)
        if shard_shape[1:] != tuple(array.shape[1:]):
            return None
        return cls(fs, f"{root_path.rstrip('/')}/{array.path}", tuple(array.shape), shard_shape[0],
                   meta.encode_chunk_key, array.fill_value, chunks)

    def shard_path(self, shard: int) -> str:
        return f"{self.array_path}/{self._chunk_key((shard,) + (0,) * (len(self.shape) - 1))}"

    def load_indexes(self, shards: set[int]) -> None:
        """Read and check the index of every shard in ``shards`` not read yet."""
        missing = sorted(shards - self._indexes.keys())
        if not missing:
            return
        size = 16 * self.shard_frames + 4
        paths = [self.shard_path(shard) for shard in missing]
        ends = [self.fs.size(path) for path in paths]
        blobs = self.fs.cat_ranges(paths, [end - size for end in ends], ends)
        for shard, blob in zip(missing, blobs):
            # CRC32C.decode checks the trailing checksum and raises on a mismatch.
            self._indexes[shard] = np.frombuffer(bytes(CRC32C().decode(blob)), "<u8").reshape(-1, 2)

    def byte_range(self, frame: int) -> tuple[str, int, int] | None:
        """(shard path, start, end) of ``frame``'s compressed bytes; None if it was never written."""
        shard, chunk = divmod(frame, self.shard_frames)
        offset, nbytes = self._indexes[shard][chunk]
        if offset == _MISSING_CHUNK:
            return None
        return self.shard_path(shard), int(offset), int(offset + nbytes)

    def decode_into(self, blob: bytes, out: np.ndarray) -> None:
        """Decode one chunk's bytes straight into ``out`` (one frame, C order), with the codec the
        array's metadata names."""
        self.chunks.decode_into(blob, out)
