"""``vmac ingest --motion``: the motion map beside the frames, from codec motion vectors or frame
differences, lined up with the stored frames, hashed, audited, and masked by."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from storage_schemas.layout import FRAMES, MOTION, MOTION_CELL
from storage_schemas.records import DecodeParams, Status
from tasks.audit.rehash import audit
from tasks.ingest.motion import cell_means
from tasks.ingest.plan import decode_key
from tasks.ingest.video import ingest_video
from tasks.io.ffmpeg import encode_video, set_rotation
from tasks.io.sources import expand_sources
from tasks.io.store import open_snapshot, read_catalog
from vmac_core.augment import PairCrop, crop_cell_map
from vmac_core.mask_strategies import MOTION_KEY, build_mask_strategy
from vmac_core.model_config import ModelConfig

T, H, W = 16, 96, 160
BOX = (8, 40)  # rows of the moving square; it slides right from column 10, 3 px a frame
from tests.stores import writable_group


def object_clip(seed: int = 0) -> np.ndarray:
    """uint8 (T, H, W, 3): a dim static texture and one bright textured square moving right."""
    rng = np.random.default_rng(seed)
    background = np.kron(rng.integers(60, 120, (H // 8, W // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    square = np.kron(rng.integers(0, 256, (4, 4, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    frames = np.repeat(background[None], T, axis=0)
    for t in range(T):
        frames[t, BOX[0]:BOX[1], 10 + 3 * t:42 + 3 * t] = square
    return frames


def _ingest(folder, store, **params) -> dict:
    outcomes = [ingest_video(item, str(store), DecodeParams(**params)) for item in expand_sources([str(folder)])]
    assert all(o.action == "decoded" for o in outcomes), [o.reason for o in outcomes]
    return {o.uri.rsplit("/", 1)[-1]: o.video_id for o in outcomes}


@pytest.fixture(scope="module")
def motion_store(tmp_path_factory):
    """Stores of the same clip as H.264 (plain, turned 90° and 270°), VP9, and a PNG frame folder."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("motion-videos")
    frames = object_clip()
    encode_video(frames, str(folder / "plain.mp4"), 12)
    set_rotation(str(folder / "plain.mp4"), str(folder / "turned90.mp4"), 90)
    set_rotation(str(folder / "plain.mp4"), str(folder / "turned270.mp4"), 270)
    encode_video(frames, str(folder / "clip.webm"), 12, "libvpx-vp9", 30)
    (folder / "pngs").mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / "pngs" / f"{t:05d}.png")
    store = folder / "s.zarr"
    ids = _ingest(folder, store, short_side=0, shard_frames=8, motion=True)
    return str(store), ids


def _arrays(store: str, video_id: str) -> tuple[np.ndarray, np.ndarray]:
    group = open_snapshot(store).group(video_id)
    return np.asarray(group[FRAMES]), np.asarray(group[MOTION])


def _difference_cells(frames: np.ndarray) -> np.ndarray:
    """What the frame-difference source stores, computed here from the stored frames."""
    diff = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=-1)
    return np.concatenate([np.zeros((1, *cell_means(diff[0]).shape), np.float32),
                           np.stack([cell_means(d) for d in diff])])


def test_motion_map_shape_dtype_units_and_hash_in_the_record(motion_store):
    store, ids = motion_store
    catalog = read_catalog(store)
    expected_source = {"plain.mp4": "motion_vectors", "turned90.mp4": "motion_vectors",
                       "turned270.mp4": "motion_vectors", "clip.webm": "frame_difference", "pngs": "frame_difference"}
    for name, source in expected_source.items():
        record = catalog[ids[name]]
        frames, motion = _arrays(store, ids[name])
        assert record.status is Status.complete and record.has_motion and record.motion_source == source, name
        assert record.motion_cell == MOTION_CELL and motion.dtype == np.float32
        assert motion.shape == (frames.shape[0], -(-frames.shape[1] // MOTION_CELL), -(-frames.shape[2] // MOTION_CELL))
        assert record.motion_sha256 == hashlib.sha256(np.ascontiguousarray(motion).tobytes()).hexdigest()
    # Frame differences are exactly what the stored frames say, in 0-255 levels.
    frames, motion = _arrays(store, ids["pngs"])
    assert np.allclose(motion, _difference_cells(frames), atol=1e-4)


@pytest.mark.parametrize("name", ["plain.mp4", "turned90.mp4", "turned270.mp4"])
def test_codec_motion_lines_up_with_the_stored_frames(motion_store, name):
    """Codec vectors, turned and scaled as the frames were, fall where the frames changed."""
    store, ids = motion_store
    frames, motion = _arrays(store, ids[name])
    changed = _difference_cells(frames)[1:].sum(axis=0) > 10
    moving = motion[1:].sum(axis=0) > 0
    assert moving.any() and changed.any()
    # Nearly all codec motion sits on cells the frames say changed, and covers most of them.
    assert (moving & changed).sum() >= 0.8 * moving.sum() and (moving & changed).sum() >= 0.5 * changed.sum()


def test_motion_masking_masks_the_moving_object_more_often(motion_store):
    """Over many draws, patches over the moving square are masked far more often than static ones."""
    store, ids = motion_store
    frames, motion = _arrays(store, ids["plain.mp4"])
    cfg = ModelConfig(encoder="convnextv2_atto", input_size=160, mask_ratio=0.5, mask_strategy="motion")
    masking = build_mask_strategy(cfg)
    # The whole frame (96 × 160) as the crop, resized to a 5 × 5 patch grid.
    crop = PairCrop(0, 0, H, W, flip=False)
    motion_bl = torch.stack([crop_cell_map(torch.from_numpy(motion[t]), crop, MOTION_CELL, 5) for t in range(1, T)])
    batch = {"frame1_bchw": torch.zeros(T - 1, 3, 160, 160), "frame2_bchw": torch.zeros(T - 1, 3, 160, 160),
             MOTION_KEY: motion_bl}
    generator = torch.Generator().manual_seed(0)
    hits = sum(masking.draw(batch, generator).mask1_bl.float().sum(0) for _ in range(40)) / (40 * (T - 1))
    rows = hits.view(5, 5)
    # The square spans rows 8-40 of 96 (patch rows 0-1 of 5, 19.2 px each) and columns 10-87 of
    # 160 (patch columns 0-2); rows 3-4 never move. Uniform masking would mask each 12/25 = 0.48.
    assert rows[:2, 1].min() > 0.9 > rows[3:].max()
    assert rows[:2, :3].mean() > 1.5 * rows[3:].mean()


def test_a_crop_averages_its_pixels_per_patch_and_a_flip_reverses_the_map():
    map_hw = torch.arange(12.0).view(3, 4)  # 3 × 4 cells of 8 px: a 24 × 32 frame
    pixels = np.kron(map_hw.numpy(), np.ones((8, 8)))
    whole = crop_cell_map(map_hw, PairCrop(0, 0, 24, 32, flip=False), 8, 2).view(2, 2)
    expected = pixels.reshape(2, 12, 2, 16).mean(axis=(1, 3))  # four 12 × 16 patches
    assert np.allclose(whole.numpy(), expected)
    flipped = crop_cell_map(map_hw, PairCrop(0, 0, 24, 32, flip=True), 8, 2).view(2, 2)
    assert torch.equal(flipped, whole.flip(1))
    corner = crop_cell_map(map_hw, PairCrop(8, 16, 16, 16, flip=False), 8, 2)
    assert corner.tolist() == [6.0, 7.0, 10.0, 11.0]


def test_motion_survives_the_round_trip_and_audit_catches_an_edit(motion_store, tmp_path):
    store, ids = motion_store
    clean = audit(store)
    assert not clean.drifted and clean.checked["motion"] == len(ids)
    group = writable_group(store, ids["plain.mp4"])  # an edit vmac never makes: what audit is for
    saved = np.asarray(group[MOTION][3])
    try:
        group[MOTION][3] = saved + 1.0
        drifts = {(d.what, d.video_id, d.detail) for d in audit(store).drifts}
        assert drifts == {("motion", ids["plain.mp4"], "changed")}
    finally:
        group[MOTION][3] = saved


def test_motion_joins_the_decode_key_only_when_on():
    params = DecodeParams()
    before = hashlib.sha256(json.dumps({"sha256": "abc", "params": {k: v for k, v in params.model_dump(mode="json").items()
                                                                     if k not in ("motion", "frame_codec")}}, sort_keys=True).encode()).hexdigest()
    assert decode_key("abc", params) == before  # stores ingested before --motion existed are not redone
    assert decode_key("abc", params.model_copy(update={"motion": True})) != before
