"""The store's history: commits that race (threads and real processes) all land, none lost; a
reader keeps its snapshot whatever is committed after; kill -9 mid-commit leaves the last
snapshot; tags, refs and ``vmac gc``."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from storage_schemas.snapshots import CatalogEntry
from tasks.io import snapshots
from tasks.io.gc import collect_garbage
from tasks.io.snapshots import (
    SnapshotNotFoundError,
    commit,
    create_tag,
    history,
    read_tip,
    resolve,
    split_ref,
)
from tasks.io.store import open_snapshot, open_store

ROOT = Path(__file__).resolve().parents[2]


def _add(video_id: str, version: str | None = None):
    """An edit adding one video (a record of the keys the catalog reads: status)."""
    def edit(videos, validation):
        videos[video_id] = CatalogEntry(version=version, record={"video_id": video_id, "status": "failed"})
        return videos, validation
    return edit


@pytest.fixture(params=["local", "memory"])
def store(request, tmp_path):
    uri = str(tmp_path / "s.zarr") if request.param == "local" else f"memory://snap-{uuid.uuid4().hex}.zarr"
    open_store(uri)
    return uri


def test_a_ref_is_a_final_at_and_a_name():
    assert split_ref("/data/s.zarr@6b16150738f82319") == ("/data/s.zarr", "6b16150738f82319")
    assert split_ref("s3://bucket/s.zarr@run-01") == ("s3://bucket/s.zarr", "run-01")
    assert split_ref("/data/run@2/s.zarr") == ("/data/run@2/s.zarr", None)  # an @ inside the path
    assert split_ref("/data/s.zarr") == ("/data/s.zarr", None)


def test_threads_racing_for_the_tip_all_land(store):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: commit(store, _add(f"v{k:02d}"), "test"), range(40)))
    tip = open_snapshot(store)
    assert sorted(tip.entries) == [f"v{k:02d}" for k in range(40)]
    assert [c.seq for c in history(store)] == list(range(40, -1, -1))


def test_processes_racing_for_the_tip_all_land(tmp_path):
    """Four real processes commit ten videos each into one local store, with no lock: every commit
    lands once (the exclusive creation of each commit number decides who goes first)."""
    store = str(tmp_path / "s.zarr")
    open_store(store)
    code = ("import sys; from tasks.io.snapshots import commit; from storage_schemas.snapshots import CatalogEntry\n"
            "def add(v):\n"
            "    def edit(videos, validation):\n"
            "        videos[v] = CatalogEntry(version=None, record={'status': 'failed'}); return videos, validation\n"
            "    return edit\n"
            "for k in range(10): commit(sys.argv[1], add(f'{sys.argv[2]}-{k}'), 'test')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [subprocess.Popen([sys.executable, "-c", code, store, f"p{n}"], env=env) for n in range(4)]
    assert [child.wait(timeout=300) for child in children] == [0] * 4
    assert len(open_snapshot(store).entries) == 40
    commits = history(store)
    assert [c.seq for c in commits] == list(range(40, -1, -1))
    assert sorted(v for c in commits for v in c.added) == sorted(f"p{n}-{k}" for n in range(4) for k in range(10))
    # Each lost race left no snapshot behind: one snapshot file per commit.
    assert len(list((Path(store) / "snapshots").iterdir())) == 41


def test_a_reader_keeps_its_snapshot_after_later_commits(store):
    commit(store, _add("a", "20260101T000000Z-00000001"), "test")
    pinned = open_snapshot(store)
    commit(store, _add("a", "20260102T000000Z-00000002"), "test")
    commit(store, _add("b"), "test")
    assert pinned.entries["a"].version == "20260101T000000Z-00000001"
    again = open_snapshot(pinned.ref)  # another process given STORE@ID reads the same
    assert again.data == pinned.data
    assert open_snapshot(store).entries["a"].version == "20260102T000000Z-00000002"
    assert sorted(open_snapshot(store).entries) == ["a", "b"]


def test_tags_name_snapshots_once(store):
    _, first = commit(store, _add("a"), "test")
    _, second = commit(store, _add("b"), "test")
    create_tag(store, "run-1", first.id)
    assert create_tag(store, "run-1", first.id).snapshot == first.id  # again, same snapshot: fine
    with pytest.raises(ValueError, match="names snapshot"):
        create_tag(store, "run-1", second.id)  # a tag is never moved
    with pytest.raises(ValueError, match="letters, digits"):
        create_tag(store, "no/slash", first.id)
    assert resolve(store, "run-1").id == first.id and open_snapshot(f"{store}@run-1").id == first.id
    assert open_snapshot(f"{store}@{second.id}").id == second.id
    with pytest.raises(SnapshotNotFoundError, match="no snapshot or tag 'nope'"):
        open_snapshot(f"{store}@nope")


def test_an_edit_that_changes_nothing_commits_nothing(store):
    before = read_tip(store)
    info, snapshot = commit(store, lambda videos, validation: (videos, validation), "test")
    assert info is None and read_tip(store) == before and snapshot.id == before.snapshot


def test_kill_9_during_commits_leaves_the_store_at_its_last_snapshot(tmp_path):
    """A real process commits as fast as it can; it is killed with SIGKILL at random moments (many
    fall inside a commit: between the snapshot file and the commit file, mid-write). After each
    kill the store opens at a complete snapshot, and the next writer goes on from it."""
    store = str(tmp_path / "s.zarr")
    open_store(store)
    code = ("import sys, itertools; from tasks.io.snapshots import commit; "
            "from storage_schemas.snapshots import CatalogEntry\n"
            "def add(v):\n"
            "    def edit(videos, validation):\n"
            "        videos[v] = CatalogEntry(version=None, record={'status': 'failed', 'pad': 'x' * 2000})\n"
            "        return videos, validation\n"
            "    return edit\n"
            "for k in itertools.count(): commit(sys.argv[1], add(f'{sys.argv[2]}-{k}'), 'test')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(0)
    for round_ in range(5):
        child = subprocess.Popen([sys.executable, "-c", code, store, f"r{round_}"], env=env)
        time.sleep(1.5 + rng.uniform(0, 1.0))  # interpreter start-up, then commits
        child.send_signal(signal.SIGKILL)
        child.wait()
        tip = read_tip(store)
        snapshot = open_snapshot(store)
        assert snapshot.id == tip.snapshot and len(snapshot.entries) == tip.seq  # one video per commit
        assert [c.seq for c in history(store)] == list(range(tip.seq, -1, -1))
    info, after = commit(store, _add("after"), "test")
    assert info.seq == tip.seq + 1 and "after" in after.videos


def test_gc_expires_old_untagged_snapshots_and_frees_what_only_they_named(tmp_path):
    store = str(tmp_path / "s.zarr")
    root = open_store(store)
    versions = []
    for k in range(3):  # three decodes of one video, each committed in turn
        group = root.create_group(f"videos/v/2026010{k + 1}T000000Z-0000000{k}")
        group.create_array("frames", shape=(4,), dtype="uint8")[:] = k
        versions.append(group.basename)
        commit(store, _add("v", group.basename), "test")
    first_id = [c.snapshot for c in history(store) if c.seq == 1][0]
    create_tag(store, "keep", first_id)
    orphan = root.create_group("videos/v/20260109T000000Z-0000000f")  # a decode a killed ingest left
    orphan.create_array("frames", shape=(4,), dtype="uint8")[:] = 9

    report = collect_garbage(store, timedelta(days=0), dry_run=True)
    assert report.removed == [f"videos/v/{versions[1]}"] and (Path(store) / "videos" / "v" / versions[1]).exists()
    report = collect_garbage(store, timedelta(days=0))
    assert report.removed == [f"videos/v/{versions[1]}"]
    assert set(report.kept.values()) == {"the tip", "tag keep"} and len(report.expired) == 2
    assert f"videos/v/{orphan.basename}" in report.left  # maybe being written: kept for an hour
    assert open_snapshot(f"{store}@keep").group("v")["frames"][0] == 0  # the tagged decode is still there
    assert open_snapshot(store).group("v")["frames"][0] == 2
    with pytest.raises(SnapshotNotFoundError):
        snapshots.load_snapshot(store, [c.snapshot for c in history(store) if c.seq == 2][0])
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    assert collect_garbage(store, timedelta(days=0), now=later).removed == [f"videos/v/{orphan.basename}"]
    assert sorted(p.name for p in (Path(store) / "videos" / "v").iterdir()) == sorted(
        ["zarr.json", versions[0], versions[2]])


def test_a_commit_a_power_loss_left_empty_is_stepped_over(tmp_path):
    """Commit and snapshot files are written without fsync (a kill cannot tear them); after a power
    loss the newest may be empty. Readers then read the commit before it, and the next commit goes
    on from there."""
    store = str(tmp_path / "s.zarr")
    open_store(store)
    commit(store, _add("a"), "test")
    good = open_snapshot(store)
    _, torn = commit(store, _add("b"), "test")
    (Path(store) / "snapshots" / f"{torn.id}.json").write_bytes(b"")  # the snapshot's data never reached the disk
    (Path(store) / "refs" / "main" / "000000000003.json").write_bytes(b"")  # nor a commit after it
    assert open_snapshot(store).id == good.id
    info, after = commit(store, _add("c"), "test")
    assert info.seq == 4 and info.parent == good.id and sorted(after.videos) == ["a", "c"]
    assert open_snapshot(store).id == after.id
    assert [c.seq for c in history(store)] == [4, 2, 1, 0]  # the empty commit file is left out
