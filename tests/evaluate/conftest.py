"""Tiny labelled datasets in the DAVIS, VIP and JHMDB layouts, written with numpy + PIL.

Objects are textured shapes moving by known per-frame shifts over a textured background, so
every mask and keypoint is exact.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from storage_schemas.palette import DAVIS_PALETTE


def texture(rng: np.random.Generator, height: int, width: int, block: int = 4) -> np.ndarray:
    """RGB uint8 (H, W, 3): random colour blocks of ``block`` px (a texture features can track)."""
    coarse = rng.integers(0, 256, (height // block + 1, width // block + 1, 3)).astype(np.uint8)
    return np.kron(coarse, np.ones((block, block, 1), np.uint8))[:height, :width]


def moving_objects(frames: int, height: int, width: int, objects: int, seed: int = 0):
    """(frames_thwc uint8, ids_thw uint8): textured rectangles moving by fixed shifts.

    Object k (1-based) is a (h_k, w_k) rectangle starting at a seeded position and moving by
    shifts[k] = (dy, dx) px per frame; later objects are drawn on top.
    """
    rng = np.random.default_rng(seed)
    background = texture(rng, height, width, block=6)
    frames_thwc = np.repeat(background[None], frames, axis=0).copy()
    ids_thw = np.zeros((frames, height, width), np.uint8)
    for k in range(1, objects + 1):
        oh, ow = height // 3, width // 4
        skin = texture(rng, oh, ow, block=3)
        y0 = int(rng.integers(0, height - oh - frames * 2))
        x0 = int(rng.integers(0, width - ow - frames * 3))
        dy, dx = int(rng.integers(0, 3)), int(rng.integers(1, 4))
        for t in range(frames):
            y, x = y0 + t * dy, x0 + t * dx
            frames_thwc[t, y:y + oh, x:x + ow] = skin
            ids_thw[t, y:y + oh, x:x + ow] = k
    return frames_thwc, ids_thw


def _save_png_ids(ids_hw: np.ndarray, path: Path, palette: bool) -> None:
    image = Image.fromarray(ids_hw)
    if palette:
        image.putpalette(DAVIS_PALETTE)
    image.save(path)


def write_davis(root: Path, sequences: dict[str, int], frames: int = 6, size=(76, 100)) -> dict[str, np.ndarray]:
    """A DAVIS-2017 folder: JPEGImages/480p/<seq>/00000.jpg, palette PNG Annotations, val list.

    Returns sequence -> ids (T, H, W). The size is deliberately not a multiple of 8 or 32.
    """
    truth = {}
    for i, (seq, objects) in enumerate(sequences.items()):
        frames_thwc, ids_thw = moving_objects(frames, *size, objects=objects, seed=i)
        images = root / "JPEGImages" / "480p" / seq
        annotations = root / "Annotations" / "480p" / seq
        images.mkdir(parents=True, exist_ok=True)
        annotations.mkdir(parents=True, exist_ok=True)
        for t in range(frames):
            Image.fromarray(frames_thwc[t]).save(images / f"{t:05d}.jpg", quality=95)
            _save_png_ids(ids_thw[t], annotations / f"{t:05d}.png", palette=True)
        truth[seq] = ids_thw
    (root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{s}\n" for s in sequences))
    return truth


def write_vip(root: Path, video: str = "v1", frames: int = 5, size=(64, 96), classes: int = 20) -> np.ndarray:
    """A VIP folder: Images/<video>/*.jpg and Annotations/Category_ids/<video>/*.png (mode L)."""
    frames_thwc, ids_thw = moving_objects(frames, *size, objects=3, seed=7)
    parts = np.where(ids_thw > 0, np.array([0, 3, 11, classes - 1], np.uint8)[ids_thw], 0).astype(np.uint8)
    images = root / "Images" / video
    annotations = root / "Annotations" / "Category_ids" / video
    images.mkdir(parents=True, exist_ok=True)
    annotations.mkdir(parents=True, exist_ok=True)
    for t in range(frames):
        Image.fromarray(frames_thwc[t]).save(images / f"{t + 1:012d}.jpg", quality=95)
        _save_png_ids(parts[t], annotations / f"{t + 1:012d}.png", palette=False)
    return parts


def write_jhmdb(root: Path, action: str = "walk", video: str = "clip1", frames: int = 5, size=(64, 80)) -> np.ndarray:
    """A JHMDB folder: Rename_Images/<action>/<video>/00001.png and joint_positions .mat
    (pos_img 2 x 15 x T, 0-based pixels). Joints sit on one moving textured object."""
    frames_thwc, ids_thw = moving_objects(frames, *size, objects=1, seed=3)
    rng = np.random.default_rng(5)
    ys, xs = np.nonzero(ids_thw[0])
    offsets = np.stack([rng.integers(0, xs.max() - xs.min() + 1, 15), rng.integers(0, ys.max() - ys.min() + 1, 15)], -1)
    keypoints = np.zeros((frames, 15, 2))
    for t in range(frames):
        ys, xs = np.nonzero(ids_thw[t])
        keypoints[t] = offsets + [xs.min(), ys.min()]
    images = root / "Rename_Images" / action / video
    joints = root / "joint_positions" / action / video
    images.mkdir(parents=True, exist_ok=True)
    joints.mkdir(parents=True, exist_ok=True)
    for t in range(frames):
        Image.fromarray(frames_thwc[t]).save(images / f"{t + 1:05d}.png")
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"pos_img": keypoints.transpose(2, 1, 0)})
    (joints / "joint_positions.mat").write_bytes(buffer.getvalue())
    return keypoints


def ingest_folder(folder: Path, store: Path) -> str:
    """Ingest every video under ``folder`` at native resolution, without Prefect."""
    from storage_schemas.records import DecodeParams
    from tasks.ingest.video import ingest_video
    from tasks.io.sources import expand_sources

    for item in expand_sources([str(folder)]):
        outcome = ingest_video(item, str(store), DecodeParams(short_side=0, shard_frames=8))
        assert outcome.action == "decoded", outcome
    return str(store)


@pytest.fixture
def davis_store(tmp_path):
    """(store, truth): two DAVIS sequences (2 objects and 1 object, 6 frames, 76x100) ingested."""
    truth = write_davis(tmp_path / "davis", {"blobs": 2, "single": 1})
    return ingest_folder(tmp_path / "davis", tmp_path / "davis.zarr"), truth


# Flat colours a raw-pixel feature tells apart: background, then objects 1, 2, 3.
FLAT_COLOURS = np.array([[40, 40, 220], [220, 40, 40], [40, 220, 40], [230, 230, 40]], np.uint8)


def flat_objects(frames: int, height: int, width: int, first: dict[int, int]) -> np.ndarray:
    """ids (T, H, W) uint8: object k (appearing from frame ``first[k]``) a box moving 2 px right a frame."""
    ids = np.zeros((frames, height, width), np.uint8)
    for slot, (k, start) in enumerate(sorted(first.items())):
        for t in range(start, frames):
            top, left = 4 + 22 * slot, 4 + 2 * t
            ids[t, top:top + 18, left:left + 24] = k
    return ids


def write_ytvos(root: Path, split: str, videos: dict[str, dict[int, int]], frames: int = 6,
                size=(72, 96)) -> dict[str, np.ndarray]:
    """A YouTube-VOS tree ``root/<split>``: meta.json, JPEGImages and palette Annotations every 5th
    frame (00000, 00005, …). ``videos``: name → object id → the frame it first appears in. train
    annotates every object in every frame; valid only each object's first frame, with that object
    alone. Frames are flat colours (objects are ids' colours), so raw pixels track them. Returns
    name → the true ids (T, H, W)."""
    import json

    folder = root / split
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{5 * t:05d}" for t in range(frames)]
    meta = {"videos": {v: {"objects": {str(k): {"category": f"thing{k}", "frames": names[f:]}
                                       for k, f in first.items()}} for v, first in videos.items()}}
    (folder / "meta.json").write_text(json.dumps(meta))
    truth = {}
    for video, first in videos.items():
        ids = flat_objects(frames, *size, first)
        (folder / "JPEGImages" / video).mkdir(parents=True)
        (folder / "Annotations" / video).mkdir(parents=True)
        for t, name in enumerate(names):
            Image.fromarray(FLAT_COLOURS[ids[t]]).save(folder / "JPEGImages" / video / f"{name}.jpg", quality=95)
            shown = ids[t] if split == "train" else np.where(np.isin(ids[t], [k for k, f in first.items() if f == t]),
                                                               ids[t], 0).astype(np.uint8)
            if split == "train" or shown.any():
                _save_png_ids(shown, folder / "Annotations" / video / f"{name}.png", palette=True)
        truth[video] = ids
    return truth


def write_davis_trainval(root: Path, splits: dict[str, str], frames: int = 5, size=(72, 96)) -> None:
    """DAVIS-2017 trainval: flat-coloured sequences with objects 1 and 2 from frame 0, listed in
    ImageSets/2017/<split>.txt (``splits``: sequence → train or val)."""
    for seq in splits:
        ids = flat_objects(frames, *size, {1: 0, 2: 0})
        (root / "JPEGImages/480p" / seq).mkdir(parents=True)
        (root / "Annotations/480p" / seq).mkdir(parents=True)
        for t in range(frames):
            Image.fromarray(FLAT_COLOURS[ids[t]]).save(root / "JPEGImages/480p" / seq / f"{t:05d}.jpg", quality=95)
            _save_png_ids(ids[t], root / "Annotations/480p" / seq / f"{t:05d}.png", palette=True)
    (root / "ImageSets/2017").mkdir(parents=True)
    for split in sorted(set(splits.values())):
        (root / "ImageSets/2017" / f"{split}.txt").write_text("".join(f"{s}\n" for s, p in splits.items() if p == split))
