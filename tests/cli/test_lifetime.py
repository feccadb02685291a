"""Nothing a vmac command starts outlives it, kill -9 included (vmac_server/lifetime.py).

Real processes throughout: the ``vmac`` console script, vmac's local Prefect server
(vmac_server/supervisor.py), a Dask LocalCluster, ffmpeg.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from vmac_server.lifetime import stop
from vmac_server.supervisor import read_state, stop_server

VMAC = shutil.which("vmac", path=os.path.dirname(sys.executable))


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _still_running(procs: list[psutil.Process]) -> list[str]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(" ".join(proc.cmdline())[:120])
        except psutil.NoSuchProcess:
            pass
    return left


def _is_dask_worker(proc: psutil.Process) -> bool:
    with_args = " ".join(proc.cmdline())
    return "multiprocessing" in with_args or "distributed" in with_args


@pytest.mark.slow
@pytest.mark.skipif(VMAC is None, reason="the vmac console script is not installed beside this Python")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, "ctrl-c"])
def test_a_killed_command_leaves_no_process_behind(tmp_path, make_video, how):
    """kill -9 and kill while the Dask workers decode, and Ctrl-C (SIGINT to the command's whole
    process group, as a terminal sends it) while the command waits for the local Prefect server it
    started. The command's own processes end with it; the server is shared, in a session of its
    own, so it stays up, and stops by itself once idle. (Ctrl-C while Dask's worker processes are
    still starting also reaches them, and they print KeyboardInterrupt tracebacks: README, "Known
    limits".)"""
    videos = [make_video(f"clip{i}.mp4", frames=48) for i in range(4)]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    home = tmp_path / "prefect-home"
    env.update(PREFECT_HOME=str(home), VMAC_PREFECT_IDLE_SECONDS="20")
    command = subprocess.Popen([VMAC, "ingest", *map(str, videos), "--store", str(tmp_path / "s.zarr"), "--no-progress"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        started: list[psutil.Process] = []
        while time.monotonic() < deadline and command.poll() is None:
            started = _descendants(command.pid)
            if how == "ctrl-c" and read_state(home) or sum(_is_dask_worker(p) for p in started if p.is_running()):
                break
            time.sleep(0.1)
        assert command.poll() is None, "the command ended before the moment to stop it came"
        if how != "ctrl-c":
            time.sleep(1.0)  # the watchdog lists descendants every 0.5 s
        started = [p for p in _descendants(command.pid) if os.getsid(p.pid) == command.pid]
        if how != "ctrl-c":
            assert any(_is_dask_worker(p) for p in started), "no Dask worker in the command's session"
        server = read_state(home)
        assert server and server["supervisor_pid"] not in {p.pid for p in started}
        if how == "ctrl-c":
            os.killpg(command.pid, signal.SIGINT)
            began = time.monotonic()
            _, err = command.communicate(timeout=60)
            assert command.returncode == 130 and time.monotonic() - began < 15
            assert "vmac ingest: interrupted; what finished is kept, and the next run takes up the rest" in err.splitlines()
            assert "Traceback" not in err
        else:
            os.kill(command.pid, how)
            command.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _still_running(started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _still_running(started), f"left running after {how}: {_still_running(started)}"
        _store_opens_at_its_last_commit(str(tmp_path / "s.zarr"))
        if how in (signal.SIGKILL, "ctrl-c"):
            # The shared server outlives the killed command, then stops after 20 s without one.
            procs = [psutil.Process(server[k]) for k in ("supervisor_pid", "server_pid")]
            assert not [p for p in procs if not p.is_running()], "the shared server went with the command"
            deadline = time.monotonic() + 60
            while _still_running(procs) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _still_running(procs), "the local Prefect server did not stop after idling"
            assert read_state(home) is None
    finally:
        if command.poll() is None:
            command.kill()
        for proc in _descendants(command.pid):
            proc.kill()
        stop_server(home)


def _store_opens_at_its_last_commit(store: str) -> None:
    """Whatever the kill interrupted (a decode, a commit), the store opens at its last commit, and
    every video that commit names is complete and reads back to its recorded hash."""
    from storage_schemas.layout import FRAMES
    from storage_schemas.records import Status
    from tasks.io.store import frames_sha256, is_store, open_snapshot

    if not is_store(store):
        return  # killed before the store was made
    snapshot = open_snapshot(store)
    for video_id, record in snapshot.records().items():
        assert record.status is Status.complete
        assert frames_sha256(snapshot.group(video_id)[FRAMES]) == record.frames_sha256


def test_stop_signals_only_the_process_it_listed():
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        listed = psutil.Process(sleeper.pid).create_time()
        # Another start time: the PID was recycled by another process; it is left alone.
        assert stop({sleeper.pid: listed - 10}) == [] and sleeper.poll() is None
        assert stop({sleeper.pid: listed}) == [sleeper.pid]
        sleeper.wait(timeout=10)  # stop() has reaped it already (psutil waits for its own children)
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
