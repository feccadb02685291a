"""Lineage records as the audit reads them: where the URIs they name lie now, and which ingest
record wrote which video.

URIs a record names below the folder its job wrote (``parameters.out`` or ``parameters.store``)
are resolved relative to where that folder is now, so a run directory or store that was moved
or given as a relative path still traces and audits.
"""

from __future__ import annotations

from storage_schemas.layout import LINEAGE_DIR, VIDEOS_GROUP
from storage_schemas.lineage import Dataset, LineageRecord
from tasks.io import lineage
from tasks.io.uris import isdir, join, normalize

IngestIndex = dict[str, list[tuple[LineageRecord, Dataset]]]  # video_id → (ingest record, output), oldest first


def read_lineage(owner: str) -> list[LineageRecord]:
    """Every record in ``owner``/lineage, oldest first ([] when there is no such folder)."""
    folder = join(owner, LINEAGE_DIR)
    return lineage.read_records(folder) if isdir(folder) else []


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
            return join(owner, target[len(base) + 1:])
    return target


def index_ingest_outputs(records: list[LineageRecord], store: str) -> IngestIndex:
    """video_id → every (ingest record, output) that wrote it, oldest first: one pass over the
    records, so a store of many videos and many ingest runs is not rescanned per video."""
    prefix = join(store, VIDEOS_GROUP, "")
    index: IngestIndex = {}
    for record in records:
        if record.kind != "ingest":
            continue
        for dataset in record.outputs:
            where = locate(dataset.uri, record, store)
            if dataset.kind == "video" and where.startswith(prefix):
                index.setdefault(where[len(prefix):], []).append((record, dataset))
    return index


def ingest_output(index: IngestIndex, video_id: str,
                  frames_sha256: str | None = None) -> tuple[LineageRecord, Dataset] | None:
    """The latest ingest record (and its output) that wrote ``video_id`` with ``frames_sha256``,
    else the latest that wrote it at all (``index`` from ``index_ingest_outputs``)."""
    named = index.get(video_id, [])
    same = [(r, d) for r, d in named if frames_sha256 and d.sha256 == frames_sha256]
    return (same or named)[-1] if (same or named) else None
