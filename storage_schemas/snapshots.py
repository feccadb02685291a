"""Snapshots of a store: what one committed state holds, and the files that make the history.

A store's catalog is never edited in place. Each commit writes a new, immutable *snapshot* (every
video's version folder and record, and the latest validation stamp), then makes it the tip of the
store's one branch by creating the branch's next *commit* file; no two writers can create the same
one (``tasks.io.snapshots``). Readers resolve a snapshot once and read only it, however long they
run: the version folders it names are never written again.

```
<store>/snapshots/<snapshot_id>.json   SnapshotData: the catalog of one state (immutable)
<store>/refs/main/<seq:012d>.json      CommitInfo: commit number seq made this snapshot the tip
<store>/refs/main.json                 the latest seq seen (a hint: readers walk on from it)
<store>/refs/tags/<name>.json          TagInfo: a name kept on one snapshot (``vmac gc`` keeps it)
```
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

SNAPSHOTS_DIR = "snapshots"
REFS_DIR = "refs"
BRANCH = "main"  # the one branch every commit goes to
TAGS_DIR = "tags"
# A snapshot id: 16 hex digits (the first 8 are the commit's Unix time, so ids sort by time).
SNAPSHOT_ID = re.compile(r"[0-9a-f]{16}")
# A version folder: the UTC time it was started, then 8 hex digits (videos/<video_id>/<version>).
VERSION_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")
TAG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SNAPSHOT_FORMAT = 1


class CatalogEntry(BaseModel):
    """One video in one snapshot: the folder under ``videos/<video_id>/`` that holds its arrays
    (None for a video that failed: nothing is stored) and its record (a ``VideoRecord`` as JSON,
    parsed by readers one at a time, so a record an older vmac wrote does not hide the others)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str | None
    record: dict


class SnapshotData(BaseModel):
    """``snapshots/<id>.json``: the whole catalog of one state of the store."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = SNAPSHOT_FORMAT
    id: str
    parent: str | None = Field(description="the snapshot this one was made from; None for a store's first")
    created_at: str = Field(description="UTC, ISO 8601")
    videos: dict[str, CatalogEntry] = Field(default_factory=dict)
    validation: dict | None = Field(None, description="the latest validation stamp (ValidationStamp as JSON), "
                                    "carried from snapshot to snapshot until the next validation replaces it")


class CommitInfo(BaseModel):
    """``refs/main/<seq>.json``: commit number ``seq`` of the branch, and what it changed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int = Field(ge=0)
    snapshot: str
    parent: str | None
    time: str = Field(description="UTC, ISO 8601")
    command: str = Field(description="create, ingest, alias, validate, migrate")
    message: str = ""
    run_id: str | None = None
    host: str = ""
    code_version: str = ""
    added: list[str] = Field(default_factory=list, description="video ids new in this snapshot")
    changed: list[str] = Field(default_factory=list, description="video ids whose version or record changed")
    removed: list[str] = Field(default_factory=list, description="video ids no longer in the catalog")


class TagInfo(BaseModel):
    """``refs/tags/<name>.json``: a name kept on one snapshot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    snapshot: str
    created_at: str
    message: str = ""
