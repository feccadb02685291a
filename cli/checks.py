"""Checks on the paths a command names, made before any work starts.

A missing store, a store path that is a regular file, or a folder the command cannot write is a
usage error: ``ConfigError`` with one line naming the option, the path and what is wrong, so
``vmac`` exits 2 at once instead of failing minutes later inside a flow. Local paths only: a
remote URL is checked by the flow that opens it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

from cli.args import ConfigError
from storage_schemas.layout import LEGACY_STORE_FORMAT, STORE_FORMAT, STORE_INFO_ATTR, VIDEOS_GROUP
from storage_schemas.records import DecodeParams
from tasks.io.secrets import redact
from tasks.io.snapshots import LegacyStoreError, split_ref
from tasks.io.store import FrameCodecMismatchError, resolve_frame_codec
from tasks.io.uris import local_path


def _nearest_existing(path: str) -> str:
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def writable_folder(option: str, uri: str) -> None:
    """``uri`` is a folder this process can create or write into, and lasts beyond the command (not
    ``memory://``, which lives in this process only); ConfigError otherwise."""
    path = local_path(uri)
    if path is None:
        if in_memory(uri):
            raise ConfigError([f"{option} {uri}: an in-memory filesystem lives only inside this command, and "
                               "everything written to it would be gone when it ends; give a folder or a lasting URL"])
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError([f"{option} {uri}: a file is there, not a folder"])
    here = _nearest_existing(path)
    if not os.path.isdir(here):
        raise ConfigError([f"{option} {uri}: {here} is a file, so no folder can be made below it"])
    try:
        handle, probe = tempfile.mkstemp(prefix=".vmac-write-check-", dir=here)
    except OSError as exc:
        raise ConfigError([f"{option} {uri}: cannot write in {here} ({exc.strerror})"]) from None
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def local_output(option: str, uri: str) -> None:
    """ConfigError when an output ``uri`` is a URL: vmac writes outputs to local folders the user names."""
    if local_path(uri) is None:
        raise ConfigError([f"{option} {redact(uri)}: vmac writes its outputs to a local folder you name, not to a URL"])


def in_memory(uri: str) -> bool:
    """``memory://`` (fsspec's in-process filesystem), told without importing fsspec."""
    return uri.split("://", 1)[0].lower() == "memory"


def tip_only(option: str, uri: str) -> None:
    """``uri`` names a store, not one of its snapshots: commands that write write the store's tip."""
    base, ref = split_ref(uri)
    if ref is not None:
        raise ConfigError([f"{option} {uri}: this command writes the store's latest snapshot; name the store "
                           f"without @{ref}"])


def existing_store(option: str, uri: str, snapshot: bool = True) -> None:
    """``uri`` is a vmac store (a Zarr group with a ``videos`` group) that this vmac reads: store
    format 2 (snapshots); ConfigError otherwise, naming ``vmac migrate`` for a store of format 1.
    ``snapshot``: ``STORE@SNAPSHOT`` or ``STORE@TAG`` may name one of its snapshots (readers);
    without it, a ref is refused (writers write the tip).

    The local form of ``tasks.io.store.is_store``, here so that a usage error answers without
    importing Zarr (seconds on a loaded machine)."""
    if not snapshot:
        tip_only(option, uri)
    base, _ = split_ref(uri)
    path = local_path(base)
    if path is None:
        return
    if not os.path.lexists(path):
        raise ConfigError([f"{option} {uri}: no such file or folder"])
    if not os.path.isdir(path):
        raise ConfigError([f"{option} {uri}: a file, not a vmac store (a store is a folder made by vmac ingest)"])
    if not (os.path.isfile(os.path.join(path, "zarr.json")) and os.path.isdir(os.path.join(path, VIDEOS_GROUP))):
        raise ConfigError([f"{option} {uri}: not a vmac store (no zarr.json with a videos group); "
                           f"make one with `vmac ingest SOURCE --store {base}`"])
    if _store_format(path) < STORE_FORMAT:
        raise ConfigError([f"{option} {uri}: {LegacyStoreError(base)}"])


def _store_format(path: str) -> int:
    """The store format a local store's root records (1 when it records none)."""
    try:
        with open(os.path.join(path, "zarr.json")) as handle:
            info = json.load(handle).get("attributes", {}).get(STORE_INFO_ATTR) or {}
    except (OSError, ValueError):
        return LEGACY_STORE_FORMAT
    return int(info.get("store_format") or LEGACY_STORE_FORMAT)


def existing_path(option: str, uri: str) -> None:
    """``uri`` exists (a local file or folder); ConfigError otherwise."""
    path = local_path(uri)
    if path is not None and not os.path.exists(path):
        reason = "broken symbolic link" if os.path.lexists(path) else "no such file or folder"
        raise ConfigError([f"{option} {uri}: {reason}"])




# What torch.save writes: a zip archive (torch >= 1.6) or, in the legacy format, a pickle.
_TORCH_FILE_MAGIC = (b"PK\x03\x04", b"\x80")


def torch_file(option: str, uri: str) -> None:
    """``uri`` (a local file) starts as a file ``torch.save`` wrote; ConfigError otherwise, so that a
    wrong file is named before a folder given beside it is decoded."""
    path = local_path(uri)
    if path is None or not os.path.isfile(path):
        return
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not head.startswith(_TORCH_FILE_MAGIC):
        raise ConfigError([f"{option} {uri}: not a torch checkpoint (an encoder.pt or ckpt-*.pt that "
                           "vmac pretrain or vmac import-weights wrote)"])


def same_frame_codec(option: str, uri: str, codec: str | None) -> None:
    """An existing store keeps its frames with ``codec`` (when one is asked for); ConfigError naming
    both otherwise. The check is ingest's own (``tasks.io.store.resolve_frame_codec``, which the
    plan applies), made here so that a mismatch exits 2 before any work."""
    if codec is None:
        return
    try:
        resolve_frame_codec(uri, DecodeParams(frame_codec=codec))
    except FrameCodecMismatchError as exc:
        raise ConfigError([f"{option} {uri}: {str(exc).removeprefix(f'store {uri} ')}"]) from None
