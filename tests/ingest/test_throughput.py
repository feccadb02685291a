"""What ingest does for throughput keeps the stored frames the same: one ffmpeg filter thread,
a wide frame pipe, the longest videos submitted first."""

from __future__ import annotations

import fcntl
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tasks.ingest.cluster import longest_first
from tasks.io.ffmpeg import PIPE_BYTES, FfmpegDecode, _widen_pipe
from tasks.io.sources import expand_sources


def test_one_filter_thread_gives_the_frames_of_ffmpegs_default_threading(make_video):
    path = make_video("a.mp4", frames=12, height=72, width=128)
    decode = FfmpegDecode(str(path), 57, 32, chunk_frames=5)
    command = decode.command()
    assert command[command.index("-filter_threads") + 1] == "1"
    ours = np.concatenate([np.array(chunk) for chunk in decode])
    # The same command with ffmpeg choosing its filter threads (one per core): the same bytes.
    default = [arg for i, arg in enumerate(command) if "-filter_threads" not in (arg, command[i - 1])]
    raw = subprocess.run(default, capture_output=True, check=True).stdout
    assert ours.shape == (12, 32, 57, 3)
    assert ours.tobytes() == raw


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="pipe sizes are a Linux setting")
def test_the_frame_pipe_holds_several_frames():
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as pipe:
        before = fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ)
        _widen_pipe(pipe)
        after = fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ)
    os.close(write_fd)
    # Linux refuses more than pipe-max-size to an unprivileged user: the pipe then keeps its size.
    allowed = os.geteuid() == 0 or PIPE_BYTES <= int(Path("/proc/sys/fs/pipe-max-size").read_text())
    assert after == (PIPE_BYTES if allowed else before)


def test_longest_videos_are_submitted_first(tmp_path):
    for name in ("a.mp4", "b.mp4", "c.mp4", "d.mp4"):
        (tmp_path / name).write_bytes(b"x")
    items = expand_sources([str(tmp_path / n) for n in ("a.mp4", "b.mp4", "c.mp4", "d.mp4")])
    frames = {items[0].video_id: 10, items[1].video_id: 300, items[2].video_id: 10}  # d: unknown
    ordered = [item.video_id for item in longest_first(items, frames)]
    assert ordered == [items[1].video_id, items[0].video_id, items[2].video_id, items[3].video_id]
