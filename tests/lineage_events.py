"""Checks an OpenLineage event must pass: the client's own serialisation of the event vmac built
from its lineage record, and the pinned OpenLineage 2-0-2 JSON schema (offline: the schema files
ship in storage_schemas/openlineage/, registered under their ids, never fetched)."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator, FormatChecker
from openlineage.client.serde import Serde
from referencing import Registry, Resource

from storage_schemas import openlineage as spec
from storage_schemas.lineage import LineageRecord
from tasks.io.openlineage import run_event


def _registry() -> Registry:
    resources = [(spec.CORE_SCHEMA_ID, spec.CORE_SCHEMA), (spec.VMAC_FACETS_SCHEMA_ID, spec.VMAC_FACETS_SCHEMA)]
    return Registry().with_resources(
        (uri, Resource.from_contents(json.loads(path.read_text()))) for uri, path in resources)


REGISTRY = _registry()


def schema_errors(instance: dict, ref: str) -> list[str]:
    """Every error of ``instance`` against the schema at ``ref`` (a URI into a registered schema)."""
    validator = Draft202012Validator({"$ref": ref}, registry=REGISTRY, format_checker=FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def _vmac_facets(event: dict) -> list[dict]:
    """Every facet of the event whose schema vmac ships (its own, ``vmac_*``)."""
    groups = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    groups += [d.get("facets", {}) for d in event.get("inputs", []) + event.get("outputs", [])]
    return [f for g in groups for f in g.values() if f["_schemaURL"].startswith(spec.VMAC_FACETS_SCHEMA_ID)]


def check_event(event: dict, record: LineageRecord) -> None:
    """Assert ``event`` (as read from disk or received over HTTP) is the client's serialisation of
    the RunEvent of ``record`` and passes the OpenLineage schema, and vmac's facets theirs."""
    built = Serde.to_dict(run_event(record))
    seen = json.loads(json.dumps(event))
    seen["run"]["facets"].pop("tags", None)  # the client adds its own tags facet when it emits
    assert seen == built, f"the event on disk differs from the client's serialisation of {record.id[:12]}"
    errors = schema_errors(event, f"{spec.CORE_SCHEMA_ID}#/$defs/RunEvent")
    for facet in _vmac_facets(event):
        errors += schema_errors(facet, facet["_schemaURL"])
    assert not errors, "\n".join(errors)
