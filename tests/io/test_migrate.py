"""``vmac migrate``: a store of format 1 (written before snapshots) converted in place, its frames
unchanged, and refused with the command's name until then."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from storage_schemas.layout import FRAMES, STORE_FORMAT, VIDEOS_GROUP
from tasks.io.migrate import migrate
from tasks.io.snapshots import history
from tasks.io.stamp import validation_status
from tasks.io.store import frames_sha256, open_snapshot, open_store, read_catalog, store_info
from tests.io.legacy import LEGACY_COMMIT, write_legacy_store

ROOT = Path(__file__).resolve().parents[2]


def _check_converted(path: str, frames: dict[str, np.ndarray]) -> None:
    snapshot = open_snapshot(path)
    assert sorted(snapshot.entries) == sorted(frames)
    for video_id, expected in frames.items():
        stored = snapshot.group(video_id)[FRAMES]
        np.testing.assert_array_equal(stored[:], expected)
        assert frames_sha256(stored) == read_catalog(path)[video_id].frames_sha256
        assert sorted(p.name for p in (Path(path) / VIDEOS_GROUP / video_id).iterdir()) == sorted(["zarr.json", snapshot.entries[
            video_id].version])  # the arrays moved into the version folder, nothing left beside it


def test_migrate_moves_arrays_into_versions_and_commits_the_first_snapshot(tmp_path):
    path = str(tmp_path / "old.zarr")
    frames = write_legacy_store(path, {"a": 9, "b": 4}, validated=True)
    result = migrate(path)
    assert result.videos == 2 and not result.already
    assert store_info(open_store(path, mode="r")).store_format == STORE_FORMAT
    _check_converted(path, frames)
    assert [(c.command, c.added) for c in history(path)] == [("migrate", ["a", "b"])]
    assert validation_status(path) is None  # format 1's stamp is not carried: validate again
    assert not (Path(path) / ".vmac-locks").exists()
    again = migrate(path)
    assert again.already and len(history(path)) == 1


def test_an_interrupted_migration_finishes_on_the_next_run(tmp_path):
    path = str(tmp_path / "old.zarr")
    frames = write_legacy_store(path, {"a": 6, "b": 5, "c": 3})
    from tasks.io import migrate as module

    calls = []
    real = module._convert_video

    def stop_after_one(store, root, video_id):
        if calls:
            raise KeyboardInterrupt  # as a Ctrl-C between two videos
        calls.append(video_id)
        return real(store, root, video_id)

    module._convert_video = stop_after_one
    try:
        with pytest.raises(KeyboardInterrupt):
            migrate(path)
    finally:
        module._convert_video = real
    assert store_info(open_store(path, mode="r")).store_format == 1  # still refused by other commands
    migrate(path)
    _check_converted(path, frames)


@pytest.mark.slow
def test_migrate_a_store_written_by_the_last_format_1_code(tmp_path, make_video):
    """The store is written by commit LEGACY_COMMIT's own ingest, extracted from this repository's
    history and run in a subprocess; then converted and read back."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot extract the format-1 code")
    found = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{LEGACY_COMMIT}^{{commit}}"],
                           capture_output=True)
    if found.returncode:
        pytest.skip(f"this checkout's history does not hold commit {LEGACY_COMMIT} (a shallow clone?)")
    old_code = tmp_path / "old-code"
    old_code.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", LEGACY_COMMIT], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(old_code)], input=archive.stdout, check=True)
    make_video("a.mp4", frames=10)
    make_video("b.mp4", frames=7, seed=3)
    store = str(tmp_path / "old.zarr")
    code = ("import sys; from tasks.io.sources import expand_sources; from tasks.ingest.video import ingest_video; "
            "from storage_schemas.records import DecodeParams; "
            f"[ingest_video(i, {store!r}, DecodeParams(short_side=32)) for i in expand_sources([{str(tmp_path / 'videos')!r}])]")
    env = {**os.environ, "PYTHONPATH": str(old_code)}
    subprocess.run([sys.executable, "-c", code], cwd=old_code, env=env, check=True, timeout=300)
    assert (Path(store) / ".vmac-locks").is_dir()
    before = {}
    import zarr

    old_root = zarr.open_group(store, mode="r")
    for video_id in old_root[VIDEOS_GROUP].group_keys():
        before[video_id] = old_root[f"{VIDEOS_GROUP}/{video_id}/{FRAMES}"][:]
    done = subprocess.run([sys.executable, "-m", "cli.main", "migrate", store], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "2 videos" in done.stdout
    _check_converted(store, before)
