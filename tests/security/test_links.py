"""Trial findings B1-B3: another user's links and folders planted where vmac writes and deletes.

Another local user who can write in a shared output folder plants, before vmac runs, a symbolic
link (owned by them) at each name vmac writes (files, folders, the temporaries of atomic writes),
or a folder of their own at the name of one of vmac's folders. vmac must never write or delete
through such a link, nor write into such a folder: every byte outside stays as it was. The
planted entries are made by root here and handed to uid 65534 (``os.lchown``), which is what
another user's would be; the oracle is the outside folder's bytes before and after.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cli.errors import failure_line
from tasks.io.files import atomic_path, make_folder, open_append, remove_own, remove_stale_temporaries, write_atomic
from tasks.io.names import OutsideError
from tests.pretrain.test_pretrain import _config, store  # noqa: F401 - the module's store fixture
from tests.security.other_user import OTHER_UID

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's links needs root (lchown)")


def _theirs(path: Path) -> Path:
    os.lchown(path, OTHER_UID, OTHER_UID)
    return path


def _plant_link(at: Path, target: Path) -> Path:
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(target)
    return _theirs(at)


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def outside(tmp_path):
    """The victim's own folder elsewhere: a file and a folder the links point at."""
    folder = tmp_path / "outside"
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.tex").write_bytes(b"the user's own file")
    (folder / "ckpt-000001.pt").write_bytes(b"another run's checkpoint")
    return folder


def test_file_writers_replace_a_planted_link_and_never_follow_one(tmp_path, outside):
    before = _snapshot(outside)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    for name in ("config.json", "report.md", "loss_curve.png"):
        target = shared / name
        _plant_link(target, outside / "thesis.tex")
        write_atomic(target, "vmac's bytes")
        assert not target.is_symlink() and target.read_text() == "vmac's bytes"
    # The temporaries' names: a link at every name the old predictable scheme would have used.
    for pid in (os.getpid(), os.getpid() + 1):
        _plant_link(shared / f".model.vmac-tmp-{pid}.pt", outside / "thesis.tex")
    with atomic_path(shared / "model.pt") as tmp:
        tmp.write_bytes(b"weights")
    assert (shared / "model.pt").read_bytes() == b"weights"
    # Appending (metrics.jsonl) refuses a link at its name.
    _plant_link(shared / "metrics.jsonl", outside / "thesis.tex")
    with pytest.raises(OutsideError, match="symbolic link"):
        open_append(shared / "metrics.jsonl")
    assert _snapshot(outside) == before


@pytest.mark.parametrize("planted", ["link", "folder"])
@pytest.mark.parametrize("part", ["checkpoints", "previews", "tensorboard", "lineage", "overlays"])
def test_a_planted_folder_or_folder_link_is_refused(tmp_path, outside, planted, part):
    before = _snapshot(outside)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    if planted == "link":
        _plant_link(shared / part, outside)
    else:
        (shared / part).mkdir()
        _theirs(shared / part)
    with pytest.raises(OutsideError, match="another user"):
        make_folder(shared / part)
    with pytest.raises(OutsideError, match="another user"):
        write_atomic(shared / part / "ckpt-000001.pt", b"vmac's bytes")
    with pytest.raises(OutsideError, match="another user"):
        open_append(shared / part / "x.jsonl")
    assert _snapshot(outside) == before


def test_deleting_never_goes_through_a_link_nor_takes_another_users_file(tmp_path, outside):
    before = _snapshot(outside)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    _plant_link(shared / "checkpoints", outside)
    with pytest.raises(OutsideError):
        remove_own(shared / "checkpoints" / "ckpt-000001.pt")
    link = _plant_link(shared / "learning_curve.png", outside / "thesis.tex")
    assert not remove_own(link) and link.is_symlink()
    theirs = shared / "ckpt-000002.pt"
    theirs.write_bytes(b"theirs")
    assert not remove_own(_theirs(theirs)) and theirs.exists()
    dead = 4_000_000
    _plant_link(shared / f".ckpt-000003.vmac-tmp-{dead}.pt", outside / "ckpt-000001.pt")
    assert remove_stale_temporaries(shared, re.compile(r"ckpt-\d{6}\.pt")) == []
    assert _snapshot(outside) == before


def test_pretrain_in_a_shared_run_folder_writes_nothing_through_planted_links(tmp_path, outside, store):  # noqa: F811
    from tasks.pretrain.train import train

    before = _snapshot(outside)
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o777)
    for name in ("config.json", "loss_curve.png", "encoder.pt"):
        _plant_link(run_dir / name, outside / "thesis.tex")
    train(_config(store, run_dir, max_steps=2, plot_every=1, preview_every=1, checkpoint_every=1,
                  keep_checkpoints=1), log=lambda line: None)
    assert _snapshot(outside) == before
    assert not any(p.is_symlink() for p in run_dir.rglob("*")), "a planted link survived vmac's writes"
    assert (run_dir / "checkpoints").stat().st_uid == os.geteuid()
    # A link planted at the checkpoints folder or at metrics.jsonl (read, then appended to) stops the
    # run in one line, before anything is written there.
    for planted in ("checkpoints", "metrics.jsonl"):
        again = tmp_path / f"run-{planted}"
        again.mkdir(mode=0o777)
        _plant_link(again / planted, outside if planted == "checkpoints" else outside / "thesis.tex")
        with pytest.raises(OutsideError, match="another user") as refused:
            train(_config(store, again, max_steps=1, checkpoint_every=1), log=lambda line: None)
        assert failure_line(refused.value) == str(refused.value).splitlines()[0]
    assert _snapshot(outside) == before


def test_a_torn_or_damaged_metrics_file_is_named_in_one_line(tmp_path, caplog):
    """W8: a kill mid-append leaves a torn last line (left out, with a warning); a damaged line
    elsewhere fails in one line naming the file and the line, never as a defect."""
    from tasks.io.metrics_file import DamagedMetricsError, metric_rows

    path = tmp_path / "metrics.jsonl"
    good = ['{"step": 1, "loss": 2.0}', '{"step": 2, "loss": 1.5}']
    for torn in ('{"step": 3, "lo', '{"step"', "\x00\x00", "[1, 2"):
        path.write_text("\n".join([*good, torn]))
        assert [r["step"] for r in metric_rows(path)] == [1, 2]
        assert "torn" in caplog.text
    for damage in ("not json", "[]", '{"loss": 1}', '{"step": "x"}'):
        path.write_text("\n".join([good[0], damage, good[1]]) + "\n")
        with pytest.raises(DamagedMetricsError) as failed:
            metric_rows(path)
        line = failure_line(failed.value)
        assert str(path) in line and "line 2" in line and "defect" not in line


@pytest.mark.parametrize("entry", ["snapshots", "refs", "videos", "lineage", "validation", "zarr.json",
                                   "videos/zarr.json"])
def test_a_store_whose_bookkeeping_is_a_link_is_refused_before_any_write(tmp_path, outside, entry):
    """B4: a crafted store (from elsewhere) whose own entries are links to outside it: Zarr's
    require_group and the commits would write through them."""
    from tasks.io.store import open_store

    crafted = tmp_path / "crafted.zarr"
    open_store(str(crafted))
    planted = crafted / entry
    if not planted.exists():
        (outside / "sub" / planted.name).mkdir()
        planted.symlink_to(outside / "sub" / planted.name)
    elif planted.is_dir():
        (outside / "sub" / planted.name).mkdir()
        for child in planted.iterdir():
            os.replace(child, outside / "sub" / planted.name / child.name)
        planted.rmdir()
        planted.symlink_to(outside / "sub" / planted.name)
    else:
        os.replace(planted, outside / "sub" / planted.name)
        planted.symlink_to(outside / "sub" / planted.name)
    before = _snapshot(outside)
    with pytest.raises(OutsideError, match="symbolic link"):
        open_store(str(crafted))
    assert _snapshot(outside) == before
