"""A store's validation stamp: read it, and require that it vouches for the snapshot to be read.

``vmac validate`` commits the stamp into the store's catalog (``tasks.validate``): it names the
snapshot it validated and that snapshot's catalog fingerprint, which covers each video's version
folder. Version folders are never rewritten, so a snapshot whose fingerprint equals the stamp's
holds exactly the frames validation read. Pre-training and the pipeline read the stamp here, so
neither needs the validation stage to decide whether a store may be trained on.
"""

from __future__ import annotations

import shlex

from pydantic import ValidationError

from storage_schemas.validation import ValidationStamp
from tasks.io import snapshots
from tasks.io.store import Snapshot, fingerprint_of, open_snapshot


class ValidationRequiredError(RuntimeError):
    """The store has no passing validation stamp that matches the snapshot to be read."""


def stamp_of(snapshot: Snapshot) -> ValidationStamp | None:
    """The latest validation stamp a snapshot carries, or None (never validated, or a stamp this
    code cannot parse, written by an older vmac)."""
    raw = snapshot.data.validation
    if raw is None:
        return None
    try:
        return ValidationStamp.model_validate(raw)
    except ValidationError:
        return None


def validation_status(store: str) -> ValidationStamp | None:
    """The stamp of ``store`` (its tip, or ``STORE@REF``), or None when it was never validated.

    Raises FileNotFoundError when there is no store at ``store``."""
    return stamp_of(open_snapshot(store))


def require_validated(store: str) -> ValidationStamp:
    """The stamp, if the snapshot ``store`` names (its tip, or ``STORE@REF``) passed validation:
    the stamp's catalog fingerprint is the snapshot's own.

    Raises ``ValidationRequiredError`` otherwise, saying what changed and what to run.
    """
    snapshot = open_snapshot(store)
    hint = (f"run `vmac validate --store {shlex.quote(snapshot.store)}` "
            "(or pass --skip-validation-check to override)")
    stamp = stamp_of(snapshot)
    where = f"store {snapshot.store}" + (f" at snapshot {snapshot.id}" if snapshot.id else "")
    if stamp is None:
        raise ValidationRequiredError(f"{where} has never been validated; {hint}")
    if not stamp.passed:
        raise ValidationRequiredError(
            f"{where} failed its last validation ({stamp.validated_at}, "
            f"{stamp.counts.critical_failures} critical rule(s); report: {stamp.report_path}); "
            f"fix the store, then {hint}"
        )
    if stamp.snapshot is None:
        raise ValidationRequiredError(
            f"{where} was validated at {stamp.validated_at} by a vmac before snapshots; {hint}")
    if fingerprint_of(snapshot) != stamp.catalog_fingerprint:
        raise ValidationRequiredError(
            f"the catalog of {where} changed since it was validated at {stamp.validated_at} (snapshot "
            f"{stamp.snapshot}; {changed_videos(snapshot, stamp.snapshot)}); {hint}"
        )
    return stamp


def changed_videos(snapshot: Snapshot, validated: str, shown: int = 3) -> str:
    """Which videos differ between the validated snapshot and ``snapshot`` (added, removed,
    re-decoded, or another state); 'videos changed' when the validated one is gone (vmac gc)."""
    try:
        then = snapshots.load_snapshot(snapshot.store, validated).videos
    except FileNotFoundError:
        return "videos changed"
    added, changed, removed = snapshots.diff(then, snapshot.entries)
    every = added + changed + removed
    names = ", ".join(every[:shown]) + (f" and {len(every) - shown} more" if len(every) > shown else "")
    parts = [f"{len(found)} {what}" for found, what in ((added, "added"), (changed, "changed"), (removed, "removed"))
             if found]
    return f"{', '.join(parts)}: {names}" if every else "videos changed"
