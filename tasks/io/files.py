"""Whole files: streamed hashing; atomic writes (a reader never sees half a file); and the one way
vmac creates, appends to and deletes files and folders under a folder a user named.

An atomic write goes to a temporary made by ``tempfile.mkstemp`` in the same folder (a fresh,
unpredictable ``.<stem>.vmac-tmp-<pid>-<random><suffix>``, created with O_CREAT|O_EXCL, so never
through a link another user planted), is flushed and fsynced, then renamed over the target
(``os.replace``: a link at the target's name is replaced, never written through). A crash leaves at
worst such a temporary, never a truncated target (``remove_stale_temporaries`` deletes those whose
process is gone, and only those: of the names the caller writes, owned by this user). On an object
store (s3, gcs, memory) one PUT is already atomic: a reader sees the old object or the new one,
never part of it, so the object is written in place.

Another local user who can write in a folder vmac writes to (a shared, world-writable output
folder) may plant symbolic links and folders there (docs/security.md, "vmac writes only inside
the folders the user names"). So every path vmac writes or deletes locally passes ``check_path``
(no symbolic link of another user on the way: the kernel's own rule for sticky folders,
``fs.protected_symlinks``); folders are made by ``make_folder`` (an existing one must be a real
folder of this user, or root's); appends open with O_NOFOLLOW (``open_append``); deletions go
through ``remove_own`` (the entry itself, never a link's target, a regular file of this user).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tasks.io.names import OutsideError
from tasks.io.uris import filesystem, local_path, open_uri

BLOCK = 1 << 20  # bytes read per hashing step: memory stays at one block whatever the file size
# An atomic write's temporary: .<stem>.vmac-tmp-<pid>-<mkstemp's 8 random characters><suffix> (older
# vmac wrote it without the random part); vmac's mark, so a user's own ``.notes.tmp-123`` is never
# taken for one.
_TEMPORARY = re.compile(r"\.(?P<stem>.+)\.vmac-tmp-(?P<pid>\d+)(?:-[a-z0-9_]{8})?(?P<suffix>\.[^.]*)?")
TRUSTED_OWNERS = (0,)  # besides this user: root's links and folders (/var/run -> /run) are the system's


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


def is_temporary(name: str) -> bool:
    """True for the name of an atomic write's temporary (``atomic_path``)."""
    return _TEMPORARY.fullmatch(name) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _trusted(uid: int) -> bool:
    return uid == os.geteuid() or uid in TRUSTED_OWNERS


def check_path(path: str | Path) -> Path:
    """``path`` made absolute, checked to hold no symbolic link of another user on the way (any
    part, the last one included); raises OutsideError naming the link and its owner. A user's own
    links and root's are followed as the user chose them."""
    path = Path(os.path.abspath(path))
    for here in (*reversed(path.parents), path):
        try:
            info = here.lstat()
        except FileNotFoundError:
            break
        if stat.S_ISLNK(info.st_mode) and not _trusted(info.st_uid):
            raise OutsideError(f"refusing to use {here}: a symbolic link of another user (uid {info.st_uid}, to "
                               f"{os.readlink(here)}); vmac never follows another user's link")
    return path


def make_folder(path: str | Path) -> Path:
    """Create ``path`` and its missing parents (like ``mkdir -p``) without following another user's
    link (``check_path``); a folder that exists must be a real folder of this user or root's (one
    another user made could hold their links later). Raises OutsideError otherwise."""
    path = check_path(path)
    missing = [p for p in (path, *path.parents) if not os.path.lexists(p)]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise OutsideError(f"refusing to write in {path}: it is not a folder")
    if not _trusted(info.st_uid):
        raise OutsideError(f"refusing to write in {path}: the folder belongs to another user (uid {info.st_uid}); "
                           f"name a folder of your own")
    return path


def private_folder(name: str) -> Path:
    """``<base>/<name>``, a folder only this user can enter (0700), for what must not sit in the
    shared temporary folder as anyone's: remote stores' lock files, Dask workers' scratch. The
    base is ``$XDG_RUNTIME_DIR`` when it is the user's own private folder, else
    ``<temp folder>/vmac-<uid>``; every level is checked to be a real folder of this user that no
    one else can write or enter (one another user made first, or a link, is refused: OutsideError
    naming it, with what to do)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and _private(Path(runtime)) else Path(tempfile.gettempdir()) / f"vmac-{os.geteuid()}"
    path = base / name
    for folder in (base, path):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)
        if not _private(folder):
            raise OutsideError(f"refusing to use {folder}: it must be a folder of yours that no one else can write "
                               f"or enter (mode 0700; another user may have made it first); remove it, or set "
                               f"TMPDIR to a folder of your own")
    return path


def _private(folder: Path) -> bool:
    try:
        info = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def _umask() -> int:
    """This process's umask, read without changing it (``os.umask`` would race other threads)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o077  # unknown: the safe side


def open_append(path: str | Path):
    """``path`` opened to append text (created if missing, with the umask's mode), never through a
    symbolic link at its name (O_NOFOLLOW: OutsideError) nor in another user's folder."""
    path = Path(path)
    make_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if os.path.islink(path):
            raise OutsideError(f"refusing to append to {path}: it is a symbolic link (to {os.readlink(path)})") from exc
        raise
    return os.fdopen(fd, "a", encoding="utf-8")


def remove_own(path: str | Path) -> bool:
    """Delete the file at ``path`` only if it is vmac's to delete: the entry itself (a symbolic
    link is neither followed nor removed), a regular file, owned by this user, reached through no
    link of another user. Returns whether it was deleted; the caller decides that the name is one
    vmac wrote (its mark: a temporary's pattern, a lineage record naming it)."""
    path = Path(os.path.abspath(path))
    check_path(path.parent)
    try:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        info = os.lstat(path.name, dir_fd=folder)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return False
        os.unlink(path.name, dir_fd=folder)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(folder)


def remove_stale_temporaries(folder: str | Path, targets: re.Pattern[str]) -> list[Path]:
    """Delete the temporaries of atomic writes in ``folder`` that vmac left: of a file whose name
    ``targets`` matches (the names the caller writes there), owned by this user, and whose writing
    process is gone (a kill during the write leaves them); return what was deleted. A live
    writer's, another user's, a link and any other file are kept."""
    folder = check_path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return []
    removed = []
    for path in sorted(folder.iterdir()):
        found = _TEMPORARY.fullmatch(path.name)
        if not found or not targets.fullmatch(found["stem"] + (found["suffix"] or "")):
            continue
        if not _alive(int(found["pid"])) and remove_own(path):
            removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary local path to write; on success it is fsynced and renamed to ``path``.

    For writers that want a path (``torch.save``, ``savefig``). The temporary is made by
    ``mkstemp`` next to ``path`` (its folder made by ``make_folder``), with the mode the umask
    gives a new file; the suffix is kept, so a writer that picks its format from it (matplotlib)
    still does. On error the temporary file is removed and ``path`` is left as it was. Raises
    OutsideError for a path through another user's link or folder.
    """
    path = Path(os.path.abspath(path))  # a link at ``path`` itself is replaced, never followed
    make_folder(path.parent)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.vmac-tmp-{os.getpid()}-", suffix=path.suffix, dir=path.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        os.close(fd)
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
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
    target = Path(os.path.abspath(path))
    make_folder(target.parent)
    # mkstemp: a fresh temporary per writer and thread (O_CREAT|O_EXCL, never through a planted link).
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.vmac-tmp-{os.getpid()}-", suffix=target.suffix,
                                dir=target.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.link(tmp, target)  # atomic, and refused (EEXIST) when another writer made the name first
    finally:
        tmp.unlink(missing_ok=True)
