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
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import fsspec
from PIL import Image

from storage_schemas.layout import VIDEO_EXTENSIONS
from storage_schemas.records import SourceKind
from tasks.io import layouts
from tasks.io.faults import reason_of
from tasks.io.files import NotRegularFileError, hash_file, not_regular_reason
from tasks.io.items import SourceItem, is_image, video_id_for
from tasks.io.probe import sniff
from tasks.io.secrets import keep_out, redact
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
        # A URL's credentials stay in memory (``tasks.io.secrets``); items name it redacted.
        for item in _expand_one(keep_out(source), skipped):
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
        try:
            return _expand_url(source, skipped)
        except Exception as exc:  # noqa: BLE001 - each remote filesystem raises its own classes (aiohttp, paramiko, ftplib)
            return [_unreadable_source(redact(source), exc)]
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


def _expand_url(source: str, skipped: list[Skipped]) -> list[SourceItem]:
    """The items of a source URL (``source`` redacted: ``uris.filesystem`` opens it as given)."""
    fs, root = filesystem(source)
    to_uri = _url_namer(source, root)
    where = urlsplit(root).path if "://" in root else root
    matches = fs.glob(root) if _GLOB_CHARS.search(where) else [root]
    out: list[SourceItem] = []
    for path in matches:
        if fs.isdir(path):
            out.extend(_walk(fs, path, path, to_uri, skipped))
        elif fs.exists(path):
            uri = to_uri(path)
            out.append(_video_item(uri, posixpath.basename(urlsplit(uri).path)))
        else:
            out.append(_missing(redact(source)))
    return out


def _url_namer(source: str, root: str) -> Callable[[str], str]:
    """How a path of ``source``'s filesystem (as it lists it) is named as a URL, redacted: HTTP
    paths are URLs already; FTP and SFTP paths leave out the host, which ``source`` names;
    object-store paths start with the bucket."""
    scheme, netloc = urlsplit(source).scheme, urlsplit(source).netloc
    host = urlsplit(source).hostname or ""
    hostless = bool(host) and "://" not in root and not root.lstrip("/").startswith(host)

    def to_uri(path: str) -> str:
        if "://" in path:
            return redact(path)
        if scheme == "memory":
            return f"memory://{path}"
        if hostless:
            return redact(f"{scheme}://{netloc}/{path.lstrip('/')}")
        return redact(f"{scheme}://{path.lstrip('/')}")

    return to_uri


def _unreadable_source(source: str, exc: Exception) -> SourceItem:
    """A source URL that could not be listed (unreachable, refused, not found): a failed row."""
    name = posixpath.basename(urlsplit(source).path.rstrip("/")) or source
    return SourceItem(uri=source, video_id=video_id_for(os.path.splitext(name)[0], source), kind=SourceKind.video,
                      layout="file", error=f"unreadable source {source}: {reason_of(exc)}")


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
    def left_out(uri: str, why: str, counts: bool) -> None:
        skipped.append(Skipped(uri, why, counts))

    try:
        found = layouts.detect(fs, root, top, to_uri, left_out)
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
    # An animated GIF is a video of its own; a still one is an image like a PNG.
    images = [p for p in images if not (p.lower().endswith(".gif") and _animated(fs, p))]
    out: list[SourceItem] = []
    if len(images) > 1:
        out.extend(layouts.frame_folders(fs, root, top, to_uri, images, left_out))
    elif images and not images[0].lower().endswith(".gif") and sniff(fs.open(images[0], "rb")).video:
        # An animated PNG (APNG) is a video (a GIF was told above: this one is still)
        out.append(_video_item(to_uri(images[0]), os.path.relpath(images[0], top)))
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
            item = _video_item(to_uri(path), os.path.relpath(path, top))
            out.append(item if _is_local(fs) else replace(item, listed=_remote_version(entry)))
    return out


def _is_local(fs) -> bool:
    """True for fsspec's local filesystem (whose entries are stat'ed, not listed with a version)."""
    return fs.protocol in ("file", ("file", "local"))


def _animated(fs, path: str) -> bool:
    """True for an image file holding more than one picture (PIL's header and frame walk); False
    for a still one, and for one PIL cannot read (its decode fails it, with the reason)."""
    try:
        with fs.open(path, "rb") as handle, Image.open(handle) as image:
            return bool(getattr(image, "is_animated", False))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False


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
    # A local entry's kind after its links (fsspec reports a link itself as "other"); a remote one's as listed.
    local = _is_local(fs)
    kind = not_regular_reason(path) if local else (None if entry["type"] == "file" else entry["type"])
    if kind is not None:
        return f"not a regular file ({kind}): vmac reads only regular files", True
    if base.lower().endswith(VIDEO_EXTENSIONS):
        return None
    try:
        found = sniff(fs.open(path, "rb"), path if local else None)
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


# What tells one version of a remote object from the next, by filesystem (s3, gcs, http).
_REMOTE_VERSION_KEYS = ("VersionId", "version_id", "ETag", "etag", "generation", "md5Hash", "LastModified", "mtime")


def _remote_version(info: dict) -> str | None:
    """"size<TAB>version" of a remote file from what its filesystem lists or answers of it (the
    version id, else the ETag, generation or modification time); None without any of them."""
    version = next((info[k] for k in _REMOTE_VERSION_KEYS if info.get(k) is not None), None)
    return None if version is None else f"{info.get('size')}\t{version}"


def source_fingerprint(item: SourceItem) -> str | None:
    """A digest of what the filesystem says of the source's files, read without their bytes: size,
    modification and status-change times (ns), inode and device locally (an edit that restores the
    modification time still moves the change time); size and version tag (or ETag, or modification
    time) on object stores, from the folder's listing when the walk made one (``SourceItem.listed``:
    one request per thousand files, not one per file). None when a file cannot be listed or a
    remote one has no version:
    then the source is hashed. A fingerprint unchanged since the store recorded it means the bytes
    are the ones hashed then (``vmac ingest --rehash`` and ``vmac audit`` read them again)."""
    lines = []
    try:
        for uri in item.content_uris:
            path = local_path(uri)
            if path is not None:
                st = os.stat(path)
                lines.append(f"{uri}\t{st.st_size}\t{st.st_mtime_ns}\t{st.st_ctime_ns}\t{st.st_ino}\t{st.st_dev}")
                continue
            if item.listed is not None and item.kind is SourceKind.video:
                version = item.listed  # from the folder's listing: no request per file
            else:
                fs, remote = filesystem(uri)
                version = _remote_version(fs.info(remote))
            if version is None:
                return None
            lines.append(f"{uri}\t{version}")
    except (OSError, ValueError):
        return None
    if item.mask_semantics or item.object_categories:
        # What the layout says of the labels is part of the hash (``hash_source``): so of this too.
        lines.append(repr((item.mask_semantics, item.object_categories)))
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest() if lines else None


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
        rel = os.path.relpath(uri, base) if base else os.path.basename(uri)
        try:
            digest, nbytes = hash_file(uri)
        except NotRegularFileError as exc:
            # A folder's reason names which of its files is not one (a FIFO among the annotations).
            raise NotRegularFileError(f"{rel}: {exc}" if item.kind is SourceKind.frames else str(exc)) from None
        size += nbytes
        if item.kind is SourceKind.video:
            return digest, nbytes
        total.update(rel.encode("utf-8") + b"\0" + bytes.fromhex(digest))
    if item.mask_semantics or item.object_categories:
        total.update(repr((item.mask_semantics, item.object_categories)).encode("utf-8"))
    return total.hexdigest(), size
