"""One unit of ingest: a source video or frame folder, and the store-safe id it is stored under."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from storage_schemas.layout import IMAGE_EXTENSIONS
from storage_schemas.records import SourceKind

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SourceItem:
    """One video to ingest: a container file, or an ordered list of frame files.

    URIs are absolute local paths or fsspec URLs. ``error`` is set when the source could not
    even be listed (a missing or unreadable path); such items become ``failed`` catalog rows.
    What a dataset layout says about the labels rides along: annotation files whose frame the
    folder lacks (``orphan_annotations``, file names), what a mask means (``mask_semantics``,
    ``VideoRecord.mask_semantics``) and object categories (``object_categories``, id → name).
    ``split`` is the most specific split list naming it, ``splits`` every one, ``dataset_splits``
    the lists its tree holds; ``notes``, what the layout says of it a person should know.
    """

    uri: str
    video_id: str
    kind: SourceKind
    layout: str
    frame_uris: tuple[str, ...] = ()
    mask_uris: tuple[str | None, ...] = ()
    keypoints_uri: str | None = None
    split: str | None = None
    splits: tuple[str, ...] = ()
    dataset_splits: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    orphan_annotations: tuple[str, ...] = ()
    mask_semantics: str | None = None
    object_categories: tuple[tuple[int, str], ...] = ()
    # What the plan knows of the content (None until it hashed or fingerprinted it): its sha256 and
    # bytes, and the stat fingerprint they were taken at (``tasks.io.sources.source_fingerprint``).
    sha256: str | None = None
    byte_size: int | None = None
    fingerprint: str | None = None
    # A remote video file's size and version tag as the folder's listing gave them (``_walk``), so
    # that its fingerprint costs no request of its own; None when it was not listed (local files,
    # a URL given alone, frame folders), and the fingerprint then asks the filesystem.
    listed: str | None = None

    @property
    def content_uris(self) -> tuple[str, ...]:
        """Every file whose bytes make up this source, in a fixed order (what the hash covers)."""
        if self.kind is SourceKind.video:
            return (self.uri,)
        files = list(self.frame_uris) + [u for u in self.mask_uris if u]
        if self.keypoints_uri:
            files.append(self.keypoints_uri)
        return tuple(files)


def video_id_for(name: str, uri: str) -> str:
    """A store-safe, unique id: the readable name, ASCII-folded and sanitised, plus a URI hash.

    The result matches ``[A-Za-z0-9._-]+``, never starts with a dot and has no path separator,
    so it cannot address anything outside ``videos/``. The hash suffix keeps two sources with the
    same name apart (``a/clip.mp4`` and ``b/clip.mp4``).
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    readable = _UNSAFE.sub("_", folded.replace("/", "__")).strip("._-")[:80] or "video"
    digest = hashlib.sha1(uri.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"


def is_image(name: str) -> bool:
    """True for a frame file name (``IMAGE_EXTENSIONS``, any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)
