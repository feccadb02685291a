"""Frame-statistics rows a validation takes from the last one instead of reading the video again.

A complete video's row (``tasks.validate.frames.video_row``: sampled statistics, mask ids and the
re-hash of every stored frame against ``frames_sha256``) depends only on bytes no commit changes
(its version folder, ``videos/<id>/<version>``, and the record that snapshot holds for it) and on
how it is sampled and measured. Each validation writes the rows it may hand on, keyed by a hash
of exactly that, to ``<store>/validation/<validation_id>.frame-stats.json`` (append-only, beside
its report) and names the file's sha256 in its stamp. The next validation of the store reuses a
row whose key is unchanged and reads every other video; ``ValidateConfig.full`` reads them all.

Only clean rows are handed on (no read error, frames hashing to the record): a finding is
measured again at every run, so a transient read failure never sticks. Bytes changed on disk
behind vmac's back inside a reused version folder are found by ``vmac audit`` (which always
re-hashes) or ``vmac validate --full``, not by an incremental validation.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

import pandas as pd

from storage_schemas.records import Status, VideoRecord
from storage_schemas.validation import VALIDATION_DIR, SuiteDefinition, ValidateConfig, load_suites
from tasks.io.files import write_atomic
from tasks.io.names import inside
from tasks.io.stamp import stamp_of
from tasks.io.store import Snapshot
from tasks.io.uris import filesystem, join, local_path, normalize
from tasks.validate.frames import FRAME_STATS_COLUMNS
from tasks.validate.reading import read_rows

# Bump whenever ``video_row`` computes a row differently: rows of older code are then read again.
FRAME_STATS_VERSION = 1
FRAME_STATS_SUFFIX = ".frame-stats.json"
VALIDATION_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")  # as record.make_stamp names a run; nothing else is read


def result_uri(store: str, name: str) -> str:
    """``<store>/validation/<name>``: an absolute path for a local store, else a URL. OutsideError
    when a local path would leave the store (``validation`` a link to elsewhere)."""
    path = local_path(store)
    return str(inside(path, VALIDATION_DIR, name)) if path is not None else join(normalize(store), VALIDATION_DIR, name)


def write_new(uri: str, text: str) -> None:
    """Write a new result file atomically; never replaces one (append-only): FileExistsError."""
    try:
        write_atomic(uri, text, exclusive=True)
    except FileExistsError:
        raise FileExistsError(f"{uri} exists; validation results are append-only") from None


def row_key(video_id: str, version: str | None, record: dict, config: ValidateConfig,
            suites: list[SuiteDefinition]) -> str:
    """sha256 naming everything a video's frame-statistics row depends on: the video, its version
    folder and record (so frames_sha256, decode key and object ids), the sampling
    (sample_frames_per_video, sample_windows), the three thresholds that define black, constant
    and frozen frames, the row code's version and the frame-stats suites' versions. The other
    thresholds only judge the row in Great Expectations, so changing them reuses it."""
    limits = config.thresholds
    blob = {
        "row_code": FRAME_STATS_VERSION, "video_id": video_id, "version": version, "record": record,
        "sample_frames_per_video": config.sample_frames_per_video, "sample_windows": config.sample_windows,
        "black_mean_max": limits.black_mean_max, "constant_std_max": limits.constant_std_max,
        "frozen_level_max": limits.frozen_level_max,
        "suites": sorted((s.name, s.meta.version) for s in suites if s.meta.table == "frame_stats"),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def clean(row: dict) -> bool:
    """A row without findings about the store's bytes (and only finite numbers, which JSON holds):
    the only kind handed to the next run."""
    finite = all(math.isfinite(v) for v in row.values() if isinstance(v, float))
    return finite and not row.get("read_error") and row.get("frames_check") is None


def reusable_rows(snapshot: Snapshot, config: ValidateConfig) -> dict[str, dict]:
    """key → row of the last validation ``snapshot``'s stamp names; {} with ``config.full``, without
    a stamp, or when its file is missing, unreadable, or no longer hashes to the stamp's sha256."""
    stamp = stamp_of(snapshot)
    if config.full or stamp is None or not stamp.frame_stats_sha256 or not VALIDATION_ID.fullmatch(stamp.validation_id):
        return {}
    try:
        fs, path = filesystem(result_uri(snapshot.store, stamp.validation_id + FRAME_STATS_SUFFIX))
        raw = fs.cat_file(path)
    except (OSError, ValueError):
        return {}
    if hashlib.sha256(raw).hexdigest() != stamp.frame_stats_sha256:
        return {}
    try:
        return {item["key"]: item["row"] for item in json.loads(raw)["rows"]}
    except (ValueError, KeyError, TypeError):
        return {}


def frame_stats_rows(snapshot: Snapshot, catalog: dict[str, VideoRecord | None], config: ValidateConfig
                     ) -> tuple[pd.DataFrame, list[dict], int]:
    """(the frame-statistics table, one row per complete video; the clean rows with their keys, to
    hand on; how many videos were read). A video whose key the last validation handed on is not
    opened; the others are read from ``snapshot`` (``tasks.validate.reading``)."""
    reusable = reusable_rows(snapshot, config)
    suites = load_suites()
    keys = {video_id: row_key(video_id, snapshot.entries[video_id].version, snapshot.entries[video_id].record,
                              config, suites)
            for video_id, record in catalog.items() if record is not None and record.status is Status.complete}
    rows = {video_id: reusable[key] for video_id, key in keys.items() if key in reusable}
    unread = {video_id: catalog[video_id] for video_id in keys if video_id not in rows}
    rows.update(read_rows(snapshot, unread, config))
    handed_on = [{"key": key, "row": rows[video_id]} for video_id, key in keys.items() if clean(rows[video_id])]
    table = pd.DataFrame([rows[video_id] for video_id in keys], columns=FRAME_STATS_COLUMNS)
    return table, handed_on, len(unread)


def frame_stats_document(handed_on: list[dict]) -> str:
    """The ``.frame-stats.json`` text: the rows with their keys (``frame_stats_rows``)."""
    return json.dumps({"format": 1, "rows": handed_on}, separators=(",", ":"), allow_nan=False, sort_keys=True)
