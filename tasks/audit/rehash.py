"""Audits: re-hash a store or a run directory against what its records say, and record the audit.

A store: each complete video's source, stored frames and motion map (``--motion``) against its
catalog row, and the row against the ingest record that wrote it. A run directory: its checkpoints and encoder against
the lineage outputs, then the frames of every video it trained on. The audit is appended to the
audited thing's lineage folder as a record of kind ``audit``; no record is ever rewritten.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from storage_schemas.audit import AuditReport, Drift
from storage_schemas.layout import LINEAGE_DIR, MOTION, VIDEOS_GROUP
from storage_schemas.lineage import Dataset, LineageRecord
from storage_schemas.records import Status, VideoRecord
from storage_schemas.run import CHECKPOINTS_DIR
from tasks.audit.checks import check_catalog_against_lineage, check_file, check_frames, check_source, source_item
from tasks.audit.records import index_ingest_outputs, ingest_output, locate, read_lineage
from tasks.io import lineage
from tasks.io.cluster import fan_out
from tasks.io.files import is_temporary
from tasks.io.items import SourceItem
from tasks.io.secrets import was_redacted
from tasks.io.snapshots import SnapshotNotFoundError, split_ref
from tasks.io.store import Snapshot, is_store, open_snapshot
from tasks.io.uris import exists, join, local_path, normalize
from tasks.progress import progress_bar

Rehash = tuple[dict[str, int], list[Drift], list[str]]  # (hashes compared, by what; drifts; notes)


def audit_store(store: str, progress: bool = False, dask_address: str | None = None,
                dask_workers: int | None = None) -> Rehash:
    """Re-hash every complete video's source and stored frames in one snapshot of the store (its
    tip, or ``STORE@REF``) against its catalog row (and check the row against the ingest record
    that wrote it). Returns (checked counts, drifts, notes).

    The re-hashing of each video (``rehash_video``) runs here in turn, or as Dask tasks (small
    videos batched: ``tasks.io.cluster.fan_out``) with ``dask_address`` (the user's scheduler) or ``dask_workers`` (a LocalCluster), as
    ingest and validation do; the rows and records are checked here."""
    snapshot = open_snapshot(store)
    store, catalog = snapshot.store, snapshot.records()
    ingests = index_ingest_outputs(read_lineage(store), store)
    complete = {vid: row for vid, row in catalog.items() if row is not None and row.status is Status.complete}
    notes = [f"audited snapshot {snapshot.id}"] if snapshot.id else []
    notes += [f"{len(catalog) - len(complete)} video(s) not complete (failed or unreadable): not re-hashed"
              ] if len(catalog) > len(complete) else []
    notes.append("masks and keypoints have no stored-array hash in the catalog (VideoRecord.frames_sha256 only); "
                 "their source files are covered by the source hash")
    drifts: list[Drift] = []
    checked = {"sources": 0, "frames": 0}
    expanded: dict[tuple[str, ...], dict[str, SourceItem]] = {}
    root = None if dask_address or dask_workers else snapshot.root()  # opened once, when read here
    jobs: dict[str, tuple] = {}
    for vid, row in complete.items():
        group = join(store, VIDEOS_GROUP, vid)
        where = f"catalog row {group}"
        found = ingest_output(ingests, vid, row.frames_sha256)
        if found is not None:
            drifts += check_catalog_against_lineage(row, vid, store, found, group)
        item = source_item(row, vid, found[0] if found else None, expanded)
        if item is None and not exists(row.source_uri):
            drifts.append(Drift(what="source", uri=row.source_uri, video_id=vid, recorded=row.sha256,
                                detail="missing", record=where))
        elif item is None:
            notes.append(f"{vid}: frame-folder source {row.source_uri} is not among its ingest roots; not re-hashed")
        jobs[vid] = (snapshot.narrowed([vid]), vid, row, item, where, root)
    with progress_bar("auditing", 2 * len(jobs), "hashes", enabled=progress, transient=True) as advance:
        results = fan_out(store, dask_address, dask_workers, rehash_video, jobs, "audit",
                          done=lambda vid, _: advance(2, note=vid),
                          sizes={vid: row.frame_count or 1 for vid, row in complete.items()})
    for vid in sorted(results):
        counts, found_drifts, found_notes = results[vid]
        for what, n in counts.items():
            checked[what] = checked.get(what, 0) + n
        drifts += found_drifts
        notes += found_notes
    return checked, drifts, notes


def rehash_video(snapshot: Snapshot, vid: str, row: VideoRecord, item: SourceItem | None, where: str,
                 root=None) -> Rehash:
    """Re-hash one complete video of ``snapshot``: its source (``item``; None when it cannot be
    rebuilt, already noted by the caller), its frames and its motion map against its catalog
    ``row``. (counts re-hashed, by what; drifts; notes). A plain function: a Dask task of
    ``audit_store``, or called in turn (``root``: the store's root group, opened once)."""
    checked: dict[str, int] = {"frames": 1}
    drifts: list[Drift] = []
    notes: list[str] = []
    if item is not None:
        drift = check_source(row, vid, item, where)
        if drift is not None and drift.found is None and was_redacted(row.source_uri):
            notes.append(f"{vid}: source {row.source_uri} not re-hashed ({drift.detail}): its URL carried "
                         "credentials, which vmac does not keep; give them through your fsspec configuration "
                         "to audit it (docs/security.md)")
        else:
            checked["sources"] = 1
            drifts += [drift] if drift else []
    drift = check_frames(snapshot, vid, row.frames_sha256, where, root=root)
    drifts += [drift] if drift else []
    if row.has_motion:
        checked["motion"] = 1
        drift = check_frames(snapshot, vid, row.motion_sha256, where, MOTION, root)
        drifts += [drift] if drift else []
    return checked, drifts, notes


def _run_basis(records: list[LineageRecord]) -> tuple[LineageRecord, list[str]]:
    """The pretrain record an audit compares the run's stores with: the last completed one, else
    the latest that lists the videos (``checkpoint`` records name the stores only); and notes
    saying when it is not the latest or the run never completed."""
    completed = [r for r in records if r.status == "completed"]
    runs = [r for r in records if r.status != "checkpoint"] or records
    basis = completed[-1] if completed else runs[-1]
    notes = [] if basis is runs[-1] else [
        f"the latest pretrain record is {runs[-1].status} ({runs[-1].time}); audited against the last completed one"]
    if not completed:
        notes.append(f"the run has no completed record (latest: {basis.status}, {basis.time}); no outputs to re-hash")
    return basis, notes


def _run_outputs(run_dir: str, records: list[LineageRecord]) -> dict[str, tuple[LineageRecord, Dataset]]:
    """Where each file the run's records name as an output lies now → the latest record naming it."""
    files: dict[str, tuple[LineageRecord, Dataset]] = {}
    for record in records:
        for dataset in record.outputs:
            files[locate(dataset.uri, record, run_dir)] = (record, dataset)
    return files


def _rehash_run_files(run_dir: str, files: dict[str, tuple[LineageRecord, Dataset]], basis: LineageRecord,
                      advance: Callable[..., None]) -> tuple[int, list[Drift], list[str]]:
    """Each of ``files`` (from ``_run_outputs``) against the record that names it: (files
    re-hashed, drifts, notes)."""
    drifts, notes, checked = [], [], 0
    for uri, (record, dataset) in files.items():
        advance(note=os.path.basename(uri))
        if not exists(uri) and record is not basis:
            why = ("removed by keep_checkpoints once later ones were written" if record.status == "checkpoint"
                   else f"a later completed record ({basis.id[:12]}) superseded the one naming it")
            notes.append(f"{uri}: gone; {why}")
            continue
        checked += 1
        drift = check_file(uri, dataset.kind, dataset.sha256, f"{join(run_dir, LINEAGE_DIR)} record {record.id[:12]}")
        drifts += [drift] if drift else []
    return checked, drifts, notes


def _rehash_trained_frames(run_dir: str, videos: list[tuple[str, str | None, str, dict]], basis: LineageRecord,
                           advance: Callable[..., None], dask_address: str | None = None,
                           dask_workers: int | None = None) -> tuple[int, list[Drift]]:
    """The frames of each (store, snapshot, video_id, recorded hashes) the run trained on, read from
    the snapshot it trained on (the store's tip for runs recorded before snapshots), and its motion
    map when the record names one (``motion_sha256``): (videos re-hashed, drifts). A missing store
    or snapshot (expired by ``vmac gc``) is one drift, and its videos are skipped. Each video is
    re-hashed here, or as a Dask task (``dask_address``, ``dask_workers``; see ``audit_store``)."""
    where = f"{join(run_dir, LINEAGE_DIR)} record {basis.id[:12]}"
    drifts: list[Drift] = []
    opened: dict[tuple[str, str | None], tuple | None] = {}
    jobs: dict[str, tuple] = {}  # by position: a task's key must not carry a store's URL
    on_cluster = bool(dask_address or dask_workers)
    for store, snapshot_id, vid, recorded in videos:
        key = (store, snapshot_id)
        if key not in opened:
            opened[key] = _open_trained(store, snapshot_id, where, drifts)
        if opened[key] is None:
            advance(note=f"{vid} frames")
            continue
        snapshot, root = opened[key]
        jobs[str(len(jobs))] = (snapshot.narrowed([vid]), vid, recorded, where, None if on_cluster else root)
    first = next(iter(jobs.values()))[0].store if jobs else ""
    results = fan_out(first, dask_address, dask_workers, rehash_trained_video, jobs, "audit",
                      done=lambda position, _: advance(note=f"{jobs[position][1]} frames"))
    for position in jobs:
        drifts += results[position]
    return len(jobs), drifts


def rehash_trained_video(snapshot: Snapshot, vid: str, recorded: dict, where: str, root=None) -> list[Drift]:
    """Re-hash the frames (and the motion map when ``recorded`` names one) of ``vid`` in the
    snapshot a run trained on; the drifts. A plain function: a Dask task of a run's audit, or
    called in turn (``root``: the store's root group, opened once)."""
    found = [check_frames(snapshot, vid, recorded.get("frames_sha256"), where, root=root)]
    if recorded.get("motion_sha256"):
        found.append(check_frames(snapshot, vid, recorded["motion_sha256"], where, MOTION, root))
    return [drift for drift in found if drift]


def _open_trained(store: str, snapshot_id: str | None, where: str, drifts: list[Drift]) -> tuple | None:
    """(snapshot, root group) a run trained on; None, with a drift appended, when it is gone."""
    if not is_store(store):
        drifts.append(Drift(what="store", uri=store, detail="missing", record=where))
        return None
    try:
        snapshot = open_snapshot(f"{store}@{snapshot_id}" if snapshot_id else store)
    except SnapshotNotFoundError:
        drifts.append(Drift(what="store", uri=f"{store}@{snapshot_id}", detail="snapshot missing: expired by vmac gc, "
                            "or the store was replaced", record=where))
        return None
    return snapshot, snapshot.root()


def unknown_checkpoint_files(run_dir: str, files: dict[str, tuple[LineageRecord, Dataset]]) -> tuple[list[Drift], list[str]]:
    """Files in ``<run>/checkpoints`` that no record of the run names: a drift each (a resume
    does not load them), except the temporaries of killed writes, which are notes (the next start
    deletes them)."""
    folder = local_path(join(run_dir, CHECKPOINTS_DIR))
    if folder is None or not os.path.isdir(folder):
        return [], []
    drifts, notes = [], []
    where = f"{join(run_dir, LINEAGE_DIR)} (every record)"
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if path in files:
            continue
        if is_temporary(name):
            notes.append(f"{path}: the temporary of a killed write; the run's next start deletes it")
        else:
            drifts.append(Drift(what="checkpoint", uri=path, detail="unknown: no record of this run names it, "
                                "so a resume will not load it", record=where))
    return drifts, notes


def audit_run(run_dir: str, progress: bool = False, dask_address: str | None = None,
              dask_workers: int | None = None) -> Rehash:
    """Re-hash the checkpoints and encoder a run recorded, then the frames it trained on, read from
    the snapshot of each store it recorded (however the store changed since). Returns (checked
    counts, drifts, notes).

    Each file is compared with the latest record that names it. A checkpoint missing because a
    later completed record superseded it, or ``keep_checkpoints`` pruned it, is a note, not
    drift; a file in ``checkpoints/`` that no record names is drift. The frames are re-hashed on
    Dask with ``dask_address`` or ``dask_workers`` (as ``audit_store``). Raises ValueError when
    ``run_dir`` has no pretrain records.
    """
    records = [r for r in read_lineage(run_dir) if r.kind == "pretrain"]
    if not records:
        raise ValueError(f"{run_dir} has no pretrain lineage records; audit takes a store or a run directory")
    basis, notes = _run_basis(records)
    videos = [(locate(item.uri, basis, run_dir), item.facets.get("snapshot"), vid, meta)
              for item in basis.inputs if item.kind == "store" for vid, meta in (item.facets.get("videos") or {}).items()]
    outputs = _run_outputs(run_dir, records)
    with progress_bar("auditing", len(outputs) + len(videos), "hashes", enabled=progress, transient=True) as advance:
        files, file_drifts, file_notes = _rehash_run_files(run_dir, outputs, basis, advance)
        frames, frame_drifts = _rehash_trained_frames(run_dir, videos, basis, advance, dask_address, dask_workers)
    unknown, unknown_notes = unknown_checkpoint_files(run_dir, outputs)
    return ({"files": files, "frames": frames}, file_drifts + unknown + frame_drifts,
            notes + file_notes + unknown_notes)


def audit_kind(path: str) -> Literal["store", "run"]:
    """What ``path`` is to an audit: a store, or a run directory (a folder with pretrain records)."""
    if is_store(path):
        return "store"
    folder = join(path, LINEAGE_DIR)
    if any(r.kind == "pretrain" for r in read_lineage(path)):
        return "run"
    raise ValueError(f"{path} is neither a vmac store nor a run directory (no pretrain records in {folder})")


def record_audit(report: AuditReport, flow_run_id: str | None = None) -> str:
    """Append the audit as a new lineage record (kind ``audit``, status ``completed`` or
    ``drift_found``) in the audited thing's lineage folder; return its path."""
    target = Dataset(uri=report.target, kind=report.target_kind,
                     facets={"checked": report.checked, "drifts": len(report.drifts), "notes": report.notes})
    drifted = [Dataset(uri=d.uri, kind=d.what, sha256=d.found, facets=d.model_dump(mode="json")) for d in report.drifts]
    record = lineage.make_record("audit", "drift_found" if report.drifts else "completed", lineage.run_id(),
                                 [target, *drifted], [], {"path": report.target}, flow_run_id)
    return lineage.write_record(join(split_ref(report.target)[0], LINEAGE_DIR), record)


def audit(path: str, progress: bool = False, flow_run_id: str | None = None, dask_address: str | None = None,
          dask_workers: int | None = None) -> AuditReport:
    """Re-hash a store or a run directory against its records, record the audit, report the drift.

    Memory stays within one shard (frames) or one MiB block (files) at a time, per process. With
    ``dask_address`` (a running scheduler) or ``dask_workers`` (a LocalCluster of that many), each
    video is re-hashed as a Dask task; without, in this process.
    """
    base, ref = split_ref(path)
    target = normalize(base) + (f"@{ref}" if ref else "")
    kind = audit_kind(target)
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    check = audit_store if kind == "store" else audit_run
    checked, drifts, notes = check(target, progress, dask_address, dask_workers)
    report = AuditReport(target=target, target_kind=kind, started_at=started_at,
                         seconds=round(time.perf_counter() - started, 3), checked=checked, drifts=drifts, notes=notes)
    return report.model_copy(update={"record_path": record_audit(report, flow_run_id)})
