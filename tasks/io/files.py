"""Whole files: streamed hashing, and atomic writes (a reader never sees half a file).

An atomic write goes to a temporary name in the same folder, is flushed and fsynced, then
renamed over the target (``os.replace``). A crash leaves at worst a ``.<stem>.vmac-tmp-<pid><suffix>``
file, never a truncated target (``remove_stale_temporaries`` deletes those whose process is gone,
and only those: of the names the caller writes, owned by this user). On an object store (s3, gcs, memory) one PUT is already atomic: a
reader sees the old object or the new one, never part of it, so the object is written in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from tasks.io.uris import filesystem, local_path, open_uri

BLOCK = 1 << 20  # bytes read per hashing step: memory stays at one block whatever the file size
# ``temporary_name``'s pattern: .<stem>.vmac-tmp-<pid><suffix>; vmac's mark, so a user's own
# ``.notes.tmp-123`` is never taken for one.
_TEMPORARY = re.compile(r"\.(?P<stem>.+)\.vmac-tmp-(?P<pid>\d+)(?P<suffix>\.[^.]*)?")


# What a path names when it is not a regular file, by the kind ``os.stat`` reports.
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _kind_of(mode: int) -> str | None:
    return next((name for test, name in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a regular file")


def not_regular_reason(path: str) -> str | None:
    """What a local path is when it is not a regular file (after symbolic links): ``a FIFO (named
    pipe)``, ``a character device``...; None for a regular file or a path that does not exist (its
    open says so). Reading a FIFO or a device blocks or never ends, so nothing but regular files
    is read."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return _kind_of(mode)


class NotRegularFileError(OSError):
    """A local source that is not a regular file (a FIFO, a device, a socket)."""


def hash_file(uri: str, block: int = BLOCK) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a local regular file or fsspec URL, streamed.

    A local path is opened without blocking and checked to be a regular file before one byte is
    read (NotRegularFileError otherwise): a FIFO or device named like a video would never end.
    """
    digest = hashlib.sha256()
    size = 0
    path = local_path(uri)
    if path is not None:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        kind = _kind_of(os.fstat(fd).st_mode)
        if kind is not None:
            os.close(fd)
            raise NotRegularFileError(f"not a regular file ({kind})")
        os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    else:
        handle = open_uri(uri).open()
    with handle:
        while chunk := handle.read(block):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def file_sha256(uri: str) -> str:
    """sha256 hex of a local file or fsspec URL."""
    return hash_file(uri)[0]


def temporary_name(path: Path) -> Path:
    """The temporary sibling an atomic write of ``path`` uses in this process:
    ``.<stem>.vmac-tmp-<pid><suffix>``, hidden, and with the suffix a writer may choose a format by."""
    return path.with_name(f".{path.stem}.vmac-tmp-{os.getpid()}{path.suffix}")


def is_temporary(name: str) -> bool:
    """True for a name ``temporary_name`` makes."""
    return _TEMPORARY.fullmatch(name) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale_temporaries(folder: str | Path, targets: re.Pattern[str]) -> list[Path]:
    """Delete the temporaries of atomic writes in ``folder`` that vmac left: of a file whose name
    ``targets`` matches (the names the caller writes there), owned by this user, and whose writing
    process is gone (a kill during the write leaves them); return what was deleted. A live
    writer's, another user's and any other file are kept."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.iterdir()):
        found = _TEMPORARY.fullmatch(path.name)
        if not found or not targets.fullmatch(found["stem"] + (found["suffix"] or "")):
            continue
        info = path.lstat()
        if stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and not _alive(int(found["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary local path to write; on success it is fsynced and renamed to ``path``.

    For writers that want a path (``torch.save``, ``savefig``). The suffix is kept, so a writer
    that picks its format from it (matplotlib) still does. On error the temporary file is removed
    and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(uri: str | Path, data: str | bytes, exclusive: bool = False, sync: bool = True) -> None:
    """Write ``data`` to a local path or fsspec URL in one step (text is UTF-8).

    ``sync`` (local, exclusive writes): fsync the file before it appears under its name, so it
    survives a power loss. A store's commits leave it out: an fsync of a small file makes ext4
    flush everything written before it (a video's shards), and its readers step back past a
    commit a power loss left empty (``tasks.io.snapshots``); a killed process cannot tear it.

    ``exclusive``: refuse to replace an existing file (append-only folders, a store's commits);
    raises FileExistsError. Two writers racing for one name cannot both succeed: locally the
    finished temporary is hard-linked to the name, which the kernel refuses when the name exists;
    on S3 the server refuses (a conditional PUT, ``If-None-Match: *``); fsspec checks first on
    other stores.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path = local_path(str(uri))
    if path is None:
        fs, remote = filesystem(str(uri))
        fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
        try:
            fs.pipe_file(remote, payload, mode="create" if exclusive else "overwrite")
        except FileExistsError:
            raise FileExistsError(f"{uri} exists") from None
        return
    if not exclusive:
        with atomic_path(path) as tmp:
            tmp.write_bytes(payload)
        return
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # One temporary per thread: threads of one process may race for the same name.
    tmp = temporary_name(target.with_name(f"{target.stem}-{threading.get_ident()}{target.suffix}"))
    try:
        with open(tmp, "wb") as handle:
            handle.write(payload)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.link(tmp, target)  # atomic, and refused (EEXIST) when another writer made the name first
    finally:
        tmp.unlink(missing_ok=True)
