"""``vmac gc STORE --older-than DAYS``: expire old snapshots and free the version folders only
they named. Never run by any other command.

What is kept: the tip; every tagged snapshot (pre-training tags the snapshot it trains on,
``tasks.pretrain.data``); every snapshot made within ``older_than``; and every version folder one of
them names. What goes: the other snapshots' files (their commits stay in the history, marked
expired), the version folders that only expired snapshots named, and version folders no snapshot
ever named (decodes a killed ingest left) once nothing was written in them for ``older_than`` and
at least ``IN_FLIGHT_S`` (an ingest may be writing them right now).

A reader holding an expired snapshot (an untagged one opened before the gc) loses the folders it
reads; tags are how a long reader keeps its snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pydantic import ValidationError

from storage_schemas.layout import VIDEOS_GROUP
from storage_schemas.snapshots import SNAPSHOTS_DIR, VERSION_ID
from tasks.io.names import inside
from tasks.io.snapshots import forget_snapshots, list_tags, load_snapshot, read_tip
from tasks.io.store import version_path
from tasks.io.uris import filesystem, join, local_path, normalize

# A version folder no snapshot names is left alone while anything in it is younger than this:
# an ingest may still be writing it (the longest videos take hours; shards arrive all along).
IN_FLIGHT_S = 3600.0


@dataclass
class GcReport:
    store: str
    cutoff: str
    expired: list[str] = field(default_factory=list)  # snapshot ids whose files were (or would be) deleted
    kept: dict[str, str] = field(default_factory=dict)  # snapshot id → why it stays
    removed: list[str] = field(default_factory=list)  # version folders (videos/<id>/<version>) deleted
    left: dict[str, str] = field(default_factory=dict)  # unnamed version folder → why it stays
    freed_bytes: int = 0
    dry_run: bool = False


def _snapshot_ids(store: str) -> list[str]:
    fs, path = filesystem(join(store, SNAPSHOTS_DIR))
    try:
        names = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    return sorted(n.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json") for n in names if n.endswith(".json"))


def _version_folders(store: str) -> dict[str, tuple[int, float]]:
    """Every version folder of the store → (bytes, Unix time of its newest file), one listing."""
    fs, base = filesystem(join(store, VIDEOS_GROUP))
    found: dict[str, tuple[int, float]] = {}
    try:
        listing = fs.find(base, detail=True)
    except FileNotFoundError:
        return {}
    for path, info in listing.items():
        parts = path[len(base.rstrip("/")) + 1:].split("/")
        if len(parts) < 3 or not VERSION_ID.fullmatch(parts[1]):
            continue
        key = version_path(parts[0], parts[1])
        size, newest = found.get(key, (0, 0.0))
        found[key] = (size + int(info.get("size") or 0), max(newest, _mtime(info)))
    return found


def _mtime(info: dict) -> float:
    value = info.get("mtime") or info.get("LastModified") or info.get("created") or info.get("updated") or 0.0
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _classify(store: str, cutoff: datetime, report: GcReport) -> tuple[set[str], set[str]]:
    """Fill ``report.kept`` and ``report.expired``; (the version folders kept snapshots name, those
    only expired ones name)."""
    tip = read_tip(store)
    keep = {tag.snapshot: f"tag {tag.name}" for tag in list_tags(store)}
    if tip is not None:
        keep[tip.snapshot] = "the tip"
    named: set[str] = set()
    expired: set[str] = set()
    for snapshot_id in _snapshot_ids(store):
        try:
            snapshot = load_snapshot(store, snapshot_id)
        except (FileNotFoundError, ValidationError):
            continue
        folders = {version_path(vid, e.version) for vid, e in snapshot.videos.items() if e.version}
        made = datetime.fromisoformat(snapshot.created_at)
        why = keep.get(snapshot_id) or (f"made after {cutoff:%Y-%m-%d %H:%M}" if made >= cutoff else None)
        if why is None:
            report.expired.append(snapshot_id)
            expired |= folders
            continue
        report.kept[snapshot_id] = why
        named |= folders
    return named, expired - named


def collect_garbage(store: str, older_than: timedelta, dry_run: bool = False,
                    now: datetime | None = None) -> GcReport:
    """Expire snapshots older than ``older_than`` and free what only they named (module docstring);
    with ``dry_run`` only report it. Raises ValueError for a negative ``older_than``."""
    if older_than < timedelta(0):
        raise ValueError("--older-than must be 0 days or more")
    store = normalize(store)
    now = now or datetime.now(timezone.utc)
    cutoff = now - older_than
    report = GcReport(store, cutoff.isoformat(timespec="seconds"), dry_run=dry_run)
    named, superseded = _classify(store, cutoff, report)
    quiet_since = min(cutoff, now - timedelta(seconds=IN_FLIGHT_S)).timestamp()
    doomed = []
    for folder, (size, newest) in sorted(_version_folders(store).items()):
        if folder in named:
            continue
        if folder not in superseded and newest > quiet_since:
            report.left[folder] = "written recently: an ingest may be writing it"
            continue
        doomed.append(folder)
        report.freed_bytes += size
    report.removed = doomed
    if not dry_run:
        fs, _ = filesystem(store)
        local = local_path(store)
        for folder in doomed:
            if local is not None:
                inside(local, *folder.split("/"))  # never through a link planted in the store
            fs.rm(filesystem(join(store, folder))[1], recursive=True)
        for snapshot_id in report.expired:
            fs.rm_file(filesystem(join(store, SNAPSHOTS_DIR, f"{snapshot_id}.json"))[1])
        forget_snapshots()
    return report
