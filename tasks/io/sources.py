"""Find what to ingest: expand files, folders, globs and fsspec URLs into one item per video.

A folder is searched recursively. Dataset layouts (DAVIS, VIP, JHMDB) and folders of two or more
image files become frame-folder videos. Whether any other file is a video is decided by its
content (``tasks.io.probe.sniff``, a bounded read): a container extension only spares the read,
so camcorder ``.MTS``, ``.m2ts``, ``.mpg``, ``.3gp``, ``.flv``, ``.wmv`` or a clip with no
extension at all are found like ``.mp4``. A file named explicitly is always tried, whatever it
holds, so that bad input gets a catalog row.

What a walk passes over is listed with the reason (``SourceScan.skipped``): hidden entries, files
whose content is not a video (text, a still image, audio only, a playlist), anything that is not
a regular file (a FIFO or a device would block), symbolic links to folders (not followed inside
a walk, so a link cannot loop or reach outside the folder given; name the folder to ingest it)
and broken links. ``Skipped.counts`` marks what a person may have meant as video: ingest counts
those toward its exit status.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import dataclass

import fsspec

from storage_schemas.layout import VIDEO_EXTENSIONS
from storage_schemas.records import SourceKind
from tasks.io import layouts
from tasks.io.files import hash_file, not_regular_reason
from tasks.io.items import SourceItem, is_image, video_id_for
from tasks.io.probe import sniff
from tasks.io.uris import filesystem, is_url, local_path

_GLOB_CHARS = re.compile(r"[*?\[]")
# At most this many names per reason in a one-line description of skipped entries.
SHOWN_SKIPPED = 5


class NothingToIngestError(ValueError):
    """The sources hold no video file and no frame folder."""


@dataclass(frozen=True)
class Skipped:
    """An entry a folder walk passed over, and why (a few words). ``counts``: it may have been
    meant as a video (media vmac cannot take, an entry it cannot read or follow), so the run does
    not report success; hidden entries, still images and files that are not media do not count."""

    uri: str
    reason: str
    counts: bool = True


@dataclass(frozen=True)
class SourceScan:
    items: list[SourceItem]
    skipped: list[Skipped]


def scan_sources(sources: list[str]) -> SourceScan:
    """Expand the user's sources into items, de-duplicated by URI, in a stable order, and list
    the entries the walk skipped."""
    items: dict[str, SourceItem] = {}
    skipped: list[Skipped] = []
    for source in sources:
        for item in _expand_one(source, skipped):
            items.setdefault(item.uri, item)
    return SourceScan(sorted(items.values(), key=lambda item: item.uri), skipped)


def expand_sources(sources: list[str]) -> list[SourceItem]:
    """The items of ``scan_sources``."""
    return scan_sources(sources).items


def describe_skipped(skipped: list[Skipped]) -> str:
    """One line: each reason with how many entries and the first few names."""
    by_reason: dict[str, list[str]] = {}
    for entry in skipped:
        by_reason.setdefault(entry.reason, []).append(entry.uri)
    parts = []
    for reason, uris in by_reason.items():
        shown = ", ".join(uris[:SHOWN_SKIPPED]) + (f" and {len(uris) - SHOWN_SKIPPED} more" if len(uris) > SHOWN_SKIPPED else "")
        parts.append(f"{len(uris)} {reason} ({shown})")
    return "; ".join(parts)


def _expand_one(source: str, skipped: list[Skipped]) -> list[SourceItem]:
    if is_url(source):
        fs, root = filesystem(source)
        protocol = source.split("://", 1)[0]

        def to_uri(path: str) -> str:
            return f"{protocol}://{path.lstrip('/')}" if protocol != "memory" else f"memory://{path}"

        matches = fs.glob(root) if _GLOB_CHARS.search(root) else [root]
        out: list[SourceItem] = []
        for path in matches:
            if fs.isdir(path):
                out.extend(_walk(fs, path, path, to_uri, skipped))
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
            out.extend(_walk(fs, match, match, lambda p: p, skipped))
        elif os.path.exists(match):
            out.append(_video_item(match, os.path.basename(match), not_regular_reason(match)))
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


def _video_item(uri: str, name: str, not_regular: str | None = None) -> SourceItem:
    stem = os.path.splitext(name)[0]
    error = f"not a regular file ({not_regular}): vmac reads only regular files" if not_regular else None
    return SourceItem(uri=uri, video_id=video_id_for(stem, uri), kind=SourceKind.video, layout="file", error=error)


def _walk(fs, root: str, top: str, to_uri, skipped: list[Skipped]) -> list[SourceItem]:
    """Walk ``root``: a dataset layout is its sequences; otherwise two or more image files are a
    frame folder, files whose content is a video are videos, folders are walked; what is passed
    over goes to ``skipped``."""
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
    try:
        entries = sorted(fs.ls(root, detail=True), key=lambda e: e["name"])
    except (OSError, PermissionError) as exc:
        return [_unreadable_dir(root, to_uri, exc)]
    images = [e["name"] for e in entries if e["type"] == "file" and _is_frame_file(e["name"])]
    out: list[SourceItem] = []
    if len(images) > 1:
        out.append(layouts.frame_folder(fs, root, top, to_uri, images))
    elif images:
        skipped.append(Skipped(to_uri(images[0]), "a single image, not a video (a frame folder holds two or more)",
                               counts=False))
    for entry in entries:
        path = entry["name"]
        if path in images:
            continue
        base = os.path.basename(path.rstrip("/"))
        left_out = _left_out(fs, entry, base)
        if left_out is not None:
            skipped.append(Skipped(to_uri(path), *left_out))
        elif entry["type"] == "directory":
            out.extend(_walk(fs, path, top, to_uri, skipped))
        else:
            out.append(_video_item(to_uri(path), os.path.relpath(path, top)))
    return out


def _is_frame_file(path: str) -> bool:
    name = os.path.basename(path)
    return is_image(name) and not name.startswith(".")


def _left_out(fs, entry: dict, base: str) -> tuple[str, bool] | None:
    """(why, counts) when a walk passes over ``entry`` (an ``fs.ls`` detail); None for a folder to
    walk or a video to take. A file without a video container's extension is taken only if its
    content is a video."""
    path = entry["name"]
    if base.startswith("."):
        return "hidden", False
    if entry.get("islink"):
        if not fs.exists(path):
            return "broken symbolic link", True
        if fs.isdir(path):
            return "symbolic link to a folder, not followed (give the folder itself as a source)", True
    if entry["type"] == "directory":
        return None
    if entry["type"] != "file":
        return f"not a regular file ({not_regular_reason(path) or entry['type']}): vmac reads only regular files", True
    if base.lower().endswith(VIDEO_EXTENSIONS):
        return None
    try:
        found = sniff(fs.open(path, "rb"))
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc.__class__.__name__}", True
    return None if found.video else (found.reason or "not a video", found.counts)


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
    frame, mask or keypoint file changes it, and what its layout says about the labels (mask
    semantics, categories: from a YouTube-VOS meta.json, which is not hashed whole).
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
    if item.mask_semantics or item.object_categories:
        total.update(repr((item.mask_semantics, item.object_categories)).encode("utf-8"))
    return total.hexdigest(), size
