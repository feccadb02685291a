"""A store's history: immutable snapshots of its catalog, one branch of commits, and tags.

Layout and models: ``storage_schemas.snapshots``. The rules that make it safe:

- **Commit.** A writer reads the branch's tip (commit ``seq``), applies its change to that
  snapshot's catalog (an *edit*, a function of the catalog), writes the result as a new snapshot
  file, then creates ``refs/main/<seq + 1>.json``. That creation is exclusive
  (``tasks.io.files.write_atomic``: a hard link locally, a conditional PUT on S3), so of two
  writers that read the same tip only one makes commit ``seq + 1``; the other reads the new tip,
  applies its edit again (a rebase) and tries ``seq + 2``. Nothing is locked, so no process can
  block another, and a writer killed at any point leaves the branch at its last commit (at worst
  an unreferenced snapshot file, which ``vmac gc`` removes).
- **Read.** A reader resolves the tip (or a snapshot id, or a tag) once and reads that snapshot
  for its whole run; the files it names are never rewritten.

Plain functions over fsspec (local paths, ``memory://``, ``s3://``, ``gcs://``); no Zarr here.
"""

from __future__ import annotations

import functools
import random
import secrets
import shlex
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from pydantic import ValidationError

from storage_schemas.layout import LEGACY_STORE_FORMAT
from storage_schemas.snapshots import (
    BRANCH,
    REFS_DIR,
    SNAPSHOT_ID,
    SNAPSHOTS_DIR,
    TAG_NAME,
    TAGS_DIR,
    CatalogEntry,
    CommitInfo,
    SnapshotData,
    TagInfo,
)
from tasks.io.files import write_atomic
from tasks.io.names import inside
from tasks.io.secrets import redact_json, redact_text
from tasks.io.uris import filesystem, join, local_path, normalize

Videos = dict[str, CatalogEntry]
# An edit: the catalog and validation stamp of the tip → what they become. It may be called more
# than once (once per attempt, each time on the tip as it is then): it writes nothing, and what it
# notes for its caller it notes afresh at each call.
Edit = Callable[[Videos, dict | None], tuple[Videos, dict | None]]

# Attempts of one commit before giving up (each lost race costs one; many writers may race).
COMMIT_TRIES = 200


class LegacyStoreError(RuntimeError):
    """A store written before snapshots (format 1): vmac reads and writes it only after ``vmac migrate``."""

    def __init__(self, store: str):
        super().__init__(
            f"{store} was written by a vmac before snapshots (store format {LEGACY_STORE_FORMAT}: records in the video "
            f"groups, arrays rewritten in place); convert it once with `vmac migrate {shlex.quote(store)}` (moves each "
            "video's arrays into a version folder and commits the first snapshot; the frames are not re-decoded)")


class SnapshotNotFoundError(FileNotFoundError):
    """A snapshot id or tag that the store does not hold (never made, or expired by ``vmac gc``)."""


class CommitConflictError(RuntimeError):
    """A commit that lost the race for the tip ``COMMIT_TRIES`` times in a row."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_snapshot_id() -> str:
    """16 hex digits: the Unix time (8), then 8 random ones; ids sort by the time they were made."""
    return f"{int(time.time()):08x}{secrets.token_hex(4)}"


def new_version_id() -> str:
    """A version folder's name: the UTC time it was started, then 8 random hex digits."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def split_ref(store: str) -> tuple[str, str | None]:
    """``STORE@REF`` → (STORE, REF), where REF is a snapshot id or a tag; (STORE, None) without one.

    Only a final ``@`` followed by a name that could be a tag or snapshot id counts, so a path
    with an ``@`` elsewhere (``/data/run@2/s.zarr``) is a store path as it is."""
    base, sep, ref = store.rpartition("@")
    if sep and base and TAG_NAME.fullmatch(ref):
        return base, ref
    return store, None


def _in_store(store: str, *parts: str, writing: bool = False) -> str:
    """``store/parts…``. For a write into a local store, checked by ``tasks.io.names.inside``:
    OutsideError for a path through a symbolic link planted in the store (vmac writes only inside
    the folder named)."""
    path = local_path(store) if writing else None
    if path is not None:
        inside(path, *parts)
    return join(store, *parts)


def _commit_uri(store: str, seq: int, writing: bool = False) -> str:
    return _in_store(store, REFS_DIR, BRANCH, f"{seq:012d}.json", writing=writing)


def _hint_uri(store: str, writing: bool = False) -> str:
    return _in_store(store, REFS_DIR, f"{BRANCH}.json", writing=writing)


def _snapshot_uri(store: str, snapshot_id: str, writing: bool = False) -> str:
    return _in_store(store, SNAPSHOTS_DIR, f"{snapshot_id}.json", writing=writing)


def _tag_uri(store: str, name: str, writing: bool = False) -> str:
    return _in_store(store, REFS_DIR, TAGS_DIR, f"{name}.json", writing=writing)


def _read(uri: str) -> bytes | None:
    fs, path = filesystem(uri)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None


def _exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def _commit_numbers(store: str) -> list[int]:
    """The numbers of every commit file of the branch, ascending (one listing)."""
    fs, path = filesystem(join(store, REFS_DIR, BRANCH))
    try:
        names = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    stems = (name.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json") for name in names)
    return sorted(int(stem) for stem in stems if stem.isdigit())


def read_commit(store: str, seq: int) -> CommitInfo:
    raw = _read(_commit_uri(store, seq))
    if raw is None:
        raise SnapshotNotFoundError(f"{store} has no commit {seq}")
    return CommitInfo.model_validate_json(raw)


def _tip_number(store: str) -> int:
    """The number of the branch's latest commit file; -1 before the store's first.

    Starts from the hint (the latest commit number a writer saw) and steps on while the next
    commit file exists, so a stale hint costs one existence check per commit it missed."""
    raw = _read(_hint_uri(store))
    try:
        seq = int(raw) if raw is not None else None
    except ValueError:
        seq = None
    if seq is None:
        numbers = _commit_numbers(store)
        seq = numbers[-1] if numbers else -1
    while _exists(_commit_uri(store, seq + 1)):
        seq += 1
    return seq


def read_tip(store: str) -> CommitInfo | None:
    """The branch's latest commit; None before the store's first."""
    seq = _tip_number(store)
    return read_commit(store, seq) if seq >= 0 else None


def _newest_good(store: str, seq: int) -> SnapshotData | None:
    """The snapshot of the newest commit up to ``seq`` whose files read back. Commit and snapshot
    files are written without fsync (a kill cannot tear them: each appears whole, by a link);
    after a power loss the newest may be empty, and the store is then read at the one before."""
    while seq >= 0:
        try:
            return load_snapshot(store, read_commit(store, seq).snapshot)
        except (ValidationError, ValueError, FileNotFoundError):
            seq -= 1
    return None


@functools.lru_cache(maxsize=16)
def _load(store: str, snapshot_id: str) -> SnapshotData:
    # Snapshots never change once written, so one process may keep what it read.
    raw = _read(_snapshot_uri(store, snapshot_id))
    if raw is None:
        raise SnapshotNotFoundError(f"{store} has no snapshot {snapshot_id} (never made, or expired by vmac gc)")
    return SnapshotData.model_validate_json(raw)


def forget_snapshots() -> None:
    """Drop what this process read of snapshots (after ``vmac gc`` deleted some)."""
    _load.cache_clear()


def load_snapshot(store: str, snapshot_id: str) -> SnapshotData:
    """Snapshot ``snapshot_id`` of ``store``; SnapshotNotFoundError when it is not there."""
    return _load(normalize(store), snapshot_id)


def snapshot_exists(store: str, snapshot_id: str) -> bool:
    """False once ``vmac gc`` expired the snapshot (its commit stays in the history)."""
    return _exists(_snapshot_uri(store, snapshot_id))


def empty_snapshot() -> SnapshotData:
    """The catalog of a store before its first commit: no videos, never validated."""
    return SnapshotData(id="", parent=None, created_at="")


def resolve(store: str, ref: str | None = None) -> SnapshotData:
    """The snapshot ``ref`` names in ``store``: a snapshot id, else a tag; the tip without one.
    Raises SnapshotNotFoundError for a ref that is neither."""
    if ref is None:
        return _newest_good(store, _tip_number(store)) or empty_snapshot()
    if SNAPSHOT_ID.fullmatch(ref) and _exists(_snapshot_uri(store, ref)):
        return load_snapshot(store, ref)
    tag = read_tag(store, ref)
    if tag is not None:
        return load_snapshot(store, tag.snapshot)
    raise SnapshotNotFoundError(f"{store} has no snapshot or tag {ref!r} (see `vmac history {store}`)")


# Commits of one process to one store take turns: threads would otherwise race for each commit
# number among themselves, and fsspec's in-memory filesystem checks an exclusive create before
# writing instead of in one step. Processes and hosts race through the exclusive create alone.
_TURNS: dict[str, threading.Lock] = {}
_TURNS_GUARD = threading.Lock()


def _turn(store: str) -> threading.Lock:
    with _TURNS_GUARD:
        return _TURNS.setdefault(store, threading.Lock())


def diff(before: Videos, after: Videos) -> tuple[list[str], list[str], list[str]]:
    """(added, changed, removed) video ids from one catalog to the next, each sorted."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(v for v in set(before) & set(after) if before[v] != after[v])
    return added, changed, removed


def commit(store: str, edit: Edit, command: str, message: str = "", run_id: str | None = None,
           code_version: str = "") -> tuple[CommitInfo | None, SnapshotData]:
    """Apply ``edit`` to the tip and make the result the new tip; (the commit, its snapshot).

    When the edit changes nothing, no commit is made: (None, the tip). Raises CommitConflictError
    after ``COMMIT_TRIES`` lost races."""
    store = normalize(store)
    with _turn(store):
        for attempt in range(COMMIT_TRIES):
            seq = _tip_number(store)
            base = _newest_good(store, seq) or empty_snapshot()
            videos, validation = edit(dict(base.videos), base.validation)
            if videos == base.videos and validation == base.validation and seq >= 0:
                return None, base
            videos, validation = _redacted(base, videos, validation)
            snapshot = SnapshotData(id=new_snapshot_id(), parent=base.id or None, created_at=now_iso(),
                                    videos=videos, validation=validation)
            commit_uri = _commit_uri(store, seq + 1, writing=True)  # a refused path before anything is written
            write_atomic(_snapshot_uri(store, snapshot.id, writing=True), snapshot.model_dump_json(), exclusive=True,
                         sync=False)
            added, changed, removed = diff(base.videos, videos)
            info = CommitInfo(seq=seq + 1, snapshot=snapshot.id, parent=snapshot.parent,
                              time=snapshot.created_at, command=command, message=redact_text(message), run_id=run_id,
                              host=socket.gethostname(), code_version=code_version, added=added, changed=changed,
                              removed=removed)
            try:
                write_atomic(commit_uri, info.model_dump_json(indent=1), exclusive=True, sync=False)
            except FileExistsError:
                # Another writer made this commit first: our snapshot was never referenced.
                _remove(_snapshot_uri(store, snapshot.id, writing=True))
                time.sleep(random.uniform(0, 0.01 * min(attempt + 1, 20)))
                continue
            _write_hint(store, info.seq)
            return info, snapshot
    raise CommitConflictError(f"commit to {store} lost the race for the tip {COMMIT_TRIES} times; try again")


def _redacted(base: SnapshotData, videos: Videos, validation: dict | None) -> tuple[Videos, dict | None]:
    """What an edit made, every URL in a new or changed record (and the stamp) redacted
    (``tasks.io.secrets``): a source's credentials never reach a snapshot. Entries carried over
    from ``base`` were redacted when they were committed."""
    redacted = {video_id: entry if base.videos.get(video_id) == entry
                else CatalogEntry(version=entry.version, record=redact_json(entry.record))
                for video_id, entry in videos.items()}
    return redacted, (validation if validation == base.validation else redact_json(validation))


def _write_hint(store: str, seq: int) -> None:
    """Record ``seq`` as the latest commit number, without fsync: a hint that a crash leaves stale
    or torn costs readers a few more existence checks, or one listing (``read_tip``)."""
    fs, path = filesystem(_hint_uri(store, writing=True))
    fs.pipe_file(path, str(seq).encode("ascii"))


def _remove(uri: str) -> None:
    fs, path = filesystem(uri)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass


def history(store: str) -> list[CommitInfo]:
    """Every commit of the branch, newest first (a commit file a power loss left empty is left out)."""
    commits = []
    for seq in reversed(_commit_numbers(store)):
        try:
            commits.append(read_commit(store, seq))
        except (ValidationError, ValueError):
            continue
    return commits


def read_tag(store: str, name: str) -> TagInfo | None:
    if not TAG_NAME.fullmatch(name):
        return None
    raw = _read(_tag_uri(store, name))
    try:
        return TagInfo.model_validate_json(raw) if raw is not None else None
    except ValidationError:
        return None


def list_tags(store: str) -> list[TagInfo]:
    """Every tag of the store, by name."""
    fs, path = filesystem(join(store, REFS_DIR, TAGS_DIR))
    try:
        names = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    found = (read_tag(store, name.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")) for name in sorted(names))
    return [tag for tag in found if tag is not None]


def create_tag(store: str, name: str, snapshot_id: str, message: str = "") -> TagInfo:
    """Name ``snapshot_id`` ``name`` (kept by ``vmac gc``). A tag is never moved: making one that
    exists on the same snapshot returns it; on another raises ValueError. ValueError also for a
    name outside ``[A-Za-z0-9][A-Za-z0-9._-]*`` and SnapshotNotFoundError for an unknown snapshot."""
    if not TAG_NAME.fullmatch(name):
        raise ValueError(f"tag {name!r}: use letters, digits, '.', '_' and '-' (at most 128)")
    load_snapshot(store, snapshot_id)
    tag = TagInfo(name=name, snapshot=snapshot_id, created_at=now_iso(), message=message)
    try:
        write_atomic(_tag_uri(store, name, writing=True), tag.model_dump_json(indent=1), exclusive=True)
    except FileExistsError:
        held = read_tag(store, name)
        if held is None or held.snapshot != snapshot_id:
            raise ValueError(f"tag {name!r} of {store} names snapshot {held.snapshot if held else '?'}, "
                             f"not {snapshot_id}") from None
        return held
    return tag
