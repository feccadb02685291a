"""Lineage and audit: trace any artifact back to its source hashes; re-hash what was recorded.

``lineage_tree(path)`` starts from a store, a video group, a validation result, a run directory,
a checkpoint or encoder, an evaluation folder or a benchmark JSON. It finds the lineage folder
that covers the path (walking up its parents) and follows each record's inputs to the records
that produced them::

    benchmark → evaluate record → encoder → pretrain record → store → video → ingest record → source

``audit(path)`` re-hashes a store (each complete video's source and stored frames, against the
catalog and the ingest records) or a run directory (checkpoints and encoder against the lineage
outputs, then the frames of every video it trained on), and appends what it found to the audited
thing's lineage folder as a record of kind ``audit``. No record is ever rewritten.

URIs a record names below the folder its job wrote (``parameters.out`` or ``parameters.store``)
are resolved relative to where that folder is now, so a run directory or store that was moved
or given as a relative path still traces and audits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Literal

import fsspec
import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from storage_schemas.audit import AuditReport, Drift
from storage_schemas.layout import FRAMES, LINEAGE_DIR, VIDEOS_GROUP
from storage_schemas.lineage import Dataset, LineageRecord
from storage_schemas.records import SourceKind, Status, VideoRecord
from storage_schemas.validation import VALIDATION_ATTR, VALIDATION_DIR
from tasks.io import lineage
from tasks.io.files import file_sha256
from tasks.io.items import SourceItem
from tasks.io.sources import expand_sources, hash_source
from tasks.io.store import open_store, read_catalog
from tasks.io.uris import is_url

# ---------------------------------------------------------------- locations


def normalize(uri: str) -> str:
    """A comparable location: an absolute local path, or an fsspec URL without a trailing slash."""
    if is_url(uri):
        return uri.rstrip("/")
    return os.path.abspath(os.path.expanduser(uri.removeprefix("file://")))


def _join(uri: str, *parts: str) -> str:
    return posixpath.join(uri, *parts) if is_url(uri) else os.path.join(uri, *parts)


def _ancestors(uri: str) -> Iterator[str]:
    """``uri`` itself, then each parent folder up to the root."""
    while True:
        yield uri
        if is_url(uri):
            protocol, rest = uri.split("://", 1)
            parent = f"{protocol}://{posixpath.dirname(rest.rstrip('/'))}"
        else:
            parent = os.path.dirname(uri)
        if parent == uri:
            return
        uri = parent


def _exists(uri: str) -> bool:
    fs, path = fsspec.core.url_to_fs(uri)
    return fs.exists(path)


def _isdir(uri: str) -> bool:
    fs, path = fsspec.core.url_to_fs(uri)
    return fs.isdir(path)


def _is_store(uri: str) -> bool:
    """A vmac store root: a Zarr group holding a ``videos`` group (a video group holds arrays)."""
    return _exists(_join(uri, "zarr.json")) and _isdir(_join(uri, VIDEOS_GROUP))


def _store_root(path: str) -> str | None:
    return next((a for a in _ancestors(path) if _is_store(a)), None)


def _recorded_root(record: LineageRecord) -> str | None:
    """The folder the record's job wrote into, as its config named it (``out`` or ``store``)."""
    root = record.parameters.get("out") or record.parameters.get("store")
    return root if isinstance(root, str) else None


def locate(uri: str, record: LineageRecord, owner: str) -> str:
    """Where a URI named by ``record`` (found in ``owner``/lineage) lies now.

    Anything below the folder the job wrote moves with that folder; other URIs are taken as
    recorded.
    """
    root = _recorded_root(record)
    target = normalize(uri)
    if root:
        base = normalize(root)
        if target == base:
            return owner
        if target.startswith(base + "/"):
            return _join(owner, target[len(base) + 1:])
    return target


# ---------------------------------------------------------------- lineage tree


def _node(uri: str, kind: str, sha256: str | None = None, record: dict | None = None,
          children: list[dict] | None = None, **extra) -> dict:
    """One tree node: the artifact, the record that produced it, and what it was made from."""
    return {"uri": uri, "kind": kind, "sha256": sha256, "record": record, **extra, "children": children or []}


def _guess_kind(path: str) -> str:
    name = os.path.basename(path)
    if name == "encoder.pt":
        return "encoder"
    if name.endswith(".pt"):
        return "checkpoint"
    if name.startswith("benchmark-") and name.endswith(".json"):
        return "benchmark"
    return "file"


class LineageIndex:
    """Records and catalogs read once per folder while one tree is built."""

    def __init__(self) -> None:
        self._records: dict[str, list[LineageRecord]] = {}
        self._catalogs: dict[str, dict[str, VideoRecord | None]] = {}
        self._ingests: dict[str, dict[str, list[tuple[LineageRecord, Dataset]]]] = {}

    def records(self, owner: str) -> list[LineageRecord]:
        """Every record in ``owner``/lineage, oldest first ([] when there is none)."""
        if owner not in self._records:
            folder = _join(owner, LINEAGE_DIR)
            self._records[owner] = lineage.read_records(folder) if _isdir(folder) else []
        return self._records[owner]

    def catalog(self, store: str) -> dict[str, VideoRecord | None]:
        if store not in self._catalogs:
            self._catalogs[store] = read_catalog(store)
        return self._catalogs[store]

    def ingest_outputs(self, store: str) -> dict[str, list[tuple[LineageRecord, Dataset]]]:
        if store not in self._ingests:
            self._ingests[store] = index_ingest_outputs(self.records(store), store)
        return self._ingests[store]

    def summary(self, owner: str, record: LineageRecord) -> dict:
        """The record as a tree shows it. ``finished`` is False for a ``started`` record that no
        later record of the same run closes: the run was interrupted (or is still running)."""
        finished = record.status != "started" or any(
            r.run_id == record.run_id and r.kind == record.kind and r.status != "started" for r in self.records(owner))
        return {"id": record.id, "kind": record.kind, "status": record.status, "finished": finished,
                "time": record.time, "code_version": record.code_version, "git_sha": record.git_sha,
                "run_id": record.run_id, "flow_run_id": record.flow_run_id, "host": record.host,
                "error": record.error, "path": _join(owner, LINEAGE_DIR)}

    def producer(self, path: str, owner: str, sha256: str | None = None) -> tuple[LineageRecord, Dataset] | None:
        """The record in ``owner``/lineage that wrote ``path``: the latest naming it among its outputs
        with ``sha256`` when given, else the latest naming it, else (a file) one naming its hash."""
        named = [(r, d) for r in self.records(owner) for d in r.outputs if locate(d.uri, r, owner) == path]
        same = [(r, d) for r, d in named if sha256 and d.sha256 == sha256]
        if same or named:
            return (same or named)[-1]
        if sha256 is None and _exists(path) and not _isdir(path):
            sha256 = file_sha256(path)
        by_hash = [(r, d) for r in self.records(owner) for d in r.outputs if sha256 and d.sha256 == sha256]
        return by_hash[-1] if by_hash else None

    # -- nodes ----------------------------------------------------------------------------------

    def artifact(self, path: str, kind: str | None = None, sha256: str | None = None) -> dict:
        """The node of any artifact: inside a store, a folder with lineage, or a file such a folder wrote."""
        store = _store_root(path)
        if store is not None:
            return self.store_part(store, path)
        for owner in _ancestors(path):
            if not self.records(owner):
                continue
            if owner == path:
                return self.folder(owner)
            found = self.producer(path, owner, sha256)
            if found is not None:
                return self.output(owner, *found, consumed_sha256=sha256)
            return _node(path, kind or _guess_kind(path), sha256, children=[self.folder(owner)],
                         note=f"not among the outputs of any record in {_join(owner, LINEAGE_DIR)}")
        return _node(path, kind or _guess_kind(path), sha256, note="no lineage record covers it")

    def output(self, owner: str, record: LineageRecord, dataset: Dataset, consumed_sha256: str | None = None) -> dict:
        """A file a record wrote, with the record's inputs as children."""
        extra = {}
        if consumed_sha256 and dataset.sha256 and consumed_sha256 != dataset.sha256:
            extra["note"] = (f"consumed as sha256 {consumed_sha256[:12]}, but its writer recorded "
                             f"{dataset.sha256[:12]}: the file was rewritten in between")
        return _node(locate(dataset.uri, record, owner), dataset.kind, consumed_sha256 or dataset.sha256,
                     self.summary(owner, record), self.inputs(owner, record), **extra)

    def folder(self, owner: str) -> dict:
        """A run directory or evaluation folder: its latest job record stands for it; all are listed."""
        records = self.records(owner)
        jobs = [r for r in records if r.kind != "audit"] or records
        latest = jobs[-1]
        kind = {"pretrain": "run", "evaluate": "evaluation"}.get(latest.kind, latest.kind)
        return _node(owner, kind, None, self.summary(owner, latest), self.inputs(owner, latest),
                     records=[self.summary(owner, r) for r in records])

    def inputs(self, owner: str, record: LineageRecord) -> list[dict]:
        """Children of a record: its stores (with the videos it read) and its input files."""
        consumed: dict[str, dict[str, dict]] = {}
        fingerprints: dict[str, str | None] = {}
        others: list[dict] = []
        for item in record.inputs:
            uri = locate(item.uri, record, owner)
            if item.kind == "store":
                consumed.setdefault(uri, {}).update(item.facets.get("videos") or {})
                fingerprints[uri] = item.facets.get("catalog_fingerprint")
            elif item.kind == "video" and f"/{VIDEOS_GROUP}/" in uri:
                store, video_id = uri.rsplit(f"/{VIDEOS_GROUP}/", 1)
                consumed.setdefault(store, {})[video_id] = {
                    "frames_sha256": item.sha256, "sha256": item.facets.get("source_sha256"),
                    "source_uri": item.facets.get("source_uri")}
            elif item.kind == "source":
                others.append(_node(item.uri, "source", item.sha256))
            else:
                others.append(self.artifact(uri, item.kind, item.sha256))
        stores = [self.store(uri, videos or None, fingerprints.get(uri)) for uri, videos in consumed.items()]
        return stores + others

    def store_part(self, store: str, path: str) -> dict:
        """A path inside a store: the store itself, one video group (or an array in it), a validation result."""
        rel = os.path.relpath(path, store) if not is_url(store) else path[len(store):].strip("/")
        parts = [] if rel in ("", ".") else rel.split("/")
        if len(parts) >= 2 and parts[0] == VIDEOS_GROUP:
            return self.video(store, parts[1])
        if len(parts) == 2 and parts[0] == VALIDATION_DIR:
            return self.validation_result(store, parts[1])
        return self.store(store)

    def store(self, store: str, consumed: dict[str, dict] | None = None, fingerprint: str | None = None) -> dict:
        """A store: its validation stamp, its ingest records, and its videos (those consumed, or all)."""
        if not _is_store(store):
            return _node(store, "store", note="store not found")
        records = self.records(store)
        ingests = [r for r in records if r.kind == "ingest"]
        ids = sorted(consumed) if consumed is not None else sorted(self.catalog(store))
        children = [self.video(store, vid, (consumed or {}).get(vid)) for vid in ids]
        return _node(store, "store", None, self.summary(store, ingests[-1]) if ingests else None, children,
                     validation=self.validation(store, fingerprint), records=[self.summary(store, r) for r in records])

    def validation(self, store: str, recorded_fingerprint: str | None) -> dict | None:
        """The store's validation stamp, and whether it vouches for the catalog a consumer recorded
        (``recorded_fingerprint``) and for the catalog as it is now."""
        from tasks.io.store import fingerprint_of

        stamp = open_store(store, mode="r").attrs.get(VALIDATION_ATTR)
        if not stamp:
            return None
        fingerprint = stamp.get("catalog_fingerprint")
        return {"validation_id": stamp.get("validation_id"), "passed": stamp.get("passed"),
                "validated_at": stamp.get("validated_at"), "catalog_fingerprint": fingerprint,
                "report_path": stamp.get("report_path"),
                "matches_recorded_catalog": None if recorded_fingerprint is None else recorded_fingerprint == fingerprint,
                "matches_current_catalog": fingerprint_of(self.catalog(store)) == fingerprint}

    def validation_result(self, store: str, name: str) -> dict:
        """``<store>/validation/<id>.json|md``: that validation's stamp, over the store it checked."""
        uri = _join(store, VALIDATION_DIR, os.path.splitext(name)[0] + ".json")
        stamp = {}
        if _exists(uri):
            with fsspec.open(uri, "r") as handle:
                stamp = json.load(handle).get("stamp", {})
        return _node(_join(store, VALIDATION_DIR, name), "validation", None, children=[self.store(store)],
                     validation={k: stamp.get(k) for k in ("validation_id", "passed", "validated_at",
                                                           "catalog_fingerprint", "report_path")})

    def video(self, store: str, video_id: str, consumed: dict | None = None) -> dict:
        """A video group: the ingest record that wrote the version consumed (or the current one), and
        its source with the hash recorded then. Without an ingest record the catalog speaks for it."""
        uri = _join(store, VIDEOS_GROUP, video_id)
        row = self.catalog(store).get(video_id) if _is_store(store) else None
        frames_sha = (consumed or {}).get("frames_sha256") or (row.frames_sha256 if row else None)
        found = ingest_output(self.ingest_outputs(store), video_id, frames_sha)
        extra: dict = {"video_id": video_id, "status": row.status.value if row else "missing"}
        source_sha = (consumed or {}).get("sha256") or (found[1].facets.get("source_sha256") if found else None) or (
            row.sha256 if row else None)
        source_uri = (consumed or {}).get("source_uri") or (row.source_uri if row else None)
        if found is not None:
            record, dataset = found
            source_uri = source_uri or next((d.uri for d in record.inputs if d.sha256 == source_sha), None)
            if frames_sha and dataset.sha256 != frames_sha:
                extra["note"] = "no ingest record names this frames hash; showing the latest that wrote the video"
        else:
            extra["note"] = "no ingest lineage record names this video; hashes are the store catalog's"
        if row is None:
            extra["note"] = "video group not found in the store"
        children = [_node(source_uri, "source", source_sha)] if source_uri else []
        summary = self.summary(store, found[0]) if found else None
        return _node(uri, "video", frames_sha, summary, children, **extra)


def index_ingest_outputs(records: list[LineageRecord], store: str) -> dict[str, list[tuple[LineageRecord, Dataset]]]:
    """video_id → every (ingest record, output) that wrote it, oldest first: one pass over the
    records, so a store of many videos and many ingest runs is not rescanned per video."""
    prefix = _join(store, VIDEOS_GROUP, "")
    index: dict[str, list[tuple[LineageRecord, Dataset]]] = {}
    for record in records:
        if record.kind != "ingest":
            continue
        for dataset in record.outputs:
            where = locate(dataset.uri, record, store)
            if dataset.kind == "video" and where.startswith(prefix):
                index.setdefault(where[len(prefix):], []).append((record, dataset))
    return index


def ingest_output(index: dict[str, list[tuple[LineageRecord, Dataset]]], video_id: str,
                  frames_sha256: str | None = None) -> tuple[LineageRecord, Dataset] | None:
    """The latest ingest record (and its output) that wrote ``video_id`` with ``frames_sha256``,
    else the latest that wrote it at all (``index`` from ``index_ingest_outputs``)."""
    named = index.get(video_id, [])
    same = [(r, d) for r, d in named if frames_sha256 and d.sha256 == frames_sha256]
    return (same or named)[-1] if (same or named) else None


def lineage_tree(path: str) -> dict:
    """The chain from the artifact at ``path`` back to the source files and their hashes.

    Each node: ``uri``, ``kind``, ``sha256`` (as recorded), ``record`` (id, kind, status,
    finished, time, code_version, ... of the record that produced it, or None) and ``children``
    (what it was made from). Stores also carry ``validation`` and ``records``; run and evaluation
    folders carry ``records``, so failed and interrupted attempts show. Raises FileNotFoundError
    when nothing exists at ``path``.
    """
    target = normalize(path)
    if not _exists(target):
        raise FileNotFoundError(f"nothing at {path}")
    return LineageIndex().artifact(target)


# ---------------------------------------------------------------- audit


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[str], None]]:
    """advance(label) once per hash; a bar on stderr (stdout stays clean for --json) when enabled."""
    if not enabled:
        yield lambda label: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}", style="dim"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        bar = progress.add_task("", total=total)
        yield lambda label: progress.update(bar, advance=1, description=label)


def frames_sha256(array) -> str:
    """sha256 of a (T, ...) Zarr array's bytes in C order, read one shard at a time.

    The same digest the ingest writer computed shard by shard (``ShardWriter``), with memory
    bounded by one shard.
    """
    step = array.shards[0] if array.shards else array.chunks[0]
    digest = hashlib.sha256()
    for start in range(0, array.shape[0], step):
        digest.update(np.ascontiguousarray(array[start:start + step]).tobytes())
    return digest.hexdigest()


def check_frames(root, store: str, video_id: str, recorded: str | None, record: str) -> Drift | None:
    """Re-hash ``videos/<video_id>/frames`` of the opened store ``root`` against ``recorded``;
    a Drift, or None when it matches."""
    uri = _join(store, VIDEOS_GROUP, video_id, FRAMES)
    try:
        array = root[f"{VIDEOS_GROUP}/{video_id}/{FRAMES}"]
    except KeyError:
        return Drift(what="frames", uri=uri, video_id=video_id, recorded=recorded, detail="missing", record=record)
    try:
        found = frames_sha256(array)
    except Exception as exc:  # noqa: BLE001 - a damaged shard fails in the codec, with whichever error: that is the finding
        return Drift(what="frames", uri=uri, video_id=video_id, recorded=recorded,
                     detail=f"unreadable: {exc.__class__.__name__}: {exc}"[:300], record=record)
    if found != recorded:
        return Drift(what="frames", uri=uri, video_id=video_id, recorded=recorded, found=found,
                     detail="changed", record=record)
    return None


def check_file(uri: str, what: str, recorded: str | None, record: str) -> Drift | None:
    """Re-hash one file against ``recorded``; a Drift, or None when it matches."""
    if not _exists(uri):
        return Drift(what=what, uri=uri, recorded=recorded, detail="missing", record=record)
    found = file_sha256(uri)
    if found != recorded:
        return Drift(what=what, uri=uri, recorded=recorded, found=found, detail="changed", record=record)
    return None


def source_item(row: VideoRecord, video_id: str, ingest: LineageRecord | None,
                expanded: dict[tuple[str, ...], dict[str, SourceItem]]) -> SourceItem | None:
    """The source as ingest saw it, to re-hash exactly: the ingest record's source roots expanded
    again (a frame folder's hash covers its frame, mask and keypoint files) and matched by
    video_id; for a plain video file, the file itself. None when it cannot be rebuilt.

    ``expanded`` caches each set of roots, which many videos share.
    """
    roots = tuple((ingest.parameters.get("sources") or []) if ingest else [])
    if roots:
        if roots not in expanded:
            expanded[roots] = {item.video_id: item for item in expand_sources(list(roots))}
        item = expanded[roots].get(video_id)
        if item is not None and item.error is None:
            return item
    if row.source_kind is SourceKind.video:
        return SourceItem(uri=row.source_uri, video_id=video_id, kind=SourceKind.video, layout=row.layout)
    return None


def check_source(row: VideoRecord, video_id: str, item: SourceItem, record: str) -> Drift | None:
    """Re-hash a video's source against its catalog row; a Drift, or None when it matches."""
    try:
        found, _ = hash_source(item)
    except (FileNotFoundError, IsADirectoryError):
        return Drift(what="source", uri=item.uri, video_id=video_id, recorded=row.sha256, detail="missing", record=record)
    except OSError as exc:
        return Drift(what="source", uri=item.uri, video_id=video_id, recorded=row.sha256,
                     detail=f"unreadable: {exc}"[:300], record=record)
    if found != row.sha256:
        return Drift(what="source", uri=item.uri, video_id=video_id, recorded=row.sha256, found=found,
                     detail="changed", record=record)
    return None


def check_catalog_against_lineage(row: VideoRecord, video_id: str, store: str, found: tuple[LineageRecord, Dataset],
                                  catalog_where: str) -> list[Drift]:
    """The catalog row and the ingest record that wrote the video must agree on both hashes."""
    record, dataset = found
    where = f"{_join(store, LINEAGE_DIR)} record {record.id[:12]}"
    drifts = []
    if dataset.sha256 != row.frames_sha256:
        drifts.append(Drift(what="record", uri=catalog_where, video_id=video_id, recorded=dataset.sha256,
                            found=row.frames_sha256, detail="catalog frames_sha256 differs from the ingest record",
                            record=where))
    source_sha = dataset.facets.get("source_sha256")
    if source_sha and source_sha != row.sha256:
        drifts.append(Drift(what="record", uri=catalog_where, video_id=video_id, recorded=source_sha,
                            found=row.sha256, detail="catalog source sha256 differs from the ingest record",
                            record=where))
    return drifts


def audit_store(store: str, progress: bool = False) -> tuple[dict[str, int], list[Drift], list[str]]:
    """Re-hash every complete video's source and stored frames against its catalog row (and check
    the row against the ingest record that wrote it). Returns (checked counts, drifts, notes)."""
    root = open_store(store, mode="r")
    catalog = read_catalog(root)
    records = lineage.read_records(_join(store, LINEAGE_DIR)) if _isdir(_join(store, LINEAGE_DIR)) else []
    ingests = index_ingest_outputs(records, store)
    complete = {vid: row for vid, row in catalog.items() if row is not None and row.status is Status.complete}
    notes = [f"{len(catalog) - len(complete)} video(s) not complete (failed, writing or unreadable): not re-hashed"
             ] if len(catalog) > len(complete) else []
    notes.append("masks and keypoints have no stored-array hash in the catalog (VideoRecord.frames_sha256 only); "
                 "their source files are covered by the source hash")
    drifts: list[Drift] = []
    checked = {"sources": 0, "frames": 0}
    expanded: dict[tuple[str, ...], dict[str, SourceItem]] = {}
    with _progress(progress, 2 * len(complete)) as advance:
        for vid, row in complete.items():
            group = _join(store, VIDEOS_GROUP, vid)
            where = f"catalog row {group}"
            found = ingest_output(ingests, vid, row.frames_sha256)
            if found is not None:
                drifts += check_catalog_against_lineage(row, vid, store, found, group)
            advance(f"{vid} source")
            item = source_item(row, vid, found[0] if found else None, expanded)
            if item is None and not _exists(row.source_uri):
                drifts.append(Drift(what="source", uri=row.source_uri, video_id=vid, recorded=row.sha256,
                                    detail="missing", record=where))
            elif item is None:
                notes.append(f"{vid}: frame-folder source {row.source_uri} is not among its ingest roots; not re-hashed")
            else:
                checked["sources"] += 1
                drift = check_source(row, vid, item, where)
                drifts += [drift] if drift else []
            advance(f"{vid} frames")
            checked["frames"] += 1
            drift = check_frames(root, store, vid, row.frames_sha256, where)
            drifts += [drift] if drift else []
    return checked, drifts, notes


def audit_run(run_dir: str, progress: bool = False) -> tuple[dict[str, int], list[Drift], list[str]]:
    """Re-hash the checkpoints and encoder a run recorded, then the frames its stores held when it
    trained. Returns (checked counts, drifts, notes).

    Each file is compared with the latest record that names it. A checkpoint missing because a
    later completed record superseded it (``keep_checkpoints`` pruning after a resume) is a note,
    not drift.
    """
    records = [r for r in lineage.read_records(_join(run_dir, LINEAGE_DIR)) if r.kind == "pretrain"]
    if not records:
        raise ValueError(f"{run_dir} has no pretrain lineage records; audit takes a store or a run directory")
    files: dict[str, tuple[LineageRecord, Dataset]] = {}
    for record in records:
        for dataset in record.outputs:
            files[locate(dataset.uri, record, run_dir)] = (record, dataset)
    completed = [r for r in records if r.status == "completed"]
    basis = completed[-1] if completed else records[-1]
    notes = [] if basis is records[-1] else [
        f"the latest pretrain record is {records[-1].status} ({records[-1].time}); audited against the last completed one"]
    if not completed:
        notes.append(f"the run has no completed record (latest: {basis.status}, {basis.time}); no outputs to re-hash")
    videos = [(locate(item.uri, basis, run_dir), vid, meta.get("frames_sha256"))
              for item in basis.inputs if item.kind == "store" for vid, meta in (item.facets.get("videos") or {}).items()]
    drifts: list[Drift] = []
    checked = {"files": 0, "frames": 0}
    roots: dict[str, object] = {}
    with _progress(progress, len(files) + len(videos)) as advance:
        for uri, (record, dataset) in files.items():
            advance(os.path.basename(uri))
            if not _exists(uri) and record is not basis:
                notes.append(f"{uri}: gone; a later completed record ({basis.id[:12]}) superseded the one naming it")
                continue
            checked["files"] += 1
            drift = check_file(uri, dataset.kind, dataset.sha256, f"{_join(run_dir, LINEAGE_DIR)} record {record.id[:12]}")
            drifts += [drift] if drift else []
        where = f"{_join(run_dir, LINEAGE_DIR)} record {basis.id[:12]}"
        for store, vid, recorded in videos:
            advance(f"{vid} frames")
            if store not in roots:
                roots[store] = open_store(store, mode="r") if _is_store(store) else None
                if roots[store] is None:
                    drifts.append(Drift(what="store", uri=store, detail="missing", record=where))
            if roots[store] is None:
                continue
            checked["frames"] += 1
            drift = check_frames(roots[store], store, vid, recorded, where)
            drifts += [drift] if drift else []
    return checked, drifts, notes


def audit_kind(path: str) -> Literal["store", "run"]:
    """What ``path`` is to an audit: a store, or a run directory (a folder with pretrain records)."""
    if _is_store(path):
        return "store"
    folder = _join(path, LINEAGE_DIR)
    if _isdir(folder) and any(r.kind == "pretrain" for r in lineage.read_records(folder)):
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
    return lineage.write_record(_join(report.target, LINEAGE_DIR), record)


def audit(path: str, progress: bool = False, flow_run_id: str | None = None) -> AuditReport:
    """Re-hash a store or a run directory against its records, record the audit, report the drift.

    Memory stays within one shard (frames) or one MiB block (files) at a time.
    """
    target = normalize(path)
    kind = audit_kind(target)
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    check = audit_store if kind == "store" else audit_run
    checked, drifts, notes = check(target, progress)
    report = AuditReport(target=target, target_kind=kind, started_at=started_at,
                         seconds=round(time.perf_counter() - started, 3), checked=checked, drifts=drifts, notes=notes)
    return report.model_copy(update={"record_path": record_audit(report, flow_run_id)})


def audit_markdown(report: AuditReport) -> str:
    """The audit as markdown: a verdict, then one row per drift, then the notes."""
    checked = ", ".join(f"{n} {what}" for what, n in report.checked.items())
    verdict = f"**{len(report.drifts)} drift(s) found**" if report.drifts else "**no drift**"
    lines = [f"# Audit of `{report.target}` ({report.target_kind})", "",
             f"{verdict}; re-hashed {checked} in {report.seconds:.1f}s. Record: `{report.record_path}`", ""]
    if report.drifts:
        lines += ["| what | where | video | recorded | found | detail |", "|---|---|---|---|---|---|"]
        for d in report.drifts:
            cells = [d.what, d.uri, d.video_id or "", (d.recorded or "")[:16], (d.found or "")[:16], d.detail]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    lines += [f"- {note}" for note in report.notes]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- Prefect tasks


@task(name="trace_lineage", cache_policy=NO_CACHE)
def trace_lineage(path: str) -> dict:
    return lineage_tree(path)


@task(name="audit_artifact", cache_policy=NO_CACHE)
def audit_artifact(path: str, progress: bool = True, flow_run_id: str | None = None) -> AuditReport:
    return audit(path, progress=progress, flow_run_id=flow_run_id)


@task(name="publish_audit_report", cache_policy=NO_CACHE)
def publish_audit_report(report: AuditReport) -> str:
    markdown = audit_markdown(report)
    verdict = f"{len(report.drifts)} drift(s)" if report.drifts else "no drift"
    create_markdown_artifact(markdown=markdown, key="audit-report", description=f"audit of {report.target}: {verdict}")
    return markdown
