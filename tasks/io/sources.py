"""Find what to ingest: expand files, folders, globs and fsspec URLs into one item per video.

A folder is searched recursively. Dataset layouts (DAVIS, VIP, JHMDB) and plain folders of
image files become frame-folder videos; files with a container extension become videos. A file
named explicitly is always tried, whatever its extension, so that bad input gets a catalog row.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re

import fsspec

from storage_schemas.layout import VIDEO_EXTENSIONS
from storage_schemas.records import SourceKind
from tasks.io import layouts
from tasks.io.files import hash_file
from tasks.io.items import SourceItem, video_id_for
from tasks.io.uris import filesystem, is_url, local_path

_GLOB_CHARS = re.compile(r"[*?\[]")


def expand_sources(sources: list[str]) -> list[SourceItem]:
    """Expand the user's sources into items, de-duplicated by URI, in a stable order."""
    items: dict[str, SourceItem] = {}
    for source in sources:
        for item in _expand_one(source):
            items.setdefault(item.uri, item)
    return sorted(items.values(), key=lambda item: item.uri)


def _expand_one(source: str) -> list[SourceItem]:
    if is_url(source):
        fs, root = filesystem(source)
        protocol = source.split("://", 1)[0]

        def to_uri(path: str) -> str:
            return f"{protocol}://{path.lstrip('/')}" if protocol != "memory" else f"memory://{path}"

        matches = fs.glob(root) if _GLOB_CHARS.search(root) else [root]
        out: list[SourceItem] = []
        for path in matches:
            if fs.isdir(path):
                out.extend(_walk(fs, path, path, to_uri))
            elif fs.exists(path):
                uri = to_uri(path)
                out.append(_video_item(uri, os.path.basename(path)))
            else:
                out.append(_missing(source))
        return out

    fs = fsspec.filesystem("file")
    path = local_path(source)
    matches = sorted(glob.glob(path, recursive=True)) if _GLOB_CHARS.search(path) else [path]
    if not matches:
        return [_missing(path)]
    out = []
    for match in matches:
        if os.path.isdir(match):
            out.extend(_walk(fs, match, match, lambda p: p))
        elif os.path.exists(match):
            out.append(_video_item(match, os.path.basename(match)))
        else:
            out.append(_missing(match))
    return out


def _missing(path: str) -> SourceItem:
    reason = "no such file or folder"
    if os.path.lexists(path) and not os.path.exists(path):
        reason = "broken symbolic link"
    return SourceItem(
        uri=path,
        video_id=video_id_for(os.path.basename(path.rstrip("/")) or path, path),
        kind=SourceKind.video,
        layout="file",
        error=f"unreadable path: {reason}",
    )


def _video_item(uri: str, name: str) -> SourceItem:
    stem = os.path.splitext(name)[0]
    return SourceItem(uri=uri, video_id=video_id_for(stem, uri), kind=SourceKind.video, layout="file")


def _walk(fs, root: str, top: str, to_uri) -> list[SourceItem]:
    """Walk ``root``: dataset layouts and image folders are videos, video files are videos."""
    try:
        found = layouts.detect(fs, root, top, to_uri)
    except OSError as exc:
        return [
            SourceItem(
                uri=to_uri(root),
                video_id=video_id_for(os.path.basename(root), to_uri(root)),
                kind=SourceKind.frames,
                layout="folder",
                error=f"unreadable folder: {exc}",
            )
        ]
    if found is not None:
        return found
    out: list[SourceItem] = []
    try:
        entries = sorted(fs.ls(root, detail=True), key=lambda e: e["name"])
    except (OSError, PermissionError) as exc:
        return [_unreadable_dir(root, to_uri, exc)]
    for entry in entries:
        path = entry["name"]
        base = os.path.basename(path.rstrip("/"))
        if base.startswith("."):
            continue
        if entry["type"] == "directory":
            out.extend(_walk(fs, path, top, to_uri))
        elif base.lower().endswith(VIDEO_EXTENSIONS):
            rel = os.path.relpath(path, top)
            out.append(_video_item(to_uri(path), rel))
    return out


def _unreadable_dir(root: str, to_uri, exc: Exception) -> SourceItem:
    return SourceItem(
        uri=to_uri(root),
        video_id=video_id_for(os.path.basename(root), to_uri(root)),
        kind=SourceKind.frames,
        layout="folder",
        error=f"unreadable folder: {exc.__class__.__name__}",
    )


def hash_source(item: SourceItem) -> tuple[str, int]:
    """(sha256 hex, total bytes) of the source's content, streamed.

    A frame folder's hash covers every file's relative name and bytes, so renaming or editing any
    frame, mask or keypoint file changes it.
    """
    total = hashlib.sha256()
    size = 0
    uris = item.content_uris
    base = os.path.dirname(os.path.commonpath(uris)) if item.kind is SourceKind.frames and len(uris) > 1 else ""
    for uri in uris:
        digest, nbytes = hash_file(uri)
        size += nbytes
        if item.kind is SourceKind.video:
            return digest, nbytes
        rel = os.path.relpath(uri, base) if base else os.path.basename(uri)
        total.update(rel.encode("utf-8") + b"\0" + bytes.fromhex(digest))
    return total.hexdigest(), size
