"""Whose fault a failure is: the input's faults are recorded ``failed`` for good; the machine's
(a full disk, a store the process may not write, a remote store that times out) leave nothing
recorded, so the next run retries the video. Plus aliases (the same bytes through another path)
and the entries a folder walk skips.

Each machine fault is real where this machine allows it: a size-limited tmpfs for the full disk
and a read-only remount for the unwritable store (root only); otherwise an fsspec filesystem with
a quota, or one that refuses writes. The remote timeout is an fsspec filesystem whose shard
writes time out (``tests/filesystems.py``).
"""

from __future__ import annotations

import errno
import os

import pytest
from PIL import Image

from storage_schemas.config import IngestConfig
from storage_schemas.records import DecodeParams, Status
from tasks.ingest.plan import plan_sources
from tasks.ingest.video import ingest_video, record_alias
from tasks.io.faults import environment_reason, is_environmental, is_transient
from tasks.io.probe import VideoError
from tasks.io.sources import NothingToIngestError, expand_sources, scan_sources
from tasks.io.store import read_catalog
from tests import filesystems
from tests.conftest import write_bad_inputs

PARAMS = DecodeParams(short_side=48, shard_frames=8)


class ReadTimeoutError(Exception):
    """Named as botocore names its timeout, which derives from no builtin timeout class."""


def test_faults_are_classified_by_what_failed():
    assert is_environmental(OSError(errno.ENOSPC, "No space left on device"))
    assert is_environmental(PermissionError(errno.EACCES, "Permission denied", "/store/x"))
    assert is_environmental(OSError(errno.EROFS, "Read-only file system"))
    assert is_transient(TimeoutError()) and is_transient(ReadTimeoutError("read timeout"))
    assert is_transient(ConnectionResetError(errno.ECONNRESET, "reset"))
    wrapped = RuntimeError("zarr could not write")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert is_environmental(wrapped) and environment_reason(wrapped, "in s.zarr") == "No space left on device (in s.zarr)"
    # The input's faults: a bad video, PIL's "cannot identify image" (an OSError without errno).
    assert not is_environmental(VideoError("not a readable video"))
    assert not is_environmental(OSError("cannot identify image file"))
    assert not is_environmental(FileNotFoundError(errno.ENOENT, "No such file or directory"))
    assert not is_transient(OSError(errno.ENOSPC, "No space left on device"))


def test_input_faults_are_recorded_failed_for_good(tmp_path):
    expected = write_bad_inputs(tmp_path / "bad")
    folder = tmp_path / "bad" / "frames"
    folder.mkdir()
    Image.new("RGB", (32, 24)).save(folder / "00000.png")
    (folder / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    expected["frames"] = "00001.png is not"
    store = str(tmp_path / "s.zarr")
    outcomes = {o.uri.rsplit("/", 1)[-1]: o for o in
                (ingest_video(item, store, PARAMS) for item in expand_sources([str(tmp_path / "bad")]))}
    assert {o.action for o in outcomes.values()} == {"failed"}
    for name, fragment in expected.items():
        assert fragment in outcomes[name].reason, (name, outcomes[name].reason)
    catalog = read_catalog(store)
    assert {r.status for r in catalog.values()} == {Status.failed}
    plan = plan_sources(IngestConfig(sources=[str(tmp_path / "bad")], store=store, decode=PARAMS))
    # A re-run decodes none of them again, the empty file included (its bytes have a hash too).
    assert plan.todo == []


def _not_stored(outcome, store: str) -> None:
    """A machine fault: ``retry``, and nothing in the catalog that a re-run would skip."""
    assert outcome.action == "retry", outcome
    assert outcome.video_id not in read_catalog(store)


def test_full_disk_leaves_the_video_retryable(tmp_path, make_video):
    video = make_video("big.mp4", frames=48, height=144, width=256)
    [item] = expand_sources([str(video)])
    params = DecodeParams(short_side=0, shard_frames=8)
    if filesystems.can_mount():
        mount = tmp_path / "disk"
        with filesystems.tmpfs(mount, "300k"):
            store = str(mount / "s.zarr")
            outcome = ingest_video(item, store, params)
            _not_stored(outcome, store)
            assert outcome.reason.startswith("No space left on device") and not outcome.transient
            # Its partial version folder is gone: the video's group holds nothing but its own header.
            assert os.listdir(mount / "s.zarr" / "videos" / item.video_id) == ["zarr.json"]
            filesystems.remount(mount, "size=16m")  # space freed
            assert ingest_video(item, store, params).action == "decoded"
    else:  # no tmpfs without root: a filesystem with a quota gives the same ENOSPC
        filesystems.QuotaFileSystem.reset()
        filesystems.QuotaFileSystem.capacity = 300_000
        outcome = ingest_video(item, "quota://s.zarr", params)
        _not_stored(outcome, "quota://s.zarr")
        filesystems.QuotaFileSystem.capacity = 1 << 40
        assert ingest_video(item, "quota://s.zarr", params).action == "decoded"


def test_unwritable_store_leaves_the_video_retryable(tmp_path, make_video):
    first, second = (expand_sources([str(make_video(f"{n}.mp4", frames=8, seed=i))])[0]
                     for i, n in enumerate(("a", "b")))
    if filesystems.can_mount():
        mount = tmp_path / "disk"
        with filesystems.tmpfs(mount, "16m"):
            store = str(mount / "s.zarr")
            assert ingest_video(first, store, PARAMS).action == "decoded"
            filesystems.remount(mount, "ro")
            outcome = ingest_video(second, store, PARAMS)
            assert outcome.reason.startswith("Read-only file system"), outcome.reason
            _not_stored(outcome, store)
            filesystems.remount(mount, "rw")
            assert ingest_video(second, store, PARAMS).action == "decoded"
    else:
        filesystems.LockedFileSystem.reset()
        assert ingest_video(first, "locked://s.zarr", PARAMS).action == "decoded"
        filesystems.LockedFileSystem.locked = True
        try:
            outcome = ingest_video(second, "locked://s.zarr", PARAMS)
        finally:
            filesystems.LockedFileSystem.locked = False
        assert outcome.reason.startswith("Permission denied")
        _not_stored(outcome, "locked://s.zarr")
        assert ingest_video(second, "locked://s.zarr", PARAMS).action == "decoded"


def test_remote_store_timeout_is_transient_and_leaves_the_video_retryable(make_video):
    [item] = expand_sources([str(make_video("a.mp4", frames=8))])
    filesystems.StallingFileSystem.reset()
    filesystems.StallingFileSystem.stalls = 1
    outcome = ingest_video(item, "stalling://s.zarr", PARAMS)
    assert outcome.transient and "timed out" in outcome.reason
    _not_stored(outcome, "stalling://s.zarr")
    assert ingest_video(item, "stalling://s.zarr", PARAMS).action == "decoded"


def test_same_bytes_through_a_symlinked_folder_are_an_alias(tmp_path, make_video):
    for i in range(2):
        make_video(f"clip{i}.mp4", frames=8, seed=i)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "videos", target_is_directory=True)
    store = str(tmp_path / "s.zarr")
    config = IngestConfig(sources=[str(tmp_path / "videos")], store=store, decode=PARAMS)
    assert {ingest_video(item, store, PARAMS).action for item in plan_sources(config).todo} == {"decoded"}

    again = config.model_copy(update={"sources": [str(link)]})
    plan = plan_sources(again)
    assert not plan.todo and len(plan.aliases) == 2
    outcomes = [record_alias(a.item, store, PARAMS, a.target, a.key) for a in plan.aliases]
    assert {o.action for o in outcomes} == {"alias"}
    catalog = read_catalog(store)
    assert len(catalog) == 2
    assert sorted(a for r in catalog.values() for a in r.aliases) == sorted(str(link / f"clip{i}.mp4") for i in range(2))
    # Recorded once: the next plan finds the alias up to date.
    plan = plan_sources(again)
    assert not plan.todo and not plan.aliases and {o.action for o in plan.up_to_date} == {"skipped"}


def test_same_bytes_twice_in_one_run_are_decoded_once(tmp_path, make_video):
    video = make_video("clip.mp4", frames=8)
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "clip-copy.mp4").write_bytes(video.read_bytes())
    plan = plan_sources(IngestConfig(sources=[str(tmp_path / "videos"), str(tmp_path / "copy")],
                                     store=str(tmp_path / "s.zarr"), decode=PARAMS))
    assert len(plan.todo) == 1 and len(plan.aliases) == 1
    assert plan.aliases[0].target == plan.todo[0].video_id


def test_walk_names_what_it_skips_and_an_empty_source_is_an_error(tmp_path, make_video):
    make_video("a.mp4", frames=4)
    videos = tmp_path / "videos"
    (videos / ".hidden.mp4").write_bytes(b"x")
    (videos / "notes.txt").write_text("x")
    (videos / "dangling.mp4").symlink_to(tmp_path / "nowhere.mp4")
    (tmp_path / "elsewhere").mkdir()
    (videos / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    scan = scan_sources([str(videos)])
    assert [i.uri.rsplit("/", 1)[-1] for i in scan.items] == ["a.mp4"]
    reasons = {s.uri.rsplit("/", 1)[-1]: s.reason for s in scan.skipped}
    assert reasons == {".hidden.mp4": "hidden", "notes.txt": "text, not a video", "dangling.mp4": "broken symbolic link",
                       "linked": "symbolic link to a folder, not followed (give the folder itself as a source)"}

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_bytes(b"x")
    store = tmp_path / "never.zarr"
    with pytest.raises(NothingToIngestError, match=r"nothing to ingest .*skipped 1 hidden \(.*\.DS_Store\)"):
        plan_sources(IngestConfig(sources=[str(empty)], store=str(store)))
    assert not store.exists()  # refused before the store was made
