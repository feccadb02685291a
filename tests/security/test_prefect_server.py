"""Finding 3: vmac's local Prefect server (cli/prefect_api.py) on a shared machine. Another user
can neither read nor write its API, nor read its files; a stale record naming a port another
user now listens on is never used (no request, no secret sent there); the record appears only
once the server listens. The attacker runs as another uid (tests/security/other_user.py)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from cli.prefect_api import STATE_FILE, ensure_server, private_home, stop_server
from cli.server_trust import read_state
from tests.security.other_user import OTHER_UID, needs_other_user, python_as_other_user

pytestmark = pytest.mark.slow

# Another user's server: answers every request with 200 and prints each one it got.
_IMPOSTOR = r"""
import http.server, sys
class Answer(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args): pass
    def _any(self):
        print(self.command, self.path, self.headers.get("Authorization"), flush=True)
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
    do_GET = do_POST = do_HEAD = _any
server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

_ASK_API = r"""
import sys, urllib.request, urllib.error
for path, body in (("flow_runs/filter", b"{}"), ("logs/filter", b"{}"), ("admin/version", None)):
    req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/{path}", data=body, method="POST" if body else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r: print(path, r.status)
    except urllib.error.HTTPError as e: print(path, e.code)
for name in sys.argv[2:]:
    try:
        open(name, "rb").read(1); print("read", name)
    except OSError: pass
"""


@pytest.fixture
def shared_home():
    """A PREFECT_HOME as one often is on a shared machine: in a folder others may enter, made
    with the default umask (0755)."""
    top = Path(tempfile.mkdtemp(prefix="vmac-shared-"))
    top.chmod(0o755)
    home = top / ".prefect"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    yield home
    stop_server(home)
    shutil.rmtree(top, ignore_errors=True)


@needs_other_user()
def test_the_local_server_keeps_other_users_out_and_never_trusts_a_stale_record(shared_home, monkeypatch):
    home = shared_home
    monkeypatch.setenv("PREFECT_HOME", str(home))
    impostor = subprocess.Popen(["setpriv", "--reuid", str(OTHER_UID), "--regid", str(OTHER_UID), "--clear-groups",
                                 sys.executable, "-I", "-c", _IMPOSTOR], stdout=subprocess.PIPE, text=True, cwd="/")
    try:
        port = int(impostor.stdout.readline())
        # A record left by a kill -9 or a reboot: its port is the other user's server now.
        (home / STATE_FILE).write_text(json.dumps({"port": port, "server_pid": impostor.pid, "supervisor_pid": 1,
                                                   "started": 0.0, "auth": "old", "idle_seconds": 60}))
        (home / STATE_FILE).chmod(0o600)
        first_seen: list[tuple[dict, bool]] = []

        def watch() -> None:  # the first record that appears: does its server listen yet?
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not first_seen:
                state = read_state(home)
                if state and state.get("port") != port:
                    listening = any(c.status == psutil.CONN_LISTEN and c.laddr.port == state["port"]
                                    for c in psutil.net_connections(kind="tcp"))
                    first_seen.append((state, listening))
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        private_home(home)
        state = ensure_server(home)
        watcher.join()
    finally:
        impostor.kill()
        impostor_saw = impostor.communicate(timeout=10)[0]
    assert state["port"] != port and impostor_saw == "", f"the other user's server got: {impostor_saw!r}"
    assert first_seen and first_seen[0][1], "the record was written before its server listened"

    files = [home, *home.rglob("*")]
    assert any(p.name.startswith("prefect.db") for p in files), sorted(p.name for p in files)
    opened = [f"{p} {stat.filemode(p.stat().st_mode)}" for p in files if p.stat().st_mode & 0o077]
    assert not opened, f"readable by others: {opened}"
    asked = python_as_other_user(_ASK_API, str(state["port"]), *(str(p) for p in files if p.is_file()))
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.split() == ["flow_runs/filter", "401", "logs/filter", "401", "admin/version", "401"], \
        asked.stdout
    assert os.stat(home).st_uid == os.getuid()
