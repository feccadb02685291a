"""Filesystems that fail the way real machines do, for the fault and usage-error tests.

- ``tmpfs``: a real size-limited tmpfs (root only), so a full disk is the kernel's own ENOSPC.
- ``stalling://``: an in-memory filesystem whose frame-shard writes time out, as a remote
  object store that stalls does; ``QuotaFileSystem`` and ``LockedFileSystem`` give ENOSPC and
  EACCES where no tmpfs can be mounted. They are fsspec filesystems like s3fs or gcsfs: the
  pipeline runs unchanged on top of them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator

import fsspec
from fsspec.implementations.memory import MemoryFileSystem


@contextlib.contextmanager
def tmpfs(path, size: str) -> Iterator[str]:
    """Mount a tmpfs of ``size`` (e.g. "4m") at ``path``; raises OSError when mounting is refused."""
    os.makedirs(path, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode:
        raise OSError(f"cannot mount a tmpfs: {done.stderr.strip() or done.returncode}")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path, options: str) -> None:
    """``mount -o remount,OPTIONS PATH`` (resize, or make read-only / writable again)."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def can_mount() -> bool:
    return os.geteuid() == 0 and os.path.exists("/proc/filesystems") and "tmpfs" in open("/proc/filesystems").read()


class _OwnMemory(MemoryFileSystem):
    """A MemoryFileSystem with its own files, under its own protocol."""

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, str):
            for protocol in (cls.protocol if isinstance(cls.protocol, tuple) else (cls.protocol,)):
                path = path.removeprefix(f"{protocol}://")
        return super()._strip_protocol(path)

    @classmethod
    def reset(cls) -> None:
        cls.store.clear()
        cls.pseudo_dirs[:] = [""]


class StallingFileSystem(_OwnMemory):
    """``stalling://``: the next ``stalls`` writes of a frames shard raise TimeoutError."""

    protocol = "stalling"
    store: dict = {}
    pseudo_dirs = [""]
    stalls = 0
    stalled = 0

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        cls = type(self)
        if "/frames/c/" in path and cls.stalls > 0:
            cls.stalls -= 1
            cls.stalled += 1
            raise TimeoutError(f"write of {path} timed out after 30 s")
        return super().pipe_file(path, value, mode=mode, **kwargs)


class QuotaFileSystem(_OwnMemory):
    """``quota://``: writes past ``capacity`` bytes fail with ENOSPC, as on a full disk."""

    protocol = "quota"
    store: dict = {}
    pseudo_dirs = [""]
    capacity = 1 << 62

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        used = sum(f.size for p, f in self.store.items() if p != self._strip_protocol(path))
        if used + len(value) > type(self).capacity:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().pipe_file(path, value, mode=mode, **kwargs)


class LockedFileSystem(_OwnMemory):
    """``locked://``: while ``locked``, every write fails with EACCES, as on a folder the
    process may not write."""

    protocol = "locked"
    store: dict = {}
    pseudo_dirs = [""]
    locked = False

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        if type(self).locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
        return super().pipe_file(path, value, mode=mode, **kwargs)


for _fs in (StallingFileSystem, QuotaFileSystem, LockedFileSystem):
    fsspec.register_implementation(_fs.protocol, _fs, clobber=True)
