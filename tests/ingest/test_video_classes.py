"""The classes of video file the conformance matrix cannot hold: what a folder walk takes by
content, inputs that are not regular files or never end, headers that claim more than a store
holds, and the memory a native-size decode may use (docs/ingest.md, "The decoder contract").

Every input is generated here with ffmpeg; the oracle for "is it a video" is ffmpeg's own decode.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from storage_schemas.layout import FRAMES
from storage_schemas.records import DecodeParams, Status
from tasks.ingest import container
from tasks.ingest.video import ingest_video
from tasks.io import ffmpeg as ffmpeg_module
from tasks.io.ffmpeg import FfmpegDecode, ffmpeg_exe
from tasks.io.probe import PacketCount, Probe, VideoError
from tasks.io.shards import MAX_SHARD_BYTES, frames_per
from tasks.io.sources import expand_sources, scan_sources
from tasks.io.store import UnreadableFramesError, frames_sha256, open_snapshot, read_catalog
from tests.stores import writable_group

LAVFI = ("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-frames:v", "8")

# Camcorders, phones, broadcast recorders and old archives write these; none has an extension the
# walk knows, and one has none at all. (ffmpeg arguments after the input, then the file name.)
CONTAINERS = {
    "00001.MTS": ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mpegts", "-mpegts_m2ts_mode", "1"),
    "clip.m2ts": ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mpegts", "-mpegts_m2ts_mode", "1"),
    "broadcast.ts": ("-c:v", "mpeg2video", "-f", "mpegts"),
    "phone.m4v": ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4"),
    "dvd.mpg": ("-c:v", "mpeg2video", "-f", "mpeg"),
    "old.3gp": ("-c:v", "mpeg4", "-f", "3gp"),
    "web.flv": ("-c:v", "flv1", "-f", "flv"),
    "office.wmv": ("-c:v", "wmv2", "-f", "asf"),
    "loop.gif": ("-f", "gif"),
    "VID_0001.MP4": ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4"),
    "recording": ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "matroska"),
}


def ffmpeg(*args: str, cwd: Path | None = None) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", *args], check=True, cwd=cwd)


def ffmpeg_frames(path: Path) -> int:
    """How many frames ffmpeg's own decode of ``path`` shows (its default stream, no resampling)."""
    done = subprocess.run([ffmpeg_exe(), "-nostdin", "-i", str(path), "-fps_mode", "passthrough", "-f", "framemd5",
                           "-"], capture_output=True, text=True, check=True)
    return sum(1 for line in done.stdout.splitlines() if line and not line.startswith("#"))


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """Eleven videos in containers the walk must find by content, and what it must leave out."""
    folder = tmp_path / "card"
    folder.mkdir()
    for name, args in CONTAINERS.items():  # a title each, so no two files hold the same bytes (no aliases)
        ffmpeg(*LAVFI, *args, "-metadata", f"title={name}", "-metadata", f"service_name={name}", str(folder / name))
    (folder / "notes.txt").write_text("shot list: take 3 is the good one\n")
    ffmpeg("-f", "lavfi", "-i", "color=blue:size=64x48", "-frames:v", "1", str(folder / "thumbnail.jpg"))
    ffmpeg("-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "aac", str(folder / "voice.m4a"))
    (folder / "list.m3u8").write_text("#EXTM3U\n#EXTINF:1.0,\nbroadcast.ts\n#EXT-X-ENDLIST\n")
    os.mkfifo(folder / "stream.mp4")
    (folder / "zero.mp4").symlink_to("/dev/zero")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return folder


def test_a_folder_walk_decides_by_content_and_lists_what_it_leaves_out(mixed_folder, tmp_path):
    scan = scan_sources([str(mixed_folder)])
    taken = sorted(Path(item.uri).name for item in scan.items)
    assert taken == sorted(CONTAINERS), taken
    left = {Path(entry.uri).name: (entry.reason, entry.counts) for entry in scan.skipped}
    assert left["notes.txt"] == ("text, not a video", False)
    assert left["thumbnail.jpg"][1] is False and "single image" in left["thumbnail.jpg"][0]
    assert left[".DS_Store"] == ("hidden", False)
    assert left["voice.m4a"][1] is True and left["voice.m4a"][0].startswith("no video stream")
    assert left["list.m3u8"][1] is True and "reads other files" in left["list.m3u8"][0]
    for name, kind in (("stream.mp4", "a FIFO"), ("zero.mp4", "a character device")):
        assert left[name][1] is True and left[name][0].startswith(f"not a regular file ({kind}"), left[name]
    assert len(left) == 7
    store = str(tmp_path / "s.zarr")
    for item in scan.items:
        outcome = ingest_video(item, store, DecodeParams(short_side=0, shard_frames=4))
        assert outcome.action == "decoded", (item.uri, outcome.reason)
        assert outcome.frames == ffmpeg_frames(Path(item.uri)), item.uri


def test_a_walk_takes_symlinked_videos_and_a_lone_animated_png(tmp_path):
    """A link to a video file is the video (fsspec lists the link itself as "other"); a folder's
    only image is a video when its content is an animation (APNG), and ignored when it is a still."""
    elsewhere, folder, stills = tmp_path / "elsewhere", tmp_path / "walked", tmp_path / "stills"
    for made in (elsewhere, folder, stills):
        made.mkdir()
    ffmpeg(*LAVFI, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(elsewhere / "real.mp4"))
    (folder / "link.mp4").symlink_to(elsewhere / "real.mp4")
    (folder / "relative.mp4").symlink_to(Path("..") / "elsewhere" / "real.mp4")
    ffmpeg(*LAVFI, "-c:v", "apng", "-plays", "0", "-f", "apng", str(folder / "anim.png"))
    ffmpeg("-f", "lavfi", "-i", "color=red:size=64x48", "-frames:v", "1", str(stills / "still.png"))
    scan = scan_sources([str(folder), str(stills)])
    assert sorted(Path(item.uri).name for item in scan.items) == ["anim.png", "link.mp4", "relative.mp4"]
    assert [(Path(e.uri).name, e.counts) for e in scan.skipped] == [("still.png", False)]
    store = str(tmp_path / "s.zarr")
    outcomes = {Path(item.uri).name: ingest_video(item, store, DecodeParams(short_side=0)) for item in scan.items}
    assert outcomes["anim.png"].action == "decoded" and outcomes["anim.png"].frames == 8
    assert outcomes["link.mp4"].action == outcomes["relative.mp4"].action == "decoded"


def test_a_source_named_explicitly_that_is_not_a_regular_file_fails_at_once(tmp_path):
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    link = tmp_path / "disk.mkv"
    link.symlink_to("/dev/zero")
    store = str(tmp_path / "s.zarr")
    started = time.monotonic()
    for path, kind in ((fifo, "a FIFO (named pipe)"), (link, "a character device")):
        [item] = expand_sources([str(path)])
        outcome = ingest_video(item, store, DecodeParams())
        assert outcome.action == "failed" and outcome.reason.startswith(f"not a regular file ({kind})"), outcome
        assert read_catalog(store)[item.video_id].status is Status.failed
    assert time.monotonic() - started < 10


def test_a_decode_that_stalls_is_stopped_with_a_reason(tmp_path, monkeypatch):
    """ffmpeg blocked on a source that never delivers (here a FIFO nobody writes, as a stalled
    mount would be) is stopped after STALL_SECONDS, not waited on forever."""
    monkeypatch.setattr(ffmpeg_module, "STALL_SECONDS", 1.0)
    fifo = tmp_path / "stalled.ts"
    os.mkfifo(fifo)
    decode = FfmpegDecode(str(fifo), 64, 48, 4, container_format="mpegts")
    result: list = []
    worker = threading.Thread(target=lambda: result.append(pytest.raises(VideoError, list, decode)), daemon=True)
    worker.start()
    worker.join(30)
    if worker.is_alive():  # let the blocked open return before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("the stalled decode was not stopped within 30 s")
    assert "made no progress for 1 s" in str(result[0].value)


def test_a_frames_header_claiming_millions_of_frames_is_a_finding_not_a_hang(tmp_path):
    path = tmp_path / "clip.mp4"
    ffmpeg(*LAVFI, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    store = str(tmp_path / "s.zarr")
    [item] = expand_sources([str(path)])
    ingest_video(item, store, DecodeParams(short_side=0, shard_frames=4))
    array = writable_group(store, item.video_id)[FRAMES]  # a damaged or crafted header vmac never writes
    array.resize((5_000_000, *array.shape[1:]))
    started = time.monotonic()
    with pytest.raises(UnreadableFramesError, match="claims 5000000 frames .* holds 2 shard"):
        frames_sha256(open_snapshot(store).group(item.video_id)[FRAMES])
    from tests.validate.conftest import validate

    summary = validate(store)
    assert not summary.passed and time.monotonic() - started < 60
    details = " ".join(d for rule in summary.rules if not rule.success for d in rule.details)
    assert "claims 5000000 frames" in details


def test_native_4k_decodes_in_bounded_buffers_and_shards():
    """At 3840×2160 a 64-frame shard of RGB frames is 1.6 GB; the decode plan keeps shards under
    MAX_SHARD_BYTES and the read buffer at a few frames (the measured peak is in docs/ingest.md)."""
    frame_bytes = 3840 * 2160 * 3
    info = Probe(codec="hevc", stream_index=0, width=3840, height=2160, sar=1, fps=30.0, duration=1.0,
                 listed_frames=30, rotation=0)
    plan = container.plan_decode(info, PacketCount(30, 0), DecodeParams(short_side=0))
    assert (plan.width, plan.height) == (3840, 2160)
    assert plan.shard_frames == frames_per(MAX_SHARD_BYTES, frame_bytes, 64) == 10
    assert plan.shard_frames * frame_bytes <= MAX_SHARD_BYTES
    small = container.plan_decode(info, PacketCount(30, 0), DecodeParams(short_side=256))
    assert small.shard_frames == 64


def test_a_stored_frame_is_byte_for_byte_ffmpegs_own_decode_with_the_new_graph(tmp_path):
    """The decoder contract adds filters only where the source needs them: an ordinary progressive
    SDR clip decodes to exactly the bytes of ffmpeg's plain ``-vf scale`` (no showinfo, no setsar)."""
    path = tmp_path / "plain.mp4"
    ffmpeg(*LAVFI, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    store = str(tmp_path / "s.zarr")
    [item] = expand_sources([str(path)])
    ingest_video(item, store, DecodeParams(short_side=32))
    stored = open_snapshot(store).group(item.video_id)[FRAMES][:]
    plain = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-vf",
                            "scale=43:32:flags=bicubic", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                           capture_output=True, check=True).stdout
    np.testing.assert_array_equal(stored, np.frombuffer(plain, np.uint8).reshape(stored.shape))


@pytest.mark.slow
def test_vmac_ingest_stores_every_video_of_a_mixed_folder_and_fails_on_what_it_left_out(
        prefect_harness, mixed_folder, tmp_path, capfd, monkeypatch):
    from cli.main import main

    monkeypatch.setenv("COLUMNS", "300")  # one row a line: the table names each entry in full
    store = tmp_path / "s.zarr"
    code = main(["ingest", str(mixed_folder), "--store", str(store), "--workers", "1", "--no-progress"])
    out = capfd.readouterr().out
    assert code == 1, out
    catalog = read_catalog(str(store))
    assert sorted(Path(r.source_uri).name for r in catalog.values() if r.status is Status.complete) == sorted(CONTAINERS)
    assert "11 decoded" in out and "4 left out of the folder walk" in out and "3 ignored" in out, out
    for name in ("voice.m4a", "list.m3u8", "stream.mp4", "zero.mp4", "notes.txt", "thumbnail.jpg"):
        assert name in out, name
