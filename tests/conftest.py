"""Shared test set-up: an isolated, offline Prefect; real encoded test videos.

Prefect reads its settings at import, so the environment is fixed in pytest_configure, before
any test module imports it (docs/architecture.md, "Dependencies").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest


def pytest_configure(config):
    home = tempfile.mkdtemp(prefix="vmac-prefect-")
    config._vmac_prefect_home = home
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "PREFECT_HOME": home,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
            "PREFECT_RESULTS_LOCAL_STORAGE_PATH": os.path.join(home, "storage"),
            "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
            "GX_ANALYTICS_ENABLED": "false",
            # vmac's local Prefect server (vmac_server/supervisor.py), started by the first `vmac` subprocess
            # of a test, is stopped at the session's end; should that fail, it stops after a minute.
            "VMAC_PREFECT_IDLE_SECONDS": "60",
            # As the vmac command does, before anything loads torch's OpenMP (docs/learning.md, "Threads").
            "OMP_WAIT_POLICY": "PASSIVE",
        }
    )


def pytest_unconfigure(config):
    home = getattr(config, "_vmac_prefect_home", None)
    if home:
        from vmac_server.supervisor import stop_server

        stop_server(Path(home))  # the local Prefect server a `vmac` subprocess of a test started
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_harness():
    """A real Prefect API (ephemeral, SQLite) for flow tests, started once per session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def moving_frames(frames: int, height: int, width: int, seed: int = 0, shift: int = 3) -> np.ndarray:
    """RGB uint8 (T, H, W, 3): a smooth random texture panning right by ``shift`` px per frame.

    Smooth, so lossy codecs keep it recognisable; moving, so no two frames are equal.
    """
    rng = np.random.default_rng(seed)
    big_w = width + shift * frames
    coarse = rng.integers(0, 256, (height // 8 + 2, big_w // 8 + 2, 3)).astype(np.float32)
    texture = np.kron(coarse, np.ones((8, 8, 1), np.float32))[:height, :big_w]
    out = np.stack([texture[:, t * shift : t * shift + width] for t in range(frames)])
    return out.clip(0, 255).astype(np.uint8)


@pytest.fixture
def make_video(tmp_path):
    """make_video(name, frames=24, height=72, width=128, vcodec="libx264", rotation=0, fps=12) -> Path."""
    from tasks.io.ffmpeg import encode_video, set_rotation

    def _make(name: str, frames: int = 24, height: int = 72, width: int = 128, vcodec: str = "libx264",
              rotation: int = 0, fps: float = 12, seed: int = 0, folder: Path | None = None) -> Path:
        folder = folder or tmp_path / "videos"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        crf = None if vcodec == "mpeg4" else (30 if vcodec == "libvpx-vp9" else 18)
        data = moving_frames(frames, height, width, seed)
        if rotation:
            plain = folder / f".plain-{name}"
            encode_video(data, str(plain), fps, vcodec, crf)
            set_rotation(str(plain), str(path), rotation)
            plain.unlink()
        else:
            encode_video(data, str(path), fps, vcodec, crf)
        return path

    return _make


def write_bad_inputs(folder: Path) -> dict[str, str]:
    """The bad inputs the ingest issue names; returns file name → expected reason fragment."""
    import subprocess

    from tasks.io.ffmpeg import ffmpeg_exe

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.mp4").write_bytes(b"")
    good = moving_frames(16, 64, 96)
    from tasks.io.ffmpeg import encode_video

    encode_video(good, str(folder / ".full.mp4"), 12)
    full = (folder / ".full.mp4").read_bytes()
    (folder / ".full.mp4").unlink()
    (folder / "truncated.mp4").write_bytes(full[: len(full) // 3])
    (folder / "random.mkv").write_bytes(np.random.default_rng(1).integers(0, 256, 30000, dtype=np.uint8).tobytes())
    (folder / "notes.webm").write_text("this is a text file, not a video\n")
    subprocess.run(
        [ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=1", str(folder / "audio_only.mp4")],
        check=True,
    )
    return {
        "zero.mp4": "empty file",
        "truncated.mp4": "",
        "random.mkv": "not a readable video",
        "notes.webm": "not a readable video",
        "audio_only.mp4": "no video stream",
    }
