"""Trial finding B5: no lock file of a store lies in the shared temporary folder, where another user
could make it first (blocking every ingest) or plant links: stores have no lock files (commits race
by exclusive creation, docs/architecture.md), and what vmac keeps on the host is in the user's
private folder. (B6, the Dask workers' scratch there, is checked with the cluster in test_dask.py.)

The temporary folder is this test's own (``tempfile.tempdir``), so what another user plants
there is planted for this test only.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path

import pytest

from tasks.io.files import private_folder
from tasks.io.names import OutsideError
from tests.security.other_user import OTHER_UID, needs_other_user, python_as_other_user


@pytest.fixture
def temp(tmp_path, monkeypatch):  # tmp_path first: pytest makes it in the temporary folder
    # In /tmp itself, so that another uid can reach it (pytest's tmp_path is in a folder of root's, 0700).
    folder = Path(tempfile.mkdtemp(prefix="vmac-test-shared-tmp-", dir="/tmp"))
    folder.chmod(0o1777)  # a shared /tmp: world-writable, sticky
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    yield folder
    shutil.rmtree(folder)


def test_an_ingest_into_a_remote_store_leaves_no_lock_file_and_the_private_folder_is_the_users(temp, make_video):
    from storage_schemas.records import DecodeParams
    from tasks.ingest.video import ingest_video
    from tasks.io.sources import expand_sources

    [item] = expand_sources([str(make_video("clip.mp4", frames=4, height=32, width=48))])
    store = f"memory://{uuid.uuid4().hex}/s.zarr"
    assert ingest_video(item, store, DecodeParams(short_side=32)).action == "decoded"
    assert list(temp.rglob("*.lock")) == [] and not (temp / "vmac-locks").exists()
    folder = private_folder("dask-scratch")
    base = temp / f"vmac-{os.geteuid()}"
    assert folder.is_relative_to(base)
    assert stat.S_IMODE(base.stat().st_mode) == 0o700 and base.stat().st_uid == os.geteuid()


@needs_other_user()
def test_another_user_can_neither_enter_nor_pre_create_the_private_folder(temp):
    folder = private_folder("locks")
    attempt = python_as_other_user("import sys; open(sys.argv[1] + '/x.lock', 'w')", str(folder))
    assert attempt.returncode != 0 and "Permission denied" in attempt.stderr
    os.rename(folder.parent, temp / "mine")
    planted = python_as_other_user("import os, sys; os.mkdir(sys.argv[1], 0o777)", str(folder.parent))
    assert planted.returncode == 0, planted.stderr
    with pytest.raises(OutsideError, match="no one else can write"):
        private_folder("dask-scratch")


@pytest.mark.parametrize("plant", ["link", "theirs", "group-writable"])
def test_a_planted_or_open_private_folder_is_refused(temp, tmp_path, plant):
    base = temp / f"vmac-{os.geteuid()}"
    if plant == "link":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        base.symlink_to(tmp_path / "elsewhere")
        os.lchown(base, OTHER_UID, OTHER_UID)
    else:
        base.mkdir(mode=0o700)
        if plant == "theirs":
            os.chown(base, OTHER_UID, OTHER_UID)
        else:
            base.chmod(0o770)
    with pytest.raises(OutsideError, match="refusing to use"):
        private_folder("dask-scratch")
    assert not (tmp_path / "elsewhere" / "dask-scratch").exists()
