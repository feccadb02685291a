"""Write lineage records (storage_schemas.lineage) as append-only JSON files over fsspec, each
mirrored as an OpenLineage run event (``tasks.io.openlineage``): the stages write one record and
get both formats."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import subprocess
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from openlineage.client.uuid import generate_new_uuid
from pydantic import ValidationError

from storage_schemas.lineage import Dataset, LineageRecord
from storage_schemas.openlineage import EVENTS_DIR
from tasks.io.files import file_sha256, write_atomic
from tasks.io.names import inside
from tasks.io.openlineage import emit_record
from tasks.io.secrets import redact_json
from tasks.io.uris import filesystem, local_path


@functools.cache
def code_version() -> str:
    """The installed vmac distribution's version ("unknown" when run from an uninstalled tree); read once
    per process (package metadata costs about 6 ms a read, once per video before)."""
    try:
        return version("vmac")
    except PackageNotFoundError:
        return "unknown"


@functools.cache
def git_sha() -> str | None:
    """The checkout's commit, when the package runs from a git checkout (asked once per process)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def make_record(kind: str, status: str, run_id: str, inputs: list[Dataset], outputs: list[Dataset],
                parameters: dict, flow_run_id: str | None = None, error: str | None = None) -> LineageRecord:
    # Every URL a record carries (sources, configs, reasons, facets) is redacted here, the one way
    # into lineage records and the OpenLineage events made from them (tasks.io.secrets).
    record = LineageRecord.model_validate(redact_json(dict(
        kind=kind,
        status=status,
        run_id=run_id,
        flow_run_id=flow_run_id,
        time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        host=socket.gethostname(),
        code_version=code_version(),
        git_sha=git_sha(),
        inputs=[d.model_dump(mode="json") for d in inputs],
        outputs=[d.model_dump(mode="json") for d in outputs],
        parameters=parameters,
        error=error,
    )))
    canonical = json.dumps(record.model_dump(mode="json", exclude={"id"}), sort_keys=True)
    return record.model_copy(update={"id": hashlib.sha256(canonical.encode("utf-8")).hexdigest()})


def write_record(folder: str, record: LineageRecord) -> str:
    """Write ``record`` as a new file in ``folder`` (never overwriting one), then its OpenLineage
    event into ``folder``/openlineage/ (and to a configured backend); return the record's path."""
    local = local_path(folder)
    if local is not None:  # the lineage folder and its events stay inside the folder that owns them
        inside(os.path.dirname(local), os.path.basename(local), EVENTS_DIR)
    fs, root = filesystem(folder)
    stamp = record.time.replace(":", "").replace("-", "").replace(".", "")
    name = f"{stamp}-{record.kind}-{record.status}-{record.id[:12]}.json"
    path = f"{root.rstrip('/')}/{name}"
    shown = path if "://" not in folder else f"{folder.split('://', 1)[0]}://{path}"
    try:
        write_atomic(shown, json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True), exclusive=True)
    except FileExistsError:
        raise FileExistsError(f"lineage record {shown} exists; records are append-only") from None
    emit_record(folder, record)
    return shown


class DamagedRecordError(ValueError):
    """A file in a lineage folder that is not a lineage record (not JSON, or not the schema): the
    message names it, so a person can look at it or move it aside."""


def read_records(folder: str) -> list[LineageRecord]:
    """Every record in ``folder``, oldest first. Raises DamagedRecordError naming the first file
    that is not a readable record."""
    fs, root = filesystem(folder)
    if not fs.exists(root):
        return []
    # Inside a store the lineage folder is also a Zarr group: its zarr.json is not a record.
    paths = sorted(p for p in fs.ls(root, detail=False) if p.endswith(".json") and not p.endswith("zarr.json"))
    records = []
    for path in paths:
        try:
            records.append(LineageRecord.model_validate_json(fs.cat_file(path)))
        except ValidationError as exc:
            shown = path if local_path(folder) is not None else f"{folder.split('://', 1)[0]}://{path}"
            problem = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise DamagedRecordError(f"lineage record {shown} is damaged ({where + ': ' if where else ''}"
                                     f"{problem['msg']}); records are never rewritten, so it was changed by "
                                     "hand or cut short: restore it, or move it out of the folder") from None
    return records


def names_output(folder: str, path: str | Path) -> bool:
    """True when a record in ``folder`` names the local file ``path``, with its current bytes, as an
    output: vmac wrote it, and may replace or remove it (it never removes a file it did not write)."""
    path = Path(path)
    if not path.is_file():
        return False
    where = str(path.resolve())
    recorded = {d.sha256 for r in read_records(folder) for d in r.outputs if d.uri == where and d.sha256}
    return bool(recorded) and file_sha256(where) in recorded


def run_id() -> str:
    """A new run id: a UUID (version 7, so ids sort by start time), as OpenLineage's runId wants."""
    return str(generate_new_uuid())
