"""The motion map ``vmac ingest --motion`` stores beside the frames (``storage_schemas.layout.MOTION``).

One float32 map per stored frame, ``(ceil(H / MOTION_CELL), ceil(W / MOTION_CELL))`` cells over
the stored frame, so it lines up frame for frame and pixel for pixel with ``frames``:

- from the codec's motion vectors (``tasks.io.motion_vectors``) when the decoder exports them
  and PyAV shows exactly the frames ffmpeg stored: the coded-frame map is turned like the frames
  (rotation), resized to the stored size (its values with it, into stored pixels) and averaged
  per cell;
- otherwise from the stored frames themselves: the cell mean of |frame t - frame t-1|.

The record says which (``motion_source``) and holds the map's hash (``motion_sha256``), which
``vmac audit`` checks like the frames'.
"""

from __future__ import annotations

import numpy as np

from storage_schemas.layout import FRAMES, MOTION, MOTION_CELL
from tasks.io.motion_vectors import MotionVectorDecode
from tasks.io.probe import Probe, VideoError
from tasks.io.shards import ShardWriter


def cell_means(values_hw: np.ndarray, cell: int = MOTION_CELL) -> np.ndarray:
    """float32 (ceil(H / cell), ceil(W / cell)): the mean of ``values_hw`` over each cell; the
    last row and column of cells average the pixels they have."""
    height, width = values_hw.shape
    rows, cols = np.arange(0, height, cell), np.arange(0, width, cell)
    sums = np.add.reduceat(np.add.reduceat(values_hw.astype(np.float64), rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff([*rows, height]), np.diff([*cols, width]))
    return (sums / counts).astype(np.float32)


def _turn(map_hw: np.ndarray, rotation: int) -> np.ndarray:
    """The coded-frame map turned as ffmpeg's autorotate turns the frames: a display-matrix
    rotation of r degrees (``Probe.rotation``, PyAV's counter-clockwise angle) shows the coded
    picture turned r degrees counter-clockwise (checked against frame differences in
    tests/ingest/test_motion.py)."""
    return np.rot90(map_hw, k=(rotation // 90) % 4)


class _Resample:
    """Coded-map cells → stored pixels (nearest), then cell means: one index table per video."""

    def __init__(self, map_shape: tuple[int, int], stored: tuple[int, int]):
        rows, cols = map_shape
        height, width = stored
        self.rows = np.minimum(np.arange(height) * rows // height, rows - 1)
        self.cols = np.minimum(np.arange(width) * cols // width, cols - 1)

    def __call__(self, map_hw: np.ndarray) -> np.ndarray:
        return cell_means(map_hw[self.rows][:, self.cols])


def write_vector_motion(group, path: str, info: Probe, frame_count: int, shard_frames: int) -> str | None:
    """Store the codec's motion vectors as the motion map; its sha256, or None when the codec
    exports none or PyAV's frames do not line up with the ``frame_count`` ffmpeg stored."""
    frames = group[FRAMES]
    height, width = frames.shape[1:3]
    decode = MotionVectorDecode(path, info.stream_index, float(info.sar))
    display_w = info.display_size[0]
    # Display pixels → stored pixels; the display width is the turned coded picture's width.
    scale = width / display_w
    writer = ShardWriter(group, MOTION, _cells(height, width), "float32", shard_frames, frame_count)
    resample = None
    for map_hw in decode:
        if decode.frames > frame_count:
            return None
        turned = _turn(map_hw, info.rotation)
        resample = resample or _Resample(turned.shape, (height, width))
        writer.append((resample(turned) * scale)[None])
    writer.close()
    if decode.frames != frame_count or not decode.frames_with_vectors:
        return None
    return writer.sha256.hexdigest()


def write_difference_motion(group, shard_frames: int) -> str:
    """Store the cell means of |frame t - frame t-1| (0 for frame 0), read back shard by shard
    from the stored frames; the map's sha256."""
    frames = group[FRAMES]
    count, height, width = frames.shape[:3]
    writer = ShardWriter(group, MOTION, _cells(height, width), "float32", shard_frames, count)
    previous = None
    for start in range(0, count, shard_frames):
        block = np.asarray(frames[start:start + shard_frames], dtype=np.int16)
        before = np.concatenate([block[:1] if previous is None else previous, block[:-1]])
        difference = np.abs(block - before).mean(axis=-1, dtype=np.float32)
        writer.append(np.stack([cell_means(d) for d in difference]))
        previous = block[-1:]
    writer.close()
    return writer.sha256.hexdigest()


def write_motion(group, shard_frames: int, path: str | None = None, info: Probe | None = None,
                 resampled: bool = False) -> dict:
    """Write the motion map beside ``group``'s stored frames: from the codec's motion vectors
    when ``path`` (a local video file, probed as ``info``) is given, not resampled, and its
    decoder exports them; else from frame differences (also when PyAV cannot decode a stream
    ffmpeg could, e.g. a damaged one kept with on_decode_error=keep). The record fields it sets."""
    frame_count = group[FRAMES].shape[0]
    digest, source = None, "motion_vectors"
    if path is not None and info is not None and not resampled:
        try:
            digest = write_vector_motion(group, path, info, frame_count, shard_frames)
        except VideoError:
            digest = None
    if digest is None:
        digest, source = write_difference_motion(group, shard_frames), "frame_difference"
    return {"has_motion": True, "motion_source": source, "motion_cell": MOTION_CELL, "motion_sha256": digest}


def _cells(height: int, width: int) -> tuple[int, int]:
    return -(-height // MOTION_CELL), -(-width // MOTION_CELL)
