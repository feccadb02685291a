"""Lineage records as OpenLineage run events, emitted with the ``openlineage-python`` client.

``tasks.io.lineage.write_record`` calls ``emit_record`` after each record, so a stage writes one
record and gets both formats. Each event goes to two places:

- the client's file transport, into ``<lineage folder>/openlineage/`` beside the records (local
  paths and fsspec URLs alike); a record that cannot be mirrored there is an error, as the record is;
- the transport the user configured with the client's own conventions (``OPENLINEAGE_URL`` for
  Marquez or DataHub, ``$OPENLINEAGE_CONFIG`` or ``~/.openlineage/openlineage.yml``, or
  ``OPENLINEAGE__TRANSPORT__*`` variables). An ``openlineage.yml`` in the working folder, which
  the client would also read, is not: anyone may have put it there (a cloned repository, a shared
  folder), and it would send every event elsewhere (docs/security.md); vmac warns and names it. Sending is best effort: a backend that is down costs a
  warning, never the run; the events on disk stay.

``OPENLINEAGE_DISABLED=true`` turns both off (the client's switch); the lineage records remain.
The mapping (storage_schemas.openlineage): job ``<namespace>/<kind>``; runId the record's run id
when it is a UUID, else a UUID derived from (kind, run id), so a START and its closing event share
it; the Prefect flow run as the ``parent`` facet; datasets named as OpenLineage names them
(``file`` + absolute path, ``s3://bucket`` + key, ...), with their sha256 (a store: the snapshot id)
as the ``version`` facet, and in ``vmac_artifact``.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from urllib.parse import urlsplit

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.constants import __version__ as CLIENT_VERSION
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    dataset_version_dataset,
    error_message_run,
    job_type_job,
    parent_run,
    processing_engine_run,
)
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.noop import NoopConfig, NoopTransport

from storage_schemas import openlineage as spec
from storage_schemas.lineage import Dataset, LineageRecord
from tasks.io.uris import filesystem, join, local_path

log = logging.getLogger("vmac.lineage")

# Names a run id that is not a UUID (records written before run ids were UUIDs, test ids).
_RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, spec.VMAC_FACETS_SCHEMA_ID)


@attr.define
class VmacArtifactDatasetFacet(DatasetFacet):
    """What vmac knows of a dataset: its kind, its content hash, the record's details."""

    kind: str
    sha256: str | None = attr.field(default=None)
    details: dict = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return f"{spec.VMAC_FACETS_SCHEMA_ID}#/$defs/VmacArtifactDatasetFacet"


@attr.define
class VmacRunRunFacet(RunFacet):
    """The lineage record an event was made from, and where it ran."""

    record_id: str
    run_id: str
    status: str
    host: str
    code_version: str
    parameters: dict
    git_sha: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return f"{spec.VMAC_FACETS_SCHEMA_ID}#/$defs/VmacRunRunFacet"


def job_namespace() -> str:
    return os.environ.get("OPENLINEAGE_NAMESPACE") or spec.DEFAULT_JOB_NAMESPACE


def run_uuid(kind: str, run_id: str) -> str:
    """The OpenLineage runId of a vmac run: its id when that is a UUID, else one derived from it."""
    try:
        return str(uuid.UUID(run_id))
    except ValueError:
        return str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{kind}:{run_id}"))


def dataset_name(uri: str) -> tuple[str, str]:
    """(namespace, name) of a location as OpenLineage names datasets: a local path is ``file`` and
    its absolute path; a URL is ``scheme://authority`` (the bucket) and the path within it."""
    path = local_path(uri)
    if path is not None:
        return "file", path
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"


def producer(code_version: str) -> str:
    """The URI that names vmac (at ``code_version``) as the producer of events and facets."""
    return f"urn:vmac:{code_version}"


def _dataset(item: Dataset, cls: type[InputDataset] | type[OutputDataset], by: str):
    namespace, name = dataset_name(item.uri)
    facets: dict = {spec.VMAC_DATASET_FACET: VmacArtifactDatasetFacet(kind=item.kind, sha256=item.sha256,
                                                                      details=item.facets, producer=by)}
    # A file's version is its content hash; a store's, the snapshot the run read or wrote.
    version = item.sha256 or item.facets.get("snapshot")
    if version:
        facets[spec.VERSION_FACET] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=version, producer=by)
    return cls(namespace=namespace, name=name, facets=facets)


def run_event(record: LineageRecord) -> RunEvent:
    """The OpenLineage RunEvent of a lineage record (module docstring). Raises ValueError for a
    status with no event type."""
    kind, namespace, by = record.kind, job_namespace(), producer(record.code_version)
    facets: dict = {
        spec.ENGINE_FACET: processing_engine_run.ProcessingEngineRunFacet(
            version=record.code_version, name="vmac", openlineageAdapterVersion=CLIENT_VERSION, producer=by),
        spec.VMAC_RUN_FACET: VmacRunRunFacet(
            record_id=record.id, run_id=record.run_id, status=record.status, host=record.host,
            code_version=record.code_version, parameters=record.parameters, git_sha=record.git_sha, producer=by),
    }
    if record.flow_run_id:
        facets[spec.PARENT_FACET] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=record.flow_run_id),
            job=parent_run.Job(namespace=namespace, name=spec.parent_job_name(kind)), producer=by)
    if record.error:
        facets[spec.ERROR_FACET] = error_message_run.ErrorMessageRunFacet(
            message=record.error, programmingLanguage="python", producer=by)
    job_facets = {spec.JOB_TYPE_FACET: job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="VMAC", jobType="JOB", producer=by)}
    return RunEvent(
        eventType=RunState(spec.event_type(record.status)),
        eventTime=record.time,
        run=Run(runId=run_uuid(kind, record.run_id), facets=facets),
        job=Job(namespace=namespace, name=kind, facets=job_facets),
        inputs=[_dataset(d, InputDataset, by) for d in record.inputs],
        outputs=[_dataset(d, OutputDataset, by) for d in record.outputs],
        producer=by,
    )


def events_folder(lineage_folder: str) -> str:
    return join(lineage_folder, spec.EVENTS_DIR)


def emit_record(lineage_folder: str, record: LineageRecord) -> None:
    """Write ``record``'s RunEvent with the client's file transport into ``<lineage_folder>/openlineage/``,
    then send it to the user's configured transport, if any (module docstring)."""
    event = run_event(record)
    folder = events_folder(lineage_folder)
    path = local_path(folder)
    if path is not None:
        os.makedirs(path, exist_ok=True)  # the file transport opens files, it makes no folders
    config = FileConfig(log_file_path=join(folder, f"{record.kind}-{event.eventType.value}"))
    OpenLineageClient(transport=FileTransport(config)).emit(event)
    client = configured_client()
    if client is None:
        return
    try:
        client.emit(event)
    except Exception as exc:  # noqa: BLE001 - any transport's failure: the run goes on, the file stays
        log.warning("OpenLineage %s event of %s run %s not sent (%s transport): %s", event.eventType.value,
                    record.kind, event.run.runId, client.transport.kind, exc)


class UsersClient(OpenLineageClient):
    """The client, reading a config file only where the user put one: ``$OPENLINEAGE_CONFIG`` or
    ``~/.openlineage/openlineage.yml``, never the working folder."""

    @staticmethod
    def _find_yaml_config_path() -> str | None:
        for path in (os.environ.get("OPENLINEAGE_CONFIG"), os.path.expanduser("~/.openlineage/openlineage.yml")):
            if path and os.path.isfile(path) and os.access(path, os.R_OK):
                return path
        return None


def configured_client() -> OpenLineageClient | None:
    """A client on the transport the user configured (``OPENLINEAGE_URL``, ``$OPENLINEAGE_CONFIG``,
    ``~/.openlineage/openlineage.yml``, ``OPENLINEAGE__TRANSPORT__*``), or None when there is none:
    the client would otherwise fall back to printing every event on the console."""
    here = os.path.join(os.getcwd(), "openlineage.yml")
    if os.path.isfile(here) and not os.environ.get("OPENLINEAGE_CONFIG"):
        log.warning("%s is not read: an openlineage.yml in the working folder could be anyone's; set "
                    "OPENLINEAGE_CONFIG=%s to send lineage events where it says", here, here)
    probe = UsersClient(transport=NoopTransport(NoopConfig()))
    if not (os.environ.get("OPENLINEAGE_URL") or probe.config.transport.get("type")):
        return None
    return UsersClient()


# Where each OpenLineage eventType falls in a run (OpenLineage spec, RunEvent.eventType).
LIFECYCLE = {"START": 0, "RUNNING": 1, "OTHER": 1, "COMPLETE": 2, "FAIL": 2, "ABORT": 2}


def read_events(lineage_folder: str) -> list[dict]:
    """Every RunEvent in ``<lineage_folder>/openlineage/`` as JSON, in eventTime order; events of
    the same millisecond (a stage that starts and ends at once) in their run's lifecycle order,
    START before RUNNING before COMPLETE, FAIL or ABORT, whatever order the folder lists them in."""
    fs, root = filesystem(events_folder(lineage_folder))
    if not fs.exists(root):
        return []
    events = [json.loads(fs.cat_file(p)) for p in fs.ls(root, detail=False) if p.endswith(".json")]
    return sorted(events, key=lambda e: (e["eventTime"], LIFECYCLE.get(e["eventType"], 1)))

