"""vmac's local Prefect server (cli/prefect_api.py): started by the first command, shared by the
next, every run recorded in it, stopped after idling or by ``vmac server stop``.

Real processes: the ``vmac`` console script, Prefect's API under uvicorn, SQLite in PREFECT_HOME.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from cli.errors import failure_line
from cli.main import main
from cli.prefect_api import in_use, local_api, read_state, status_line, stop_server

VMAC = shutil.which("vmac", path=os.path.dirname(sys.executable))
needs_vmac = pytest.mark.skipif(VMAC is None, reason="the vmac console script is not installed beside this Python")
slow = pytest.mark.slow  # processes of their own, and waits for the idle stop


def _vmac(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([VMAC, *args], env=env, capture_output=True, text=True, timeout=300)


def _flow_runs(state: dict) -> list[dict]:
    """The server's flow runs, asked with the secret of its record (it refuses requests without)."""
    auth = "Basic " + base64.b64encode(state["auth"].encode()).decode()
    request = urllib.request.Request(f"http://127.0.0.1:{state['port']}/api/flow_runs/filter", data=b"{}",
                                     headers={"Content-Type": "application/json", "Authorization": auth}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@slow
@needs_vmac
def test_commands_share_one_server_record_in_it_and_it_stops_when_idle(tmp_path, make_video):
    clip = make_video("clip.mp4", frames=12)
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home), VMAC_PREFECT_IDLE_SECONDS="20")
    store = str(tmp_path / "s.zarr")
    try:
        first = _vmac(env, "ingest", str(clip), "--store", store, "--no-progress")
        assert first.returncode == 0, first.stderr
        state = read_state(home)
        assert state is not None, f"no local server was recorded: {sorted(p.name for p in home.iterdir())} {first.stderr[-2000:]}"
        began = time.monotonic()
        again = _vmac(env, "ingest", str(clip), "--store", store, "--no-progress")
        no_op_seconds = time.monotonic() - began
        assert again.returncode == 0, again.stderr
        assert "0 decoded (0 frames), 1 up to date" in again.stdout
        assert read_state(home) == state, "the second command started another server"
        assert "Starting temporary server" not in first.stderr + again.stderr
        runs = [r for r in _flow_runs(state) if r["state_type"] == "COMPLETED"]
        assert len(runs) == 2, f"expected both ingest_flow runs in the shared server, got {len(runs)}"
        status = _vmac(env, "server", "status")
        assert f"127.0.0.1:{state['port']}" in status.stdout
        # Idle: no command for 20 s, the server stops and says so in its state file.
        procs = [psutil.Process(state[k]) for k in ("supervisor_pid", "server_pid")]
        _, alive = psutil.wait_procs(procs, timeout=60)
        assert not alive, f"the server still runs 60 s after the last command (which took {no_op_seconds:.1f} s)"
        assert read_state(home) is None
        assert "no local Prefect server" in _vmac(env, "server", "status").stdout
    finally:
        stop_server(home)


@slow
@needs_vmac
def test_server_stop_stops_it_now(tmp_path, make_video):
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home), VMAC_PREFECT_IDLE_SECONDS="600")
    try:
        done = _vmac(env, "ingest", str(make_video("clip.mp4", frames=6)), "--store", str(tmp_path / "s.zarr"),
                     "--no-progress")
        assert done.returncode == 0, done.stderr
        state = read_state(home)
        server = psutil.Process(state["server_pid"])
        stopped = _vmac(env, "server", "stop")
        assert stopped.returncode == 0 and "stopped the local Prefect server" in stopped.stdout
        _, alive = psutil.wait_procs([server], timeout=15)
        assert not alive and read_state(home) is None
    finally:
        stop_server(home)


def test_the_users_api_is_used_as_it_is_and_nothing_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    with local_api() as url:
        assert url == "http://prefect.example:4200/api"
    assert os.environ["PREFECT_API_URL"] == "http://prefect.example:4200/api"
    assert not list(tmp_path.iterdir()), "something was started or written for a user-given API"


@needs_vmac
def test_a_usage_error_starts_no_server(tmp_path):
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(home)
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("a file, not a folder")
    done = _vmac(env, "ingest", str(tmp_path), "--store", str(not_a_store))
    assert done.returncode == 2 and "notes.txt" in done.stderr, done.stderr
    assert read_state(home) is None and not (home / "vmac-server.log").exists()


def test_stop_signals_only_vmacs_own_processes(tmp_path):
    """A stale record (its supervisor killed with kill -9, or a reboot) may name PIDs that other
    processes have now: those are left alone, and the record is removed."""
    others = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    try:
        (tmp_path / "vmac-server.json").write_text(json.dumps(
            {"port": 9, "server_pid": others[0].pid, "supervisor_pid": others[1].pid, "started": 0.0}))
        assert stop_server(tmp_path) is False
        assert [p.poll() for p in others] == [None, None], "a process that is not vmac's was signalled"
        assert read_state(tmp_path) is None
        assert "no local Prefect server for" in status_line(tmp_path)
    finally:
        for p in others:
            p.kill()
            p.wait()


def test_stop_refuses_while_a_command_uses_the_server(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    with open(tmp_path / "vmac-server.lease", "a+") as lease:
        fcntl.flock(lease, fcntl.LOCK_SH)  # as a running command holds it
        assert in_use(tmp_path)
        assert main(["server", "stop"]) == 1
        assert "a vmac command is using the local Prefect server" in capsys.readouterr().err
    assert not in_use(tmp_path)
    assert main(["server", "stop"]) == 0
    assert "no local Prefect server was running" in capsys.readouterr().out


def test_status_says_where_commands_record(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("VMAC_LOCAL_SERVER", raising=False)
    assert status_line(tmp_path).startswith(f"no local Prefect server for {tmp_path}")
    monkeypatch.setenv("VMAC_LOCAL_SERVER", "0")
    assert "each command starts Prefect's temporary server" in status_line(tmp_path)
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example:4200/api")
    assert "commands record in PREFECT_API_URL=http://prefect.example:4200/api" in status_line(tmp_path)


def test_an_unreachable_api_is_named_with_its_setting():
    line = failure_line(RuntimeError("Failed to reach API at http://127.0.0.1:9/api/"))
    assert line.startswith("cannot reach the Prefect API at http://127.0.0.1:9/api/ (PREFECT_API_URL)")
