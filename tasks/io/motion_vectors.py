"""Codec motion vectors, read with PyAV: one displacement-magnitude map per decoded frame.

H.264, MPEG-4 Part 2 and MPEG-1/2 decoders export the motion vectors they decode when the codec
context is opened with ``flags2=+export_mvs`` (FFmpeg's ``extract_mvs`` example); PyAV hands
them over as frame side data (``av.sidedata.motionvectors.MotionVectors``), one record per
predicted block: its size ``w × h``, its centre ``dst_x, dst_y`` in the coded frame, and its
displacement ``motion_x / motion_scale, motion_y / motion_scale`` to the reference it was copied
from. Other decoders (HEVC and AV1 in FFmpeg 9, VP9, intra-only codecs) export none, and
``frames_with_vectors`` stays 0: the caller falls back to something else.

No frame is converted to RGB here: decoding is what costs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from tasks.io.probe import VideoError, one_line, open_container

# The map's resolution: the smallest H.264 partition (4×4 coded pixels) is one map cell.
BLOCK = 4


@dataclass
class MotionVectorDecode:
    """Iterate the video stream ``stream_index`` of ``path`` in presentation order, as ffmpeg
    shows it: one float32 (ceil(coded_h / 4), ceil(coded_w / 4)) map per frame, each cell the
    largest displacement magnitude, in display pixels (the horizontal component stretched by
    the sample aspect ratio ``sar``), of the blocks covering it; 0 where no vector does (intra
    blocks, I-frames).

    After iteration: ``frames`` decoded, ``frames_with_vectors`` among them that carried
    motion-vector side data, ``times`` (seconds, each frame's presentation time or None).
    Raises VideoError when the stream cannot be decoded.
    """

    path: str
    stream_index: int
    sar: float = 1.0
    frames: int = 0
    frames_with_vectors: int = 0

    def __post_init__(self) -> None:
        self.times: list[float | None] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            with open_container(self.path) as container:
                stream = container.streams[self.stream_index]
                stream.codec_context.options = {"flags2": "+export_mvs"}
                # One thread, as the ffmpeg decode: ingest runs one single-threaded worker per core.
                stream.codec_context.thread_count = 1
                for frame in container.decode(stream):
                    vectors = frame.side_data.get("MOTION_VECTORS")
                    self.frames += 1
                    self.frames_with_vectors += vectors is not None
                    self.times.append(frame.time)
                    yield magnitude_map(vectors.to_ndarray() if vectors is not None else None,
                                        frame.height, frame.width, self.sar)
        except av.error.FFmpegError as exc:
            raise VideoError(f"motion vectors: decoding failed after {self.frames} frames: "
                             f"{exc.strerror or one_line(exc)}") from exc


def magnitude_map(vectors: np.ndarray | None, height: int, width: int, sar: float = 1.0) -> np.ndarray:
    """float32 (ceil(height / 4), ceil(width / 4)): per 4×4 coded block, the largest displacement
    magnitude (display pixels) of the ``vectors`` (PyAV's structured array) covering it."""
    rows, cols = -(-height // BLOCK), -(-width // BLOCK)
    out = np.zeros(rows * cols, np.float32)
    if vectors is None or not len(vectors):
        return out.reshape(rows, cols)
    scale = np.maximum(vectors["motion_scale"].astype(np.float32), 1.0)
    magnitude = np.hypot(vectors["motion_x"] * sar / scale, vectors["motion_y"] / scale).astype(np.float32)
    block_w = np.maximum(vectors["w"].astype(np.int64) // BLOCK, 1)
    block_h = np.maximum(vectors["h"].astype(np.int64) // BLOCK, 1)
    left = (vectors["dst_x"].astype(np.int64) - vectors["w"] // 2) // BLOCK
    top = (vectors["dst_y"].astype(np.int64) - vectors["h"] // 2) // BLOCK
    # Every vector expanded into the 4×4 blocks it covers, then a scatter-max over them.
    counts = block_w * block_h
    owner = np.repeat(np.arange(len(vectors)), counts)
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    xs = np.clip(left[owner] + within % block_w[owner], 0, cols - 1)
    ys = np.clip(top[owner] + within // block_w[owner], 0, rows - 1)
    np.maximum.at(out, ys * cols + xs, magnitude[owner])
    return out.reshape(rows, cols)
