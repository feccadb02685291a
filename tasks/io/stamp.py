"""A store's validation stamp: read it, and require that it vouches for the store as it is.

``vmac validate`` writes the stamp (``tasks.validate``); pre-training and the pipeline read it
here, so neither needs the validation stage to decide whether a store may be trained on.
"""

from __future__ import annotations

import shlex

from pydantic import ValidationError

from storage_schemas.validation import VALIDATION_ATTR, ValidationStamp
from tasks.io.store import fingerprint_of, open_store, read_catalog


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
    """The stamp, if the store passed validation and its catalog has not changed since.

    Raises ``ValidationRequiredError`` otherwise, saying what to run.
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
    return stamp
