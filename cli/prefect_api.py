"""The Prefect API a ``vmac`` command records its runs in: the user's, or vmac's long-lived local server.

Without ``PREFECT_API_URL``, Prefect starts a temporary server for every command (about 12 s on
a loaded 2-core machine, for a command whose work may take 1 s) and a killed command leaves it
running. Instead vmac starts one local server on first use and reuses it:

- ``python -m cli.prefect_api serve`` (a supervisor, in its own session) runs Prefect's API with
  uvicorn as its child, on a free loopback port, over the same SQLite database in
  ``PREFECT_HOME`` that Prefect's temporary servers use: no run, log or artifact is recorded
  anywhere else.
- ``$PREFECT_HOME/vmac-server.json`` records its port, its PID and the supervisor's.
- Every command holds a shared lock on ``$PREFECT_HOME/vmac-server.lease`` while it runs; the
  kernel drops it when the command ends, however it ends (``kill -9`` included). The supervisor
  stops the server once no command has held the lease for ``VMAC_PREFECT_IDLE_SECONDS``
  (default 900), and exits.
- uvicorn gets a parent-death signal: if the supervisor is killed, the server goes with it.

Other users of the machine are kept out (docs/security.md, "Prefect"): the server demands a secret
made at each start (Prefect's ``PREFECT_SERVER_API_AUTH_STRING``; commands send it as
``PREFECT_API_AUTH_STRING``), which only the state file holds; ``PREFECT_HOME`` is made 0700 and
every file vmac and the server write there (state, lease, log, Prefect's SQLite database) 0600.
The state is written only once the server listens, and a recorded server is used only after it
proves to be the one started (``verified``): the recorded PID is still vmac's server, of this
user and started when recorded, it owns the listening socket, and it refuses a request without the
secret and answers one with it. A stale or foreign record is never trusted with the secret.

``PREFECT_API_URL`` set by the user (a team server, Prefect Cloud) is used as it is, and
nothing is started; ``VMAC_LOCAL_SERVER=0`` gives back Prefect's own behaviour (a temporary server
per command). ``vmac server status`` and ``vmac server stop`` show and stop the local one
(docs/architecture.md, "Processes").
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from cli.lifetime import die_with_parent
from cli.server_trust import (
    SERVER_MARK,
    STATE_FILE,
    SUPERVISOR_MARK,
    ours,
    private_file,
    private_home,
    read_state,
    verified,
    write_state,
)

LEASE_FILE = "vmac-server.lease"
START_LOCK_FILE = "vmac-server.start"
LOG_FILE = "vmac-server.log"
IDLE_SECONDS = 900
CHECK_SECONDS = 2.0


def prefect_home() -> Path:
    """Prefect's home folder, as Prefect resolves it (``PREFECT_HOME``, default ``~/.prefect``)."""
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with os.fdopen(private_file(path), "a+") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def local_api() -> Iterator[str | None]:
    """For one command: the API URL it records in, exported as ``PREFECT_API_URL`` while it runs.

    The user's ``PREFECT_API_URL`` is kept as it is, and so is a Prefect loaded before. Otherwise
    the command holds the server's lease (so it is not stopped under it), and the server is
    started when none is healthy. Raises RuntimeError when it cannot start (its log is named).
    """
    if os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules or os.environ.get("VMAC_LOCAL_SERVER") == "0":
        # The user's API; or Prefect is loaded already (a test harness, a program embedding vmac)
        # and keeps the settings it read then; or the user asked for Prefect's temporary server.
        yield os.environ.get("PREFECT_API_URL")
        return
    home = prefect_home()
    private_home(home)
    with _locked(home / LEASE_FILE, fcntl.LOCK_SH):
        state = ensure_server(home)
        url = f"http://127.0.0.1:{state['port']}/api"
        # This process's environment: readable by this user only (/proc/PID/environ), never written.
        os.environ.update(PREFECT_API_URL=url, PREFECT_API_AUTH_STRING=state["auth"])
        try:
            yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)
            os.environ.pop("PREFECT_API_AUTH_STRING", None)


# The lease of the running command, taken by ``record_in_prefect`` and released when
# ``command_scope`` ends (cli.main wraps every command in it).
_held = contextlib.ExitStack()
_recording: list[str | None] = []


def record_in_prefect() -> str | None:
    """A command calls this right before it imports Prefect, after its own checks (so a usage
    error never waits for a server to start): the API URL its runs are recorded in, vmac's local
    server started when needed (``local_api``). Held until ``command_scope`` ends; a second call
    returns the same URL."""
    if not _recording:
        _recording.append(_held.enter_context(local_api()))
    return _recording[0]


@contextlib.contextmanager
def command_scope() -> Iterator[None]:
    """Around one command: releases what ``record_in_prefect`` took, however the command ends."""
    try:
        with _held:
            yield
    finally:
        _recording.clear()


def ensure_server(home: Path) -> dict:
    """The record of a verified local server for ``home`` (``verified``), starting one when there
    is none.

    A recorded server whose supervisor still runs is waited for (it may be starting, or slow to
    answer on a loaded machine) rather than doubled; one that never answers within the start-up
    timeout is stopped before another starts, so no server is left without its record. A stale
    or foreign record is replaced.
    """
    state = read_state(home)
    if verified(state):
        return state
    with _locked(home / START_LOCK_FILE, fcntl.LOCK_EX):
        state = read_state(home)  # another command may have started it meanwhile
        if state and "auth" in state and _supervising(state):
            deadline = time.monotonic() + _startup_timeout()
            while time.monotonic() < deadline and _supervising(state):
                if verified(state):
                    return state
                time.sleep(0.2)
                state = read_state(home) or state
        stop_server(home)  # a record that never verified, or an older vmac's server without a secret
        return _start(home)


def _startup_timeout() -> float:
    return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90"))


def _supervising(state: dict) -> bool:
    """The recorded supervisor is still running (and is one: a recycled PID is not)."""
    return ours(state.get("supervisor_pid"), SUPERVISOR_MARK, state.get("supervisor_started_at"))


def _start(home: Path) -> dict:
    (home / STATE_FILE).unlink(missing_ok=True)
    with os.fdopen(private_file(home / LOG_FILE), "ab") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "cli.prefect_api", "serve", "--home", str(home)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[1]))
    deadline = time.monotonic() + _startup_timeout()
    while time.monotonic() < deadline:
        state = read_state(home)
        if state and state.get("supervisor_pid") == supervisor.pid and verified(state, timeout=1.0):
            return state
        if supervisor.poll() is not None:
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(supervisor.pid, signal.SIGTERM)
    raise RuntimeError(f"vmac's local Prefect server did not start (log: {home / LOG_FILE})")


def stop_server(home: Path, timeout: float = 10.0) -> bool:
    """Stop the local server of ``home`` (its supervisor and uvicorn) and remove its record; False
    when none was running.

    Only processes that are still vmac's supervisor and Prefect's server are signalled: the PIDs
    of a stale record (a supervisor killed with ``kill -9``, a reboot) may belong to others now.
    """
    state = read_state(home, trusted=False)
    if not state:
        return False
    running = _supervising(state)
    if running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(state["supervisor_pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _supervising(state):
            time.sleep(0.05)
    for pid, marker, started in ((state.get("supervisor_pid"), SUPERVISOR_MARK, state.get("supervisor_started_at")),
                                 (state.get("server_pid"), SERVER_MARK, state.get("server_started_at"))):
        if ours(pid, marker, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    (home / STATE_FILE).unlink(missing_ok=True)
    return running


def in_use(home: Path) -> bool:
    """A vmac command holds the lease of ``home``'s server now."""
    if not (home / LEASE_FILE).exists():
        return False
    with os.fdopen(private_file(home / LEASE_FILE), "a+") as handle:
        if not _lease_free(handle):
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _lease_free(handle) -> bool:
    """Take the lease exclusively if no command holds it; False (and nothing taken) if one does."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def status_line(home: Path) -> str:
    """What ``vmac server status`` says: where commands record, and this home's server's state."""
    if os.environ.get("PREFECT_API_URL"):
        return f"commands record in PREFECT_API_URL={os.environ['PREFECT_API_URL']}; vmac starts no local server"
    if os.environ.get("VMAC_LOCAL_SERVER") == "0":
        return "VMAC_LOCAL_SERVER=0: each command starts Prefect's temporary server; vmac starts no local server"
    state = read_state(home)
    if verified(state):
        minutes = (time.time() - state["started"]) / 60
        use = "a command is using it" if in_use(home) else "idle"
        return (f"http://127.0.0.1:{state['port']}/api over {home} (pid {state['server_pid']}, supervisor "
                f"{state['supervisor_pid']}; up {minutes:.0f} min, {use}; stops after "
                f"{state.get('idle_seconds', IDLE_SECONDS):.0f} s without a command; log {home / LOG_FILE})")
    if state and _supervising(state):
        return f"starting, or not answering: supervisor {state['supervisor_pid']}, port {state['port']}; log {home / LOG_FILE}"
    return f"no local Prefect server for {home}; the next vmac command that runs a flow starts one"


# --- the supervisor ------------------------------------------------------------------------------


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _uvicorn(port: int, auth: str) -> subprocess.Popen:
    """Prefect's API as Prefect's own temporary server runs it (UI off), demanding ``auth`` on every
    request but the health check, dying with its parent."""
    import prefect  # deferred: only the supervisor needs it

    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
           "PREFECT_SERVER_API_AUTH_STRING": auth}
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent), "--factory",
         "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error",
         "--lifespan", "on"],
        env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)


def _listening_state(home: Path, server: subprocess.Popen, state: dict) -> bool:
    """Wait until ``server`` listens and answers with its secret, then write ``state``; False when it
    exits or does not within the start-up timeout (nothing is recorded then)."""
    deadline = time.monotonic() + _startup_timeout()
    while time.monotonic() < deadline and server.poll() is None:
        if verified(state, timeout=1.0):
            write_state(home, state)
            return True
        time.sleep(0.1)
    return False


def serve(home: Path, idle_seconds: float) -> int:
    """Run the server until no command has held the lease for ``idle_seconds``, or SIGTERM."""
    os.umask(0o077)  # Prefect's database, its journal and the server's files: this user's only
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    port, auth = _free_port(), secrets.token_urlsafe(32)
    server = _uvicorn(port, auth)
    state = {"port": port, "server_pid": server.pid, "supervisor_pid": os.getpid(), "started": time.time(),
             "idle_seconds": idle_seconds, "auth": auth, "server_started_at": psutil.Process(server.pid).create_time(),
             "supervisor_started_at": psutil.Process().create_time()}
    last_busy = time.monotonic()
    with os.fdopen(private_file(home / LEASE_FILE), "a+") as lease:
        listening = _listening_state(home, server, state)
        while listening and not stopping and server.poll() is None and read_state(home) == state:
            time.sleep(CHECK_SECONDS)
            if not _lease_free(lease):
                last_busy = time.monotonic()
                continue
            if time.monotonic() - last_busy < idle_seconds:
                fcntl.flock(lease, fcntl.LOCK_UN)
                continue
            break  # idle: stop while holding the lease, so no command starts using the server meanwhile
        if read_state(home) == state:
            (home / STATE_FILE).unlink(missing_ok=True)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.prefect_api")
    parser.add_argument("action", choices=["serve"])
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args(argv)
    return serve(args.home, float(os.environ.get("VMAC_PREFECT_IDLE_SECONDS", IDLE_SECONDS)))


if __name__ == "__main__":
    sys.exit(main())
