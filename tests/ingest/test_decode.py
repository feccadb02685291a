"""ingest_video on real encoded videos: shapes, rotation, fps, incrementality, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from storage_schemas.layout import FRAMES, KEYPOINTS, MASKS, VIDEOS_GROUP
from storage_schemas.records import DecodeParams, Status
from tasks.ingest.video import ingest_video
from tasks.io.sources import expand_sources
from tasks.io.store import open_snapshot, read_catalog
from tests.conftest import moving_frames, write_bad_inputs


def _ingest(sources, store, **params):
    decode = DecodeParams(**params)
    return [ingest_video(item, store, decode) for item in expand_sources([str(s) for s in sources])]


@pytest.mark.parametrize(
    "name,vcodec", [("a.mp4", "libx264"), ("b.mkv", "libx264"), ("c.webm", "libvpx-vp9"), ("d.avi", "mpeg4"), ("e.mov", "libx264")]
)
def test_each_container_decodes_to_short_side(tmp_path, make_video, name, vcodec):
    path = make_video(name, frames=20, height=72, width=128, vcodec=vcodec)
    store = str(tmp_path / "s.zarr")
    [outcome] = _ingest([path], store, short_side=48, shard_frames=8)
    assert outcome.action == "decoded", outcome.reason
    record = read_catalog(store)[outcome.video_id]
    assert record.status is Status.complete and record.frame_count == 20
    assert (record.height, record.width) == (48, 85)  # 128 * 48/72 = 85.3, rounded to the nearest pixel
    frames = open_snapshot(store).group(outcome.video_id)[FRAMES]
    assert frames.shape == (20, 48, 85, 3) and frames.dtype == np.uint8
    assert record.sha256 and record.byte_size == path.stat().st_size and record.frames_sha256


def test_native_size_frames_match_the_source_pixels(tmp_path, make_video):
    path = make_video("a.mp4", frames=12, height=64, width=96)
    store = str(tmp_path / "s.zarr")
    [outcome] = _ingest([path], store, short_side=0)
    stored = open_snapshot(store).group(outcome.video_id)[FRAMES][:]
    expected = moving_frames(12, 64, 96)
    # H.264 4:2:0 at crf 18 is lossy; each decoded frame is still far closer to its own source
    # frame than to its neighbour, so frames are neither reordered nor dropped.
    error = np.abs(stored.astype(int) - expected).mean()
    shifted = np.abs(stored[1:].astype(int) - expected[:-1]).mean()
    assert error < 10 and error < 0.3 * shifted, (error, shifted)


def test_rotation_metadata_is_honoured(tmp_path, make_video):
    path = make_video("portrait.mp4", frames=10, height=64, width=96, rotation=90)
    store = str(tmp_path / "s.zarr")
    [outcome] = _ingest([path], store, short_side=32)
    record = read_catalog(store)[outcome.video_id]
    assert record.rotation in (90, 270)
    assert (record.height, record.width) == (48, 32)  # displayed portrait: 64 wide, 96 tall


def test_fps_resampling(tmp_path, make_video):
    path = make_video("a.mp4", frames=24, fps=12)
    store = str(tmp_path / "s.zarr")
    [outcome] = _ingest([path], store, short_side=32, fps=6)
    record = read_catalog(store)[outcome.video_id]
    assert record.fps == 6 and abs(record.frame_count - 12) <= 1


def test_rerun_skips_and_param_change_redecodes(tmp_path, make_video):
    path = make_video("a.mp4")
    store = str(tmp_path / "s.zarr")
    [first] = _ingest([path], store, short_side=32)
    [again] = _ingest([path], store, short_side=32)
    [changed] = _ingest([path], store, short_side=40)
    assert (first.action, again.action, changed.action) == ("decoded", "skipped", "decoded")
    assert read_catalog(store)[first.video_id].height == 40


def test_changed_source_bytes_redecode(tmp_path, make_video):
    path = make_video("a.mp4", seed=0)
    store = str(tmp_path / "s.zarr")
    [first] = _ingest([path], store, short_side=32)
    old_sha = read_catalog(store)[first.video_id].sha256
    make_video("a.mp4", seed=1)
    [second] = _ingest([path], store, short_side=32)
    assert second.action == "decoded" and second.video_id == first.video_id
    assert read_catalog(store)[first.video_id].sha256 != old_sha
    assert len(read_catalog(store)) == 1


def test_bad_inputs_fail_with_reasons_and_good_ones_are_stored(tmp_path, make_video):
    expected = write_bad_inputs(tmp_path / "videos")
    make_video("good.mp4")
    store = str(tmp_path / "s.zarr")
    outcomes = _ingest([tmp_path / "videos", tmp_path / "videos" / "notes.webm", tmp_path / "nope.mp4"], store)
    by_name = {o.uri.rsplit("/", 1)[-1]: o for o in outcomes}
    assert by_name["good.mp4"].action == "decoded"
    catalog = read_catalog(store)
    for name, fragment in {**expected, "nope.mp4": "no such file"}.items():
        outcome = by_name[name]
        record = catalog[outcome.video_id]
        assert outcome.action == "failed" and record.status is Status.failed, name
        assert fragment in record.reason and "\n" not in record.reason, (name, record.reason)
    # A failed video stores nothing: no version folder, and none left behind.
    video_id = by_name["random.mkv"].video_id
    assert open_snapshot(store).path(video_id) is None
    assert [p.name for p in (tmp_path / "s.zarr" / VIDEOS_GROUP / video_id).iterdir()] == ["zarr.json"]


def test_truncated_long_video_fails_instead_of_storing_a_prefix(tmp_path, make_video):
    path = make_video("long.mp4", frames=120, height=96, width=128)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    [outcome] = _ingest([path], str(tmp_path / "s.zarr"))
    assert outcome.action == "failed" and "truncated" in outcome.reason


def test_names_with_spaces_unicode_and_metacharacters(tmp_path, make_video):
    odd = make_video("my clip été $(echo pwned); rm -rf ~ `x` 'q\".mp4")
    store = tmp_path / "store with space.zarr"
    [outcome] = _ingest([odd], str(store), short_side=32)
    assert outcome.action == "decoded", outcome.reason
    assert (store / open_snapshot(str(store)).path(outcome.video_id) / FRAMES / "zarr.json").exists()
    assert {p.name for p in tmp_path.iterdir()} == {"videos", "store with space.zarr"}


def test_davis_folder_with_masks(tmp_path):
    from PIL import Image

    root = tmp_path / "DAVIS"
    frames = moving_frames(5, 48, 64)
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9)
    (root / "JPEGImages/480p/bear").mkdir(parents=True)
    (root / "Annotations/480p/bear").mkdir(parents=True)
    masks = np.zeros((5, 48, 64), np.uint8)
    masks[:, 10:20, 10:30] = 1
    masks[:, 30:40, 40:60] = 2
    for t in range(5):
        Image.fromarray(frames[t]).save(root / f"JPEGImages/480p/bear/{t:05d}.jpg", quality=95)
        image = Image.fromarray(masks[t], mode="P")
        image.putpalette(palette)
        image.save(root / f"Annotations/480p/bear/{t:05d}.png")
    store = str(tmp_path / "s.zarr")
    [outcome] = _ingest([root], store, short_side=24)
    record = read_catalog(store)[outcome.video_id]
    assert record.layout == "davis" and record.has_masks and record.object_ids == [1, 2]
    stored = open_snapshot(store).group(outcome.video_id)[MASKS][:]
    assert stored.shape == (5, 24, 32) and set(np.unique(stored)) == {0, 1, 2}
    assert (stored[:, 5:10, 5:15] == 1).all()


def test_jhmdb_keypoints_are_rescaled(tmp_path):
    from PIL import Image
    from scipy.io import savemat

    frames_dir = tmp_path / "jhmdb/Rename_Images/wave/clip1"
    mat_dir = tmp_path / "jhmdb/joint_positions/wave/clip1"
    frames_dir.mkdir(parents=True)
    mat_dir.mkdir(parents=True)
    for t, frame in enumerate(moving_frames(4, 40, 60)):
        Image.fromarray(frame).save(frames_dir / f"{t + 1:05d}.png")
    pos = np.zeros((2, 15, 4))
    pos[0], pos[1] = 30.0, 20.0
    pos[0, 0, :] = 100.0  # outside the 60-px-wide frame
    savemat(mat_dir / "joint_positions.mat", {"pos_img": pos})
    store = str(tmp_path / "s.zarr")
    [outcome] = _ingest([tmp_path / "jhmdb"], store, short_side=20)
    keypoints = open_snapshot(store).group(outcome.video_id)[KEYPOINTS][:]
    assert keypoints.shape == (4, 15, 3)
    np.testing.assert_allclose(keypoints[0, 1], [15.0, 10.0, 1.0])
    assert keypoints[0, 0, 2] == 0.0


def test_memory_store_and_memory_source(make_video):
    import uuid

    import fsspec

    path = make_video("a.mp4", frames=10)
    name = uuid.uuid4().hex
    fsspec.filesystem("memory").pipe(f"/{name}/in/a.mp4", path.read_bytes())
    store = f"memory://{name}/s.zarr"
    [outcome] = _ingest([f"memory://{name}/in"], store, short_side=32)
    assert outcome.action == "decoded", outcome.reason
    assert read_catalog(store)[outcome.video_id].frame_count == 10
