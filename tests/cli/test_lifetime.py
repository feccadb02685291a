"""Nothing a vmac command starts outlives it, kill -9 included (cli/lifetime.py).

Real processes throughout: the ``vmac`` console script, Prefect's temporary API server, a Dask
LocalCluster, ffmpeg.
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

from cli.lifetime import stop

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


@pytest.mark.skipif(VMAC is None, reason="the vmac console script is not installed beside this Python")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, "ctrl-c"])
def test_a_killed_command_leaves_no_process_behind(tmp_path, make_video, how):
    """kill -9, kill, and Ctrl-C (SIGINT to the command's whole process group, as a terminal sends
    it: Prefect's server gets it too)."""
    videos = [make_video(f"clip{i}.mp4", frames=48) for i in range(4)]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # a temporary server of its own
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    command = subprocess.Popen([VMAC, "ingest", *map(str, videos), "--store", str(tmp_path / "s.zarr"), "--no-progress"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        # Prefect's temporary server is the one that used to stay up: wait until it runs.
        deadline = time.monotonic() + 180
        started: list[psutil.Process] = []
        while time.monotonic() < deadline and command.poll() is None:
            started = _descendants(command.pid)
            if any("uvicorn" in " ".join(p.cmdline()) for p in started if p.is_running()):
                break
            time.sleep(0.2)
        assert command.poll() is None, "the command ended before its Prefect server was seen"
        assert any("uvicorn" in " ".join(p.cmdline()) for p in started), "no Prefect server started"
        time.sleep(1.0)  # the watchdog lists descendants every 0.5 s
        started = _descendants(command.pid)
        if how == "ctrl-c":
            os.killpg(command.pid, signal.SIGINT)
            began = time.monotonic()
            _, err = command.communicate(timeout=60)
            assert command.returncode == 130 and time.monotonic() - began < 15
            # (Prefect's server, interrupted too, prints its own "Aborted!".)
            assert "vmac ingest: interrupted; what finished is kept, and the next run takes up the rest" in err.splitlines()
            assert "Traceback" not in err
        else:
            os.kill(command.pid, how)
            command.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _still_running(started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _still_running(started), f"left running after {how}: {_still_running(started)}"
    finally:
        if command.poll() is None:
            command.kill()
        for proc in _descendants(command.pid):
            proc.kill()


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
