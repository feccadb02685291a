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

# Every request but these gets 401 without the secret (docs/security.md lists them: none carries a
# run's data): the health and readiness checks, the API's own documentation and schema, the UI's
# static settings, and CORS preflights.
ANSWER_ANYONE = {"GET /api/health", "GET /api/ready", "GET /docs", "GET /redoc", "GET /openapi.json",
                 "GET /ui-settings", "OPTIONS /api/flow_runs/filter"}
ASKED = [*sorted(ANSWER_ANYONE), "POST /api/flow_runs/filter", "POST /api/logs/filter", "GET /api/admin/version",
         "POST /api/events/filter", "POST /api/artifacts/filter", "POST /api/task_runs/filter",
         "POST /api/variables/filter", "POST /api/block_documents/filter", "GET /api/admin/settings",
         "GET /api/ui-settings", "GET /api/openapi.json", "GET /api/csrf-token"]

_ASK_API = r"""
import sys, urllib.request, urllib.error
for asked in sys.argv[2].split(","):
    method, path = asked.split(" ")
    req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}{path}", data=b"{}" if method == "POST" else None,
                                 method=method, headers={"Content-Type": "application/json", "Origin": "http://x",
                                                         "Access-Control-Request-Method": "POST"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r: print(asked.replace(" ", "_"), r.status)
    except urllib.error.HTTPError as e: print(asked.replace(" ", "_"), e.code)
for name in sys.argv[3:]:
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
    asked = python_as_other_user(_ASK_API, str(state["port"]), ",".join(ASKED), *(str(p) for p in files if p.is_file()))
    assert asked.returncode == 0, asked.stderr
    answers = dict(line.split() for line in asked.stdout.splitlines())  # no "read FILE" line: nothing was readable
    assert answers == {a.replace(" ", "_"): "200" if a in ANSWER_ANYONE else "401" for a in ASKED}, asked.stdout
    assert os.stat(home).st_uid == os.getuid()


@pytest.mark.parametrize("plant", ["link of theirs", "link of mine", "folder of theirs", "under their link",
                                   "in an open folder"])
def test_a_planted_or_exposed_prefect_home_is_refused(tmp_path, plant):
    """B9: a PREFECT_HOME another user planted (a link to their folder, a folder of theirs, a path
    through their link) or could swap (in a folder others can write, not sticky) is refused before
    anything is written there."""
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    home = tmp_path / "home"
    if plant.startswith("link"):
        home.symlink_to(target)
        if plant == "link of theirs":
            os.lchown(home, OTHER_UID, OTHER_UID)
    elif plant == "folder of theirs":
        home.mkdir(mode=0o700)
        os.chown(home, OTHER_UID, OTHER_UID)
    elif plant == "under their link":
        (tmp_path / "via").symlink_to(target)
        os.lchown(tmp_path / "via", OTHER_UID, OTHER_UID)
        home = tmp_path / "via" / "prefect"
    else:
        open_folder = tmp_path / "open"
        open_folder.mkdir()
        open_folder.chmod(0o777)
        home = open_folder / "prefect"
    with pytest.raises(RuntimeError, match="PREFECT_HOME"):
        private_home(home)
    assert list(target.iterdir()) == []


def test_results_the_commands_persist_in_the_home_are_the_users_alone(tmp_path):
    """W6: Prefect writes task results into $PREFECT_HOME/storage with the command's umask (0644)."""
    home = tmp_path / "home"
    (home / "storage").mkdir(parents=True, mode=0o755)
    result = home / "storage" / "0123abcd"
    result.write_bytes(b"a pickled task result")
    result.chmod(0o644)
    private_home(home)
    assert stat.S_IMODE((home / "storage").stat().st_mode) == 0o700 and stat.S_IMODE(result.stat().st_mode) == 0o600
