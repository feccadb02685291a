"""Realistic slow scenes, generated: the footage validation's content heuristics must not mistake
for frozen, black or flat video, and the broken footage they must catch.

Every clip starts from a real picture (a frame of one of the dev clips when they are there, else
a rendered scene), goes through what a camera or an editor does to it, and is encoded with x264
as a phone or an editing tool would (yuv420p, CRF 23, 25 fps), so the decoded frames carry real
compression: a still region is coded as skipped blocks, noise is partly smoothed away.

- ``slow-pan``: a 640×360 window panning 0.25 px a frame across the picture (a tripod pan), with
  sensor noise (Gaussian, σ 1.5 levels, new every frame);
- ``slow-zoom``: a 0.04 %-a-frame zoom into the picture (a Ken Burns move);
- ``static-camera``: a locked-off shot: the picture held still with sensor noise σ 2, and a small
  subject (40×24 px, 0.4 % of the frame) walking across it at 1 px a frame;
- ``static-camera-quiet``: the same with a clean sensor (noise σ 0.6), a distant subject (20×12
  px) at 0.5 px a frame, encoded at CRF 30 (heavy compression: almost every block skipped);
- ``title-fade``: a title card (white text on dark grey) fading in from black over 3 s and out over 3 s;
- ``screen-recording``: a desktop-like window where a line of text is typed, one character every
  4 frames, and a caret blinks (a screen capture: digital, noiseless);
- ``frozen``: the picture as a camera that stopped (frames identical after the first), the
  broken case;
- ``black``: 6 s of black with faint noise (a lens cap), the broken case.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tasks.io.ffmpeg import ffmpeg_exe

SIZE = (640, 360)  # width, height of every clip
FPS = 25
SECONDS = 6
FRAMES = FPS * SECONDS
# Which clips are healthy footage (validation must leave them alone) and which are broken.
HEALTHY = ("slow-pan", "slow-zoom", "static-camera", "static-camera-quiet", "title-fade", "screen-recording")
BROKEN = ("frozen", "black")


def source_picture(dev_videos: Path | None, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: a frame from the middle of the first dev clip, else a rendered scene of
    smooth shading, sharp-edged shapes and fine texture: real footage has edges at every scale,
    and without them a slow zoom stored at 64 px changes by less than a grey level a frame and
    reads as frozen."""
    if dev_videos is not None and any(dev_videos.glob("*.mp4")):
        clip = sorted(dev_videos.glob("*.mp4"))[0]
        done = subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", "1", "-i", str(clip), "-frames:v", "1",
                               "-f", "rawvideo", "-pix_fmt", "rgb24", "-vf", "scale=960:540", "-"],
                              capture_output=True, check=True)
        return np.frombuffer(done.stdout, np.uint8).reshape(540, 960, 3).copy()
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:540, 0:960] / 540.0
    picture = np.stack([0.5 + 0.4 * np.sin(3 * x + c) * np.cos(2 * y - c) for c in (0, 1, 2)], -1)
    for _ in range(60):  # shapes of many sizes with sharp edges, as objects in a real frame
        cy, cx = rng.uniform(0, 1), rng.uniform(0, 960 / 540)
        ry, rx = rng.uniform(0.02, 0.15, 2)
        inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1
        picture[inside] = rng.uniform(0, 1, 3)
    picture += 0.08 * np.sign(np.sin(40 * x + 25 * y))[..., None]  # fine stripes
    picture += rng.normal(0, 0.05, picture.shape)
    return (np.clip(picture, 0, 1) * 255).astype(np.uint8)


def _crop(picture: np.ndarray, left: float, top: float, scale: float = 1.0) -> np.ndarray:
    """A SIZE window of ``picture`` at a sub-pixel offset and zoom (bilinear), as a camera moving slowly sees it."""
    width, height = SIZE
    box = (left, top, left + width / scale, top + height / scale)
    return np.asarray(Image.fromarray(picture).resize(SIZE, Image.Resampling.BILINEAR, box=box))


def _noisy(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def _title_card() -> np.ndarray:
    image = Image.new("RGB", SIZE, (28, 28, 32))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    draw.text((SIZE[0] // 2, SIZE[1] // 2 - 20), "A Day at the Lake", fill=(235, 235, 235), font=font, anchor="mm")
    draw.text((SIZE[0] // 2, SIZE[1] // 2 + 30), "summer 2019", fill=(170, 170, 170),
              font=ImageFont.load_default(size=24), anchor="mm")
    return np.asarray(image)


def _screen(t: int) -> np.ndarray:
    """A desktop: a window with a title bar and a line being typed, one character per 4 frames."""
    image = Image.new("RGB", SIZE, (52, 101, 164))
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 40, 580, 320), fill=(250, 250, 250))
    draw.rectangle((60, 40, 580, 66), fill=(210, 210, 215))
    text = "vmac ingest ~/videos --store data/videos.zarr --fps 25"[: t // 4]
    font = ImageFont.load_default(size=16)
    draw.text((76, 90), "$ " + text, fill=(20, 20, 20), font=font)
    if (t // 12) % 2 == 0:  # the caret blinks twice a second
        right = draw.textbbox((76, 90), "$ " + text, font=font)[2]
        draw.rectangle((right + 2, 90, right + 10, 108), fill=(20, 20, 20))
    return np.asarray(image)


def _subject(still: np.ndarray, t: int, size: tuple[int, int], speed: float, rng_seed: int) -> np.ndarray:
    """``still`` with a textured subject of ``size`` (w, h) at x = 20 + speed·t (sub-pixel, bilinear)."""
    w, h = size
    skin = np.random.default_rng(rng_seed).integers(60, 200, (h, w, 3)).astype(np.float64)
    frame = still.astype(np.float64).copy()
    x = 20 + speed * t
    left, frac = int(x), x - int(x)
    top = SIZE[1] - h - 30
    frame[top:top + h, left:left + w] = (1 - frac) * skin + frac * frame[top:top + h, left:left + w]
    return frame


def scene_frames(name: str, picture: np.ndarray, seed: int = 0, frames: int = FRAMES) -> Iterator[np.ndarray]:
    """``frames`` frames (H, W, 3) uint8 of clip ``name`` (the module docstring's list; a shorter
    clip fades over half its length)."""
    rng = np.random.default_rng(seed)
    still = _crop(picture, 100, 60)
    fade = min(3 * FPS, frames // 2)
    makers: dict[str, Callable[[int], np.ndarray]] = {
        "slow-pan": lambda t: _noisy(_crop(picture, 40 + 0.25 * t, 60), 1.5, rng),
        "slow-zoom": lambda t: _noisy(_crop(picture, 100, 60, 1 + 0.0004 * t), 1.5, rng),
        "static-camera": lambda t: _noisy(_subject(still, t, (40, 24), 1.0, seed), 2.0, rng),
        "static-camera-quiet": lambda t: _noisy(_subject(still, t, (20, 12), 0.5, seed), 0.6, rng),
        "title-fade": lambda t: (_title_card() * min(t / fade, (frames - 1 - t) / fade, 1.0)).astype(np.uint8),
        "screen-recording": _screen,
        "frozen": lambda t: still,
        "black": lambda t: _noisy(np.zeros_like(still), 0.8, rng),
    }
    for t in range(frames):
        yield makers[name](t)


def write_scene(name: str, picture: np.ndarray, path: Path, seed: int = 0, frames: int = FRAMES) -> Path:
    """Clip ``name`` encoded with x264 (yuv420p; CRF 30 for the quiet static shot, else 23) to ``path``."""
    crf = "30" if name == "static-camera-quiet" else "23"
    width, height = SIZE
    encoder = subprocess.Popen(
        [ffmpeg_exe(), "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
         "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", crf, "-pix_fmt", "yuv420p",
         "-threads", "1", str(path)], stdin=subprocess.PIPE)
    for frame in scene_frames(name, picture, seed, frames):
        encoder.stdin.write(np.ascontiguousarray(frame).tobytes())
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise RuntimeError(f"ffmpeg could not encode {name}")
    return path


def write_scenes(folder: Path, dev_videos: Path | None, names: tuple[str, ...] = HEALTHY + BROKEN,
                 frames: int = FRAMES) -> list[Path]:
    """Every clip of ``names`` as ``folder/<name>.mp4``, ``frames`` frames each."""
    folder.mkdir(parents=True, exist_ok=True)
    picture = source_picture(dev_videos)
    return [write_scene(name, picture, folder / f"{name}.mp4", seed, frames) for seed, name in enumerate(names)]
