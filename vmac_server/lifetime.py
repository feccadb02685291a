"""Nothing a ``vmac`` command starts outlives it, however it ends (docs/architecture.md, "Processes").

A command starts other processes: Prefect's temporary API server (uvicorn), a Dask
LocalCluster's workers, ffmpeg, DataLoader workers. When the command ends normally each is
stopped by whoever started it. When it is killed (``kill -9``, SIGTERM, an out-of-memory kill)
nobody does, and Linux re-parents them to init: Prefect's server used to stay up, about 250 MB,
for as long as the machine ran. (Dask's workers and ffmpeg already end on their own: a pipe to
their parent closes.)

``start_watchdog`` forks a small watchdog process before the command starts anything. Every
half second it lists the command's descendants in the command's session (psutil); once the
command is gone it sends each one still running SIGTERM, then SIGKILL after ``GRACE_SECONDS``.
vmac's local Prefect server (``vmac_server.supervisor``) runs in a session of its own because later
commands share it: it is not the command's, and it stops itself after idling. A process is only
signalled when its start time matches the one listed and it is still in the command's session,
so a recycled PID, or a child that has just made a session of its own, is never hit. The
watchdog ignores SIGINT, SIGTERM and SIGHUP, so Ctrl-C or ``kill`` of the whole process group
still lets it clean up, and it exits as soon as it has. It runs only under the ``vmac`` console script (and
``python -m cli.main``), not when a program calls ``cli.main.main`` in its own process.

``exit_on_interrupt``: Ctrl-C ends the command at once with exit code 130 and one line. Letting
KeyboardInterrupt unwind was worse: the terminal's SIGINT reaches Prefect's temporary server too,
which dies, and Prefect's client then retried the dead server for about 2.5 minutes before the
command failed with a connection error. What a killed command leaves is taken up by the next run
(ingest redoes unfinished videos, ``vmac pretrain --resume`` continues from the last recorded
checkpoint), and the watchdog stops the processes the command started.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

import psutil

POLL_SECONDS = 0.5
GRACE_SECONDS = 3.0
_PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def start_watchdog() -> int | None:
    """Fork the watchdog of this process; its PID, or None where fork is unavailable."""
    if not hasattr(os, "fork"):
        return None
    command = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:
        _watch(command)
    finally:
        os._exit(0)  # never run the parent's atexit handlers or flush its buffers a second time


def exit_on_interrupt(command: str) -> None:
    """On SIGINT (Ctrl-C), print ``vmac COMMAND: interrupted …`` on stderr and exit 130 at once."""

    def interrupted(signum, frame) -> None:
        with contextlib.suppress(OSError):
            os.write(sys.stderr.fileno(), f"vmac {command}: interrupted; what finished is kept, and the next run "
                                          "takes up the rest\n".encode())
        os._exit(128 + signal.SIGINT)

    signal.signal(signal.SIGINT, interrupted)


def _watch(command: int) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    # Close inherited descriptors (a pipe the command's caller reads to its end, a terminal) so the
    # watchdog does not keep them open after the command is gone.
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
    os.closerange(3, 1 << 16)
    me, session = os.getpid(), os.getsid(command)
    seen: dict[int, float] = {}
    while os.getppid() == command:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(command).children(recursive=True):
                if child.pid != me and child.pid not in seen:
                    with contextlib.suppress(psutil.Error):
                        seen[child.pid] = child.create_time()
        time.sleep(POLL_SECONDS)
    stop(seen, session)


def stop(seen: dict[int, float], session: int | None = None) -> list[int]:
    """SIGTERM every process of ``seen`` (PID -> start time) still running as that same process
    (and, given ``session``, still in that session), SIGKILL those left after ``GRACE_SECONDS``;
    the PIDs signalled."""
    alive = []
    for pid, started in seen.items():
        with contextlib.suppress(psutil.Error, OSError):
            proc = psutil.Process(pid)
            if (proc.create_time() == started and proc.status() != psutil.STATUS_ZOMBIE
                    and (session is None or os.getsid(pid) == session)):
                alive.append(proc)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, left = psutil.wait_procs(alive, timeout=GRACE_SECONDS)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return [proc.pid for proc in alive]


def die_with_parent() -> None:
    """For ``subprocess.Popen(preexec_fn=...)``: between fork and exec, ask Linux to SIGKILL the
    child when its parent dies, ``kill -9`` included. Elsewhere a no-op.

    Linux sends the signal when the *thread* that started the child ends: start children from a
    thread that outlives them (the main thread)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
