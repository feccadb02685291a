"""Locations: local paths and fsspec URLs, told apart, normalised, joined and walked one way.

A *URI* here is either a local path (absolute, relative, ``~``-prefixed or ``file://``) or an
fsspec URL with a protocol other than ``file`` (``memory://``, ``s3://``, ``gcs://``, ...).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator

import fsspec

from tasks.io.secrets import reader_uri


def is_url(uri: str) -> bool:
    """True for an fsspec URL other than ``file://`` (those are local paths)."""
    return "://" in uri and not uri.startswith("file://")


def local_path(uri: str) -> str | None:
    """The absolute filesystem path of a local URI, or None for a remote or in-memory URL."""
    if is_url(uri):
        return None
    return os.path.abspath(os.path.expanduser(uri.removeprefix("file://")))


def normalize(uri: str) -> str:
    """A comparable location: an absolute local path, or a URL without a trailing slash."""
    path = local_path(uri)
    return path if path is not None else uri.rstrip("/")


def join(uri: str, *parts: str) -> str:
    """``parts`` below ``uri``, with ``/`` for URLs and the OS separator for local paths."""
    return posixpath.join(uri, *parts) if is_url(uri) else os.path.join(uri, *parts)


def parent(uri: str) -> str:
    """The folder holding ``uri`` (the root is its own parent)."""
    if is_url(uri):
        protocol, rest = uri.split("://", 1)
        return f"{protocol}://{posixpath.dirname(rest.rstrip('/'))}"
    return os.path.dirname(uri)


def ancestors(uri: str) -> Iterator[str]:
    """``uri`` itself, then each parent folder up to the root."""
    while True:
        yield uri
        up = parent(uri)
        if up == uri:
            return
        uri = up


def storage_options(uri: str) -> dict:
    """fsspec options for ``uri``: remote filesystems keep no directory listings between calls.

    Other processes write a remote store while this one reads it (Dask workers during ingest,
    concurrent runs); s3fs and gcsfs would otherwise answer from a listing cached before they
    wrote, and a catalog read after a decode would miss the videos just decoded.
    """
    return {"use_listings_cache": False} if is_url(uri) else {}


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path within it) of a local path or fsspec URL, with ``storage_options``; a
    redacted URL is opened as it was given when this process was (``tasks.io.secrets.reader_uri``),
    else without its masked parts (the user's own fsspec configuration supplies credentials), so
    the path may hold credentials: name it to a person only through ``secrets.redact``."""
    return fsspec.core.url_to_fs(reader_uri(uri), **storage_options(uri))


def open_uri(uri: str, mode: str = "rb"):
    """``fsspec.open`` of a local path or fsspec URL, with ``storage_options`` (revealed as ``filesystem`` is)."""
    return fsspec.open(reader_uri(uri), mode, **storage_options(uri))


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


def isdir(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.isdir(path)
