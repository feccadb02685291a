"""Whether a recorded local Prefect server is the one vmac started, and the private files it lives in.

On a shared machine another user may leave a process on the port a stale record names (after
``kill -9`` or a reboot), or write a record of their own. A record is trusted only when it is this
user's own 0600 file (``read_state``), and a server only when ``verified``: its PID is still the
process vmac started (this user's, Prefect's server, the recorded start time), that process owns
the listening socket, and it refuses a request without the per-start secret and answers one with
it. The secret is sent only after the owner of the port is checked (docs/security.md, "Prefect").
"""

from __future__ import annotations

import base64
import json
import os
import stat
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from tasks.io.files import check_path
from tasks.io.names import OutsideError

STATE_FILE = "vmac-server.json"
# What the command lines of the supervisor and of Prefect's server hold (``ours``).
SUPERVISOR_MARK = b"cli.prefect_api"
SERVER_MARK = b"prefect.server.api.server"


def read_state(home: Path, trusted: bool = True) -> dict | None:
    """The recorded server of ``home``, or None. A record that is not this user's own private file
    (another owner, or readable by others: an older vmac's, or not vmac's) is ignored, unless
    ``trusted`` is False (``stop_server`` reads any record, and signals only this user's processes)."""
    path = home / STATE_FILE
    try:
        info = path.lstat()
        if trusted and (not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077):
            return None
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _request(port: int, path: str, auth: str | None, timeout: float) -> int:
    """The HTTP status of ``GET http://127.0.0.1:PORT/api/PATH`` (0 when nothing answers)."""
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/{path}", headers=headers),
                                    timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _listens(pid: int, port: int) -> bool:
    """``pid`` owns a socket listening on 127.0.0.1:``port``."""
    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.laddr.ip == "127.0.0.1"
                   for c in psutil.Process(pid).net_connections(kind="tcp"))
    except psutil.Error:
        return False


def verified(state: dict | None, timeout: float = 2.0) -> bool:
    """``state`` names the server vmac started: its PID is still that process (this user's, Prefect's
    server, started when recorded), it owns the listening socket, and it refuses a request without
    the secret and answers one with it. Nothing is sent to a port before its owner is checked."""
    try:
        port, pid, auth = int(state["port"]), int(state["server_pid"]), str(state["auth"])
    except (TypeError, KeyError, ValueError):
        return False
    if not (ours(pid, SERVER_MARK, state.get("server_started_at")) and _listens(pid, port)):
        return False
    return _request(port, "admin/version", None, timeout) == 401 and _request(port, "admin/version", auth, timeout) == 200


def private_home(home: Path) -> None:
    """``home`` as a folder only this user can enter (0700), made if missing; Prefect's SQLite
    files in it 0600. Raises RuntimeError for a home that belongs to another user, that is a
    symbolic link (a planted one would send the server's database and secret elsewhere) or is
    reached through another user's link, or whose parent folder others can write without the
    sticky bit (they could swap the home for their own)."""
    try:
        check_path(home)
    except OutsideError as exc:
        raise RuntimeError(f"PREFECT_HOME {home}: {exc}") from None
    if home.is_symlink():
        raise RuntimeError(f"PREFECT_HOME {home} is a symbolic link (to {os.readlink(home)}): vmac keeps its Prefect "
                           "server's database and secret only in a real folder (set PREFECT_HOME to its target)")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = home.lstat()
    if info.st_uid != os.getuid():
        raise RuntimeError(f"PREFECT_HOME {home} belongs to uid {info.st_uid}, not to you: vmac runs no Prefect "
                           "server over another user's folder (set PREFECT_HOME to a folder of your own)")
    parent = home.parent.stat()
    if parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX:
        raise RuntimeError(f"PREFECT_HOME {home} is in {home.parent}, which other users can write (no sticky bit): "
                           "they could replace it; set PREFECT_HOME to a folder inside one of your own")
    if info.st_mode & 0o077:
        home.chmod(0o700)
    for database in home.glob("prefect.db*"):
        database.chmod(0o600)
    # Task results the commands themselves persist (Prefect writes them with the command's umask, 0644
    # by default): their folder is made 0700 and earlier results 0600, so they stay the user's even
    # if the home's own mode is opened later.
    storage = home / "storage"
    if not storage.is_symlink():
        storage.mkdir(mode=0o700, exist_ok=True)
        storage.chmod(0o700)
        for result in storage.iterdir():
            if result.is_file() and not result.is_symlink() and result.stat().st_mode & 0o077:
                result.chmod(0o600)


def private_file(path: Path) -> int:
    """Open ``path`` for appending, created 0600 (and made so), whatever the umask."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def write_state(home: Path, state: dict) -> None:
    """The record, 0600, replacing the old one in one rename (readers never see half of it)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{STATE_FILE}.", dir=home)  # 0600, O_EXCL: a fresh file
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(state))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, home / STATE_FILE)


def ours(pid, marker: bytes, started: float | None = None) -> bool:
    """``pid`` runs (a zombie does not) as this user, its command line holds ``marker``, and it
    started at ``started`` (psutil's create time) when that was recorded: not a recycled PID, not
    another user's process."""
    try:
        proc = psutil.Process(int(pid))
        return (proc.status() != psutil.STATUS_ZOMBIE and proc.uids().real == os.getuid()
                and marker.decode() in " ".join(proc.cmdline())
                and (started is None or abs(proc.create_time() - float(started)) < 0.01))
    except (psutil.Error, TypeError, ValueError):
        return False
