"""Everyday files that container metadata lies about, each generated here with ffmpeg or PIL.

Each case asserts what the file shows (frames, timestamps, display geometry, names) is what the
store holds, or that the video fails with a reason naming the fault (docs/ingest.md).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from storage_schemas.layout import FRAMES, MASKS, TIMESTAMPS
from storage_schemas.records import DecodeParams, Status
from tasks.ingest.video import ingest_video
from tasks.io.ffmpeg import ffmpeg_exe
from tasks.io.sources import expand_sources
from tasks.io.store import open_snapshot, read_catalog
from tests.conftest import moving_frames


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", *args], check=True)


def ingest(source: Path, store: str, **params):
    """(outcome, record, video group) of the one video ``source`` expands to; the group is None for a
    video that failed (it stores nothing)."""
    [item] = expand_sources([str(source)])
    outcome = ingest_video(item, store, DecodeParams(**params))
    record = read_catalog(store)[outcome.video_id]
    snapshot = open_snapshot(store)
    return outcome, record, snapshot.group(outcome.video_id) if snapshot.path(outcome.video_id) else None


def distinct_frames(frames_thwc: np.ndarray, tolerance: float = 2.0) -> int:
    """How many frames differ from the frame before them (mean absolute difference > tolerance)."""
    diffs = np.abs(np.diff(frames_thwc.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    return 1 + int((diffs > tolerance).sum())


# --- 1. the decoded stream is the truth, not the container's metadata -------------------------------


@pytest.fixture
def vfr_mp4(tmp_path) -> Path:
    """12 distinct frames: six at 10 fps, then gaps of 0.6-0.8 s (r_frame_rate 10, mean 2.9 fps)."""
    path = tmp_path / "vfr.mp4"
    pts = "if(lt(N,6),N,5+(N-5)*7-mod(N,2))"  # in tenths of a second: 0..5, then 12, 18, 26, 32, 40, 46
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10", "-frames:v", "12", "-vf", f"setpts='{pts}/(10*TB)'",
           "-fps_mode", "passthrough", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    return path


def test_variable_frame_rate_keeps_every_frame_once_with_its_timestamp(vfr_mp4, tmp_path):
    outcome, record, group = ingest(vfr_mp4, str(tmp_path / "s.zarr"), short_side=0)
    assert outcome.action == "decoded", outcome.reason
    frames = group[FRAMES][:]
    assert record.frame_count == 12 == len(frames) == distinct_frames(frames)
    np.testing.assert_allclose(group[TIMESTAMPS][:], [0, .1, .2, .3, .4, .5, 1.2, 1.8, 2.6, 3.2, 4.0, 4.6], atol=1e-3)
    assert record.has_timestamps and record.frame_rate_mode == "variable"
    assert record.fps == pytest.approx(11 / 4.6, rel=1e-3) and record.probe_frame_count == 12


def test_variable_frame_rate_store_passes_validation(vfr_mp4, tmp_path):
    """Twelve distinct frames are twelve frames: no frozen runs, and the count the stream promises."""
    from tests.validate.conftest import validate

    store = str(tmp_path / "s.zarr")
    ingest(vfr_mp4, store)
    summary = validate(store)
    assert summary.passed, [r.details for r in summary.rules if not r.success]


def test_variable_frame_rate_resampled_only_when_asked_and_the_record_says_so(vfr_mp4, tmp_path):
    _, record, group = ingest(vfr_mp4, str(tmp_path / "s.zarr"), short_side=0, fps=5)
    assert record.status is Status.complete and record.frame_rate_mode == "resampled" and record.fps == 5
    assert record.decode_params.fps == 5 and group[TIMESTAMPS].shape == (record.frame_count,)
    np.testing.assert_allclose(np.diff(group[TIMESTAMPS][:]), 0.2, atol=1e-6)


def test_container_longer_than_the_video(tmp_path):
    """An MKV with 1 s of video and 4 s of audio: the audio's length promises nothing."""
    path = tmp_path / "longer_audio.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-f", "lavfi", "-i", "sine=d=4", "-map", "0:v",
           "-map", "1:a", "-frames:v", "25", "-c:v", "libx264", "-c:a", "aac", str(path))
    outcome, record, group = ingest(path, str(tmp_path / "s.zarr"))
    assert outcome.action == "decoded", outcome.reason
    assert record.frame_count == 25 and record.probe_frame_count == 25 and record.frame_rate_mode == "constant"
    assert record.fps == pytest.approx(25) and group[TIMESTAMPS][-1] == pytest.approx(0.96)


def test_trimmed_remux_stores_what_the_edit_list_shows(tmp_path):
    """``ffmpeg -ss 1.3 -c copy`` keeps packets from the previous keyframe and cuts them with an
    edit list: the container lists them, a player never shows them."""
    full, trimmed = tmp_path / "full.mp4", tmp_path / "trimmed.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "100", "-g", "25", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(full))
    ffmpeg("-ss", "1.3", "-i", str(full), "-t", "1.5", "-c", "copy", str(trimmed))
    import av

    with av.open(str(trimmed)) as container:
        shown = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        listed = container.streams.video[0].frames
    outcome, record, group = ingest(trimmed, str(tmp_path / "s.zarr"), short_side=0)
    assert outcome.action == "decoded", outcome.reason
    assert record.frame_count == len(shown) < listed == record.container_frame_count
    # PyAV's decode and vmac's agree frame for frame (both convert yuv420p with swscale).
    stored = group[FRAMES][:]
    assert np.abs(stored.astype(int) - np.stack(shown).astype(int)).mean() < 3
    assert group[TIMESTAMPS][0] == 0 and (np.diff(group[TIMESTAMPS][:]) > 0).all()


def test_attached_picture_is_not_the_video(tmp_path):
    """A cover image muxed as a second video stream, bigger than the video (older ffmpeg's
    default stream choice took the biggest); and a song whose only video stream is its cover."""
    video, cover, both = tmp_path / "v.mp4", tmp_path / "cover.png", tmp_path / "with_cover.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "20", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", str(video))
    ffmpeg("-f", "lavfi", "-i", "color=red:size=640x480", "-frames:v", "1", str(cover))
    ffmpeg("-i", str(cover), "-i", str(video), "-map", "0", "-map", "1", "-c:v:0", "png", "-c:v:1", "copy",
           "-disposition:v:0", "attached_pic", str(both))
    outcome, record, group = ingest(both, str(tmp_path / "s.zarr"), short_side=0)
    assert outcome.action == "decoded", outcome.reason
    assert record.frame_count == 20 and group[FRAMES].shape == (20, 48, 64, 3)
    only_cover = tmp_path / "song.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-i", str(cover), "-map", "0", "-map", "1", "-c:a", "aac",
           "-c:v:0", "png", "-disposition:v:0", "attached_pic", str(only_cover))
    outcome, record, _ = ingest(only_cover, str(tmp_path / "s.zarr"))
    assert outcome.action == "failed" and "attached picture" in record.reason


# --- 2. decode errors are not invisible -----------------------------------------------------------


@pytest.fixture
def corrupt_mp4(tmp_path) -> Path:
    """60 frames of H.264 in one GOP with 4 KB of its media data overwritten by random bytes."""
    path = tmp_path / "corrupt.mp4"
    frames = moving_frames(60, 120, 160, seed=3)
    from tasks.io.ffmpeg import encode_video

    encode_video(frames, str(path), 25)
    data = bytearray(path.read_bytes())
    start = data.find(b"mdat") + (len(data) - data.find(b"mdat")) // 2
    data[start:start + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def test_corrupt_middle_fails_naming_the_decode_error(corrupt_mp4, tmp_path):
    outcome, record, group = ingest(corrupt_mp4, str(tmp_path / "s.zarr"))
    assert outcome.action == "failed" and record.status is Status.failed
    assert record.reason.startswith("damaged stream: ffmpeg logged") and "\n" not in record.reason
    assert "--on-decode-error keep" in record.reason
    assert group is None  # nothing stored


def test_corrupt_middle_kept_on_request_with_the_error_count(corrupt_mp4, tmp_path):
    outcome, record, _ = ingest(corrupt_mp4, str(tmp_path / "s.zarr"), on_decode_error="keep")
    assert outcome.action == "decoded" and record.status is Status.complete
    assert record.decode_errors > 0 and record.decode_error and record.decode_params.on_decode_error == "keep"


def test_truncated_mkv_without_an_index_fails(tmp_path):
    """An MKV cut short has no frame index to compare with: the demuxer's error is what shows."""
    path = tmp_path / "cut.mkv"
    from tasks.io.ffmpeg import encode_video

    encode_video(moving_frames(60, 96, 128, seed=4), str(path), 25)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.55)])
    outcome, record, _ = ingest(path, str(tmp_path / "s.zarr"))
    assert outcome.action == "failed" and record.reason.startswith("truncated: ffmpeg logged 1 error(s)")
    assert "File ended prematurely" in record.reason


# --- 3. display geometry --------------------------------------------------------------------------


def test_non_square_pixels_are_stored_at_the_display_aspect(tmp_path):
    path = tmp_path / "anamorphic.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "10", "-vf", "setsar=2/1",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    _, record, group = ingest(path, str(tmp_path / "s.zarr"), short_side=0)
    assert record.sample_aspect_ratio == "2:1" and (record.source_width, record.source_height) == (640, 240)
    assert group[FRAMES].shape == (10, 240, 640, 3)
    _, record, group = ingest(path, str(tmp_path / "t.zarr"), short_side=120)
    assert group[FRAMES].shape == (10, 120, 320, 3)


def test_short_side_zero_keeps_an_odd_native_size_exactly(tmp_path):
    path = tmp_path / "odd.mkv"  # FFV1: lossless, and odd sizes are legal (x264 crops them to even)
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=101x75:rate=25", "-frames:v", "6", "-c:v", "ffv1", str(path))
    _, record, group = ingest(path, str(tmp_path / "s.zarr"), short_side=0)
    assert (record.width, record.height) == (101, 75) and group[FRAMES].shape == (6, 75, 101, 3)


def write_folder(folder: Path, frames: np.ndarray, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for frame, name in zip(frames, names):
        Image.fromarray(frame).save(folder / name)


def test_odd_sized_labelled_folder_keeps_frames_and_masks_unresampled(tmp_path):
    root = tmp_path / "DAVIS"
    frames = moving_frames(4, 45, 67)
    masks = np.zeros((4, 45, 67), np.uint8)
    masks[:, 10:20, 5:40] = 1
    write_folder(root / "JPEGImages/480p/odd", frames, [f"{t:05d}.png" for t in range(4)])
    write_folder(root / "Annotations/480p/odd", masks * 255, [f"{t:05d}.png" for t in range(4)])
    _, record, group = ingest(root, str(tmp_path / "s.zarr"), short_side=0)
    assert (record.height, record.width) == (45, 67)
    np.testing.assert_array_equal(group[FRAMES][:], frames)
    np.testing.assert_array_equal(group[MASKS][:], masks)


# --- 4. frame-folder names ------------------------------------------------------------------------


def test_unpadded_frame_names_keep_time_order_and_are_recorded(tmp_path):
    frames = moving_frames(12, 32, 48, shift=4)
    names = [f"{t}.png" for t in range(12)]
    write_folder(tmp_path / "clip", frames, names)
    _, record, group = ingest(tmp_path / "clip", str(tmp_path / "s.zarr"), short_side=0)
    np.testing.assert_array_equal(group[FRAMES][:], frames)
    assert record.frame_names == names and TIMESTAMPS not in group and record.fps is None


def test_unpadded_davis_sequence_keeps_masks_with_their_frames(tmp_path):
    root = tmp_path / "DAVIS"
    frames = moving_frames(11, 32, 48, shift=4)
    masks = np.zeros((11, 32, 48), np.uint8)
    for t in range(11):
        masks[t, 5:15, t:t + 10] = 1
    names = [f"{t}.png" for t in range(11)]
    write_folder(root / "JPEGImages/480p/seq", frames, [n.replace(".png", ".jpg") for n in names])
    write_folder(root / "Annotations/480p/seq", masks * 255, names)
    _, record, group = ingest(root, str(tmp_path / "s.zarr"), short_side=0, fps=24)
    np.testing.assert_array_equal(group[MASKS][:], masks)
    assert record.frame_names[:3] == ["0.jpg", "1.jpg", "2.jpg"] and record.frame_names[-1] == "10.jpg"
    assert record.frame_rate_mode == "constant" and group[TIMESTAMPS][2] == pytest.approx(2 / 24)


# --- 5. labels agree with frames ------------------------------------------------------------------


@pytest.mark.parametrize("label_frames", [9, 7])
def test_keypoints_for_another_number_of_frames_fail_naming_both_counts(tmp_path, label_frames):
    folder = tmp_path / "jhmdb/Rename_Images/wave/clip"
    write_folder(folder, moving_frames(8, 40, 60), [f"{t + 1:05d}.png" for t in range(8)])
    mats = tmp_path / "jhmdb/joint_positions/wave/clip"
    mats.mkdir(parents=True)
    savemat(mats / "joint_positions.mat", {"pos_img": np.full((2, 15, label_frames), 10.0)})
    outcome, record, _ = ingest(tmp_path / "jhmdb", str(tmp_path / "s.zarr"))
    assert outcome.action == "failed"
    assert record.reason == f"joint_positions.mat has keypoints for {label_frames} frames, the folder has 8 frames"


def test_annotation_of_another_size_fails_instead_of_being_resized(tmp_path):
    root = tmp_path / "DAVIS"
    write_folder(root / "JPEGImages/480p/seq", moving_frames(3, 48, 64), ["00000.jpg", "00001.jpg", "00002.jpg"])
    write_folder(root / "Annotations/480p/seq", np.zeros((1, 24, 32), np.uint8), ["00000.png"])
    outcome, record, _ = ingest(root, str(tmp_path / "s.zarr"))
    assert outcome.action == "failed" and record.reason == "annotation 00000.png is 32×24, its frames are 64×48"


def test_frames_of_mixed_sizes_fail(tmp_path):
    write_folder(tmp_path / "clip", moving_frames(2, 48, 64), ["a1.png", "a2.png"])
    write_folder(tmp_path / "clip", moving_frames(1, 40, 64), ["a3.png"])
    outcome, record, _ = ingest(tmp_path / "clip", str(tmp_path / "s.zarr"))
    assert outcome.action == "failed" and record.reason == "frame a3.png is 64×40, the first frame a1.png is 64×48"
