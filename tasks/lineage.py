"""Write lineage records (storage_schemas.lineage) as append-only JSON files over fsspec."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import fsspec

from storage_schemas.lineage import Dataset, LineageRecord
from tasks.decode import code_version


def git_sha() -> str | None:
    """The checkout's commit, when the package runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def file_sha256(path: str, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with fsspec.open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def make_record(kind: str, status: str, run_id: str, inputs: list[Dataset], outputs: list[Dataset],
                parameters: dict, flow_run_id: str | None = None, error: str | None = None) -> LineageRecord:
    record = LineageRecord(
        kind=kind,
        status=status,
        run_id=run_id,
        flow_run_id=flow_run_id,
        time=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        host=socket.gethostname(),
        code_version=code_version(),
        git_sha=git_sha(),
        inputs=inputs,
        outputs=outputs,
        parameters=parameters,
        error=error,
    )
    canonical = json.dumps(record.model_dump(mode="json", exclude={"id"}), sort_keys=True)
    return record.model_copy(update={"id": hashlib.sha256(canonical.encode("utf-8")).hexdigest()})


def write_record(folder: str, record: LineageRecord) -> str:
    """Write ``record`` as a new file in ``folder`` (never overwriting one) and return its path."""
    fs, root = fsspec.core.url_to_fs(folder)
    fs.makedirs(root, exist_ok=True)
    stamp = record.time.replace(":", "").replace("-", "").replace(".", "")
    name = f"{stamp}-{record.kind}-{record.status}-{record.id[:12]}.json"
    path = f"{root.rstrip('/')}/{name}"
    if fs.exists(path):
        raise FileExistsError(f"lineage record {path} exists; records are append-only")
    tmp = f"{path}.tmp"
    with fs.open(tmp, "w") as handle:
        handle.write(json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True))
    fs.mv(tmp, path)
    return path if "://" not in folder else f"{folder.split('://', 1)[0]}://{path}"


def read_records(folder: str) -> list[LineageRecord]:
    """Every record in ``folder``, oldest first."""
    fs, root = fsspec.core.url_to_fs(folder)
    if not fs.exists(root):
        return []
    # Inside a store the lineage folder is also a Zarr group: its zarr.json is not a record.
    paths = sorted(p for p in fs.ls(root, detail=False) if p.endswith(".json") and not p.endswith("zarr.json"))
    return [LineageRecord.model_validate_json(fs.cat_file(p)) for p in paths]


def run_id() -> str:
    return f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}"
