"""A store's validation stamp: read it, and require that it vouches for the store as it is.

``vmac validate`` writes the stamp (``tasks.validate``); pre-training and the pipeline read it
here, so neither needs the validation stage to decide whether a store may be trained on.
"""

from __future__ import annotations

import json
import shlex

import fsspec
from pydantic import ValidationError

from storage_schemas.validation import VALIDATION_ATTR, ValidationStamp
from tasks.io.store import data_fingerprint, data_fingerprints, fingerprint_of, open_store, read_catalog


class ValidationRequiredError(RuntimeError):
    """The store has no passing validation stamp that matches its current catalog."""


def validation_status(store: str) -> ValidationStamp | None:
    """The store's latest validation stamp, or None when it was never validated.

    A stamp this code cannot parse (written by an older vmac) counts as none. Raises
    FileNotFoundError when there is no store at ``store``.
    """
    root = open_store(store, mode="r")
    raw = root.attrs.get(VALIDATION_ATTR)
    if raw is None:
        return None
    try:
        return ValidationStamp.model_validate(raw)
    except ValidationError:
        return None


def require_validated(store: str) -> ValidationStamp:
    """The stamp, if the store passed validation and neither its catalog nor its array files
    changed since (``tasks.io.store.data_fingerprints``: one listing, no reads).

    Raises ``ValidationRequiredError`` otherwise, saying what changed and what to run.
    """
    hint = (f"run `vmac validate --store {shlex.quote(store)}` "
            "(or pass --skip-validation-check to override)")
    stamp = validation_status(store)
    if stamp is None:
        raise ValidationRequiredError(f"store {store} has never been validated; {hint}")
    if not stamp.passed:
        raise ValidationRequiredError(
            f"store {store} failed its last validation ({stamp.validated_at}, "
            f"{stamp.counts.critical_failures} critical rule(s); report: {stamp.report_path}); "
            f"fix the store, then {hint}"
        )
    if fingerprint_of(read_catalog(store)) != stamp.catalog_fingerprint:
        raise ValidationRequiredError(
            f"the catalog of store {store} changed since it was validated at {stamp.validated_at} "
            f"(videos added, removed, re-decoded or changed status); {hint}"
        )
    if stamp.data_fingerprint is None:
        raise ValidationRequiredError(
            f"store {store} was validated at {stamp.validated_at} by a vmac that did not fingerprint the stored "
            f"data; {hint}")
    now = data_fingerprints(store)
    if data_fingerprint(now) != stamp.data_fingerprint:
        raise ValidationRequiredError(
            f"the stored arrays of store {store} changed since it was validated at {stamp.validated_at} "
            f"({changed_videos(stamp, now)}: array files written, truncated, added or removed); {hint}"
        )
    return stamp


def changed_videos(stamp: ValidationStamp, now: dict[str, str], shown: int = 3) -> str:
    """Which videos' files differ from those the validation listed (its result file keeps the
    per-video fingerprints); 'files differ' when that file cannot be read."""
    try:
        fs, path = fsspec.core.url_to_fs(stamp.result_path)
        then = json.loads(fs.cat_file(path)).get("data_fingerprints") or {}
    except (OSError, ValueError):
        return "files differ"
    changed = sorted(v for v in set(then) | set(now) if then.get(v) != now.get(v))
    names = ", ".join(changed[:shown]) + (f" and {len(changed) - shown} more" if len(changed) > shown else "")
    return f"{len(changed)} video(s): {names}" if changed else "files differ"
