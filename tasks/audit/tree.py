"""Lineage trees: any artifact traced back to the source files and their hashes.

``lineage_tree(path)`` starts from a store, a video group, a validation result, a run directory,
a checkpoint or encoder, an evaluation folder or a benchmark JSON. It finds the lineage folder
that covers the path (walking up its parents) and follows each record's inputs to the records
that produced them::

    benchmark → evaluate record → encoder → pretrain record → store → video → ingest record → source
"""

from __future__ import annotations

import json
import os

from storage_schemas.layout import LINEAGE_DIR, VIDEOS_GROUP
from storage_schemas.lineage import PROGRESS_STATUSES, Dataset, LineageRecord
from storage_schemas.records import VideoRecord
from storage_schemas.validation import VALIDATION_DIR
from tasks.audit.records import (
    IngestIndex,
    index_ingest_outputs,
    ingest_output,
    locate,
    read_lineage,
)
from tasks.io.files import file_sha256
from tasks.io.store import Snapshot, fingerprint_of, is_store, open_snapshot
from tasks.io.uris import ancestors, exists, is_url, isdir, join, normalize, open_uri


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


def _store_root(path: str) -> str | None:
    """The store that holds ``path`` (or is it), or None."""
    return next((a for a in ancestors(path) if is_store(a)), None)


class LineageIndex:
    """Records and catalogs read once per folder while one tree is built."""

    def __init__(self) -> None:
        self._records: dict[str, list[LineageRecord]] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._ingests: dict[str, IngestIndex] = {}

    def records(self, owner: str) -> list[LineageRecord]:
        """Every record in ``owner``/lineage, oldest first ([] when there is none)."""
        if owner not in self._records:
            self._records[owner] = read_lineage(owner)
        return self._records[owner]

    def snapshot(self, store: str) -> Snapshot:
        """The store's tip, read once per tree."""
        if store not in self._snapshots:
            self._snapshots[store] = open_snapshot(store)
        return self._snapshots[store]

    def catalog(self, store: str) -> dict[str, VideoRecord | None]:
        return self.snapshot(store).records()

    def ingest_outputs(self, store: str) -> IngestIndex:
        if store not in self._ingests:
            self._ingests[store] = index_ingest_outputs(self.records(store), store)
        return self._ingests[store]

    def summary(self, owner: str, record: LineageRecord) -> dict:
        """The record as a tree shows it. ``finished`` is False for a progress record (``started``,
        ``checkpoint``) that no final record of the same run follows: the run was interrupted (or
        is still running)."""
        finished = record.status not in PROGRESS_STATUSES or any(
            r.run_id == record.run_id and r.kind == record.kind and r.status not in PROGRESS_STATUSES
            for r in self.records(owner))
        return {"id": record.id, "kind": record.kind, "status": record.status, "finished": finished,
                "time": record.time, "code_version": record.code_version, "git_sha": record.git_sha,
                "run_id": record.run_id, "flow_run_id": record.flow_run_id, "host": record.host,
                "error": record.error, "path": join(owner, LINEAGE_DIR)}

    def producer(self, path: str, owner: str, sha256: str | None = None) -> tuple[LineageRecord, Dataset] | None:
        """The record in ``owner``/lineage that wrote ``path``: the latest naming it among its outputs
        with ``sha256`` when given, else the latest naming it, else (a file) one naming its hash."""
        named = [(r, d) for r in self.records(owner) for d in r.outputs if locate(d.uri, r, owner) == path]
        same = [(r, d) for r, d in named if sha256 and d.sha256 == sha256]
        if same or named:
            return (same or named)[-1]
        if sha256 is None and exists(path) and not isdir(path):
            sha256 = file_sha256(path)
        by_hash = [(r, d) for r in self.records(owner) for d in r.outputs if sha256 and d.sha256 == sha256]
        return by_hash[-1] if by_hash else None

    # -- nodes ----------------------------------------------------------------------------------

    def artifact(self, path: str, kind: str | None = None, sha256: str | None = None) -> dict:
        """The node of any artifact: inside a store, a folder with lineage, or a file such a folder wrote."""
        store = _store_root(path)
        if store is not None:
            return self.store_part(store, path)
        for owner in ancestors(path):
            if not self.records(owner):
                continue
            if owner == path:
                return self.folder(owner)
            found = self.producer(path, owner, sha256)
            if found is not None:
                return self.output(owner, *found, consumed_sha256=sha256)
            return _node(path, kind or _guess_kind(path), sha256, children=[self.folder(owner)],
                         note=f"not among the outputs of any record in {join(owner, LINEAGE_DIR)}")
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
        if not is_store(store):
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
        stamp = self.snapshot(store).data.validation
        if not stamp:
            return None
        fingerprint = stamp.get("catalog_fingerprint")
        return {"validation_id": stamp.get("validation_id"), "passed": stamp.get("passed"),
                "validated_at": stamp.get("validated_at"), "catalog_fingerprint": fingerprint,
                "snapshot": stamp.get("snapshot"), "report_path": stamp.get("report_path"),
                "matches_recorded_catalog": None if recorded_fingerprint is None else recorded_fingerprint == fingerprint,
                "matches_current_catalog": fingerprint_of(self.snapshot(store)) == fingerprint}

    def validation_result(self, store: str, name: str) -> dict:
        """``<store>/validation/<id>.json|md``: that validation's stamp, over the store it checked."""
        uri = join(store, VALIDATION_DIR, os.path.splitext(name)[0] + ".json")
        stamp = {}
        if exists(uri):
            with open_uri(uri, "r") as handle:
                stamp = json.load(handle).get("stamp", {})
        return _node(join(store, VALIDATION_DIR, name), "validation", None, children=[self.store(store)],
                     validation={k: stamp.get(k) for k in ("validation_id", "passed", "validated_at",
                                                           "catalog_fingerprint", "report_path")})

    def video(self, store: str, video_id: str, consumed: dict | None = None) -> dict:
        """A video group: the ingest record that wrote the version consumed (or the current one), and
        its source with the hash recorded then. Without an ingest record the catalog speaks for it."""
        uri = join(store, VIDEOS_GROUP, video_id)
        row = self.catalog(store).get(video_id) if is_store(store) else None
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


def lineage_tree(path: str) -> dict:
    """The chain from the artifact at ``path`` back to the source files and their hashes.

    Each node: ``uri``, ``kind``, ``sha256`` (as recorded), ``record`` (id, kind, status,
    finished, time, code_version, ... of the record that produced it, or None) and ``children``
    (what it was made from). Stores also carry ``validation`` and ``records``; run and evaluation
    folders carry ``records``, so failed and interrupted attempts show. Raises FileNotFoundError
    when nothing exists at ``path``.
    """
    target = normalize(path)
    if not exists(target):
        raise FileNotFoundError(f"nothing at {path}")
    return LineageIndex().artifact(target)
