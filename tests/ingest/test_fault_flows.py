"""Machine faults through real Prefect and Dask: a remote store that times out is retried with
backoff by the decode task, then left for the next run; a full disk fails ``vmac ingest`` with
one line and no traceback, and a re-run after freeing space stores the videos."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage_schemas.config import IngestConfig
from storage_schemas.layout import LINEAGE_DIR
from tasks.ingest.tasks import STORE_BACKOFF_SECONDS, STORE_RETRIES
from tasks.io.lineage import read_records
from tasks.io.store import read_catalog
from tests import filesystems

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _config(sources, store):
    return IngestConfig.model_validate({"sources": [str(s) for s in sources] or ["unused"], "store": store, "dask_workers": 1,
                                        "decode": {"short_side": 32, "shard_frames": 8}, "progress": False})


def test_remote_timeouts_are_retried_with_backoff_then_left_for_the_next_run(prefect_harness, tmp_path, make_video):
    from flows.ingest import IngestIncompleteError, ingest_flow

    stalling = filesystems.StallingFileSystem
    stalling.reset()
    for i in range(2):
        make_video(f"clip{i}.mp4", frames=8, seed=i)
    config = _config([tmp_path / "videos"], "stalling://retried.zarr")

    # The first attempt loses both videos to timeouts; the task's retry, after the backoff, stores them.
    stalling.stalls, stalling.stalled = 2, 0
    started = time.perf_counter()
    result = ingest_flow(config)
    assert [o.action for o in result.outcomes] == ["decoded", "decoded"] and stalling.stalled == 2
    assert time.perf_counter() - started >= STORE_BACKOFF_SECONDS

    # A store that stalls through every retry: the run fails; nothing is recorded for the video.
    new = make_video("clip2.mp4", frames=8, seed=2)
    stalling.stalls, stalling.stalled = 10**6, 0
    with pytest.raises(IngestIncompleteError, match=r"1 video\(s\) not stored: write of .* timed out") as raised:
        ingest_flow(config)
    assert stalling.stalled == 1 + STORE_RETRIES  # the first attempt and each retry
    [lost] = raised.value.result.not_stored
    assert lost.uri == str(new) and lost.video_id not in read_catalog(config.store)
    last = read_records(f"{config.store}/{LINEAGE_DIR}")[-1]
    assert last.status == "failed" and "timed out" in last.error

    stalling.stalls = 0
    result = ingest_flow(config)
    assert {o.uri: o.action for o in result.outcomes}[str(new)] == "decoded"


def test_cli_reports_machine_and_usage_faults_in_one_line(prefect_harness, tmp_path, make_video, capfd, caplog):
    from cli.main import main

    make_video("big.mp4", frames=48, height=144, width=256)
    argv = ["ingest", str(tmp_path / "videos"), "--short-side", "0", "--workers", "1", "--no-progress", "--store"]

    def run(*args: str) -> tuple[int, str]:
        caplog.clear()
        code = main(list(args))
        return code, capfd.readouterr().err

    def prefect_tracebacks() -> list:
        """Prefect's records of the failed flow run that still carry a traceback for its handlers."""
        return [r for r in caplog.records if r.name.startswith("prefect") and r.exc_info]

    if filesystems.can_mount():
        mount = tmp_path / "disk"
        with filesystems.tmpfs(mount, "300k"):
            code, err = run(*argv, str(mount / "s.zarr"))
            assert code == 1 and err.splitlines()[-1].startswith("vmac ingest: 1 video(s) not stored: No space left")
            assert "Traceback" not in err and not prefect_tracebacks()
            filesystems.remount(mount, "size=16m")
            assert run(*argv, str(mount / "s.zarr"))[0] == 0
    else:  # no tmpfs without root: a filesystem with a quota
        filesystems.QuotaFileSystem.reset()
        filesystems.QuotaFileSystem.capacity = 300_000
        code, err = run(*argv, "quota://s.zarr")
        assert code == 1 and "No space left on device" in err.splitlines()[-1] and not prefect_tracebacks()
        filesystems.QuotaFileSystem.capacity = 1 << 40
        assert run(*argv, "quota://s.zarr")[0] == 0

    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = run("ingest", str(empty), "--store", str(tmp_path / "e.zarr"), "--no-progress")
    assert code == 1 and err.splitlines()[-1] == f"vmac ingest: nothing to ingest in {empty}: no video files or frame folders"
    assert "Traceback" not in err and not prefect_tracebacks() and not (tmp_path / "e.zarr").exists()
    code, err = run("--debug", "ingest", str(empty), "--store", str(tmp_path / "e.zarr"), "--no-progress")
    assert code == 1 and "Traceback" in err and "NothingToIngestError" in err and prefect_tracebacks()


def test_a_failing_validation_prints_no_traceback(prefect_harness, tmp_path):
    """On the real stderr of a ``vmac validate`` process (on the test's Prefect API)."""
    from prefect.settings import PREFECT_API_URL

    from tasks.ingest.video import ingest_video
    from tasks.io.sources import expand_sources

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "zero.mp4").write_bytes(b"")
    store = str(tmp_path / "bad.zarr")
    [item] = expand_sources([str(tmp_path / "bad")])
    assert ingest_video(item, store, _config([], store).decode).action == "failed"  # no complete video
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    for debug in ([], ["--debug"]):
        done = subprocess.run([sys.executable, "-m", "cli.main", *debug, "validate", "--store", store], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 1 and "FAILED" in done.stdout and "has_complete_videos" in done.stdout
        assert "Finished in state Failed" in done.stderr  # Prefect's log lines are there
        assert ("Traceback" in done.stderr) == bool(debug), done.stderr[-2000:]
