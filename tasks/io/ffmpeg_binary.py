"""The ffmpeg binary: where it is, and what it makes of a file before any decode.

The system ``ffmpeg`` when on PATH, else the static one in the ``imageio-ffmpeg`` wheel (which ships
no ffprobe). PyAV links its own libavformat, which may be older than the binary's: where the two
read a file differently, the binary (which decodes) is asked (``binary_demuxer``).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess

_INPUT = re.compile(r"^Input #0, ([^,\s]+(?:,[^,\s]+)*), from ", re.MULTILINE)


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: the system one if on PATH, else imageio-ffmpeg's."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def binary_demuxer(path: str, timeout: float = 30.0) -> str | None:
    """The demuxer the ffmpeg binary picks for a local file (reading it through the ``file``
    protocol only), or None when it reads none."""
    try:
        done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file", "-i", path],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    found = _INPUT.search(done.stderr)
    return found.group(1) if found else None
