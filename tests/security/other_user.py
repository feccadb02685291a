"""Running a step as another local user (an attacker on a shared machine), for the security tests.

The tests run as root here; ``as_other_user`` runs a command as uid/gid 65534 (nobody) with no
supplementary groups through ``setpriv``, the way another account on the machine would run it.
Where that is impossible (not root, no setpriv), the test is skipped and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

OTHER_UID = 65534


def other_user_available() -> str | None:
    """Why another user cannot be played here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root to run a step as another uid (setpriv)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    return None


def needs_other_user():
    reason = other_user_available()
    return pytest.mark.skipif(reason is not None, reason=f"cannot act as another local user: {reason}")


def as_other_user(args: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """``args`` run as uid and gid 65534 with no supplementary groups; output captured as text."""
    return subprocess.run(["setpriv", "--reuid", str(OTHER_UID), "--regid", str(OTHER_UID), "--clear-groups", *args],
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def python_as_other_user(code: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Python ``code`` (this interpreter, no project on the path) run as another user."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
    return as_other_user([sys.executable, "-I", "-c", code, *argv], timeout=timeout, env=env, cwd="/")
