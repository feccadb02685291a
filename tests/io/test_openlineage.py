"""OpenLineage run events beside the lineage records: written by the client's file transport, valid
against the pinned 2-0-2 schema, paired START/COMPLETE|FAIL by runId, sent to an HTTP backend the
user configures the client's way (a real HTTP server on loopback here), never fatal when it is down."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from storage_schemas.lineage import Dataset
from tasks.io import lineage
from tasks.io.openlineage import dataset_name, read_events, run_uuid
from tests.lineage_events import check_event

FLOW_RUN = "0190f3a2-1111-7222-8333-444455556666"
SHA = "ab" * 32


@pytest.fixture
def openlineage_env(monkeypatch, tmp_path):
    """No OpenLineage configuration from the machine; the environment restored afterwards (the
    client writes OPENLINEAGE__* aliases of OPENLINEAGE_URL into os.environ)."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.openlineage/openlineage.yml
    monkeypatch.chdir(tmp_path)  # no ./openlineage.yml
    yield
    os.environ.clear()
    os.environ.update(saved)


def _run(folder: str, status: str = "completed", kind: str = "pretrain", run_id: str | None = None):
    """A started record, then one closing with ``status``, as a stage writes them; both records."""
    run_id = run_id or lineage.run_id()
    inputs = [Dataset(uri="/data/train.zarr", kind="store", facets={"catalog_fingerprint": "f" * 64}),
              Dataset(uri="s3://bucket/clips/a.mp4", kind="source", sha256=SHA)]
    outputs = [] if status == "failed" else [Dataset(uri="/runs/r/encoder.pt", kind="encoder", sha256=SHA)]
    started = lineage.make_record(kind, "started", run_id, inputs, [], {"preset": "tiny"}, FLOW_RUN)
    lineage.write_record(folder, started)
    closed = lineage.make_record(kind, status, run_id, inputs, outputs, {"preset": "tiny"}, FLOW_RUN,
                                 error="NonFiniteLossError: loss is nan" if status == "failed" else None)
    lineage.write_record(folder, closed)
    return started, closed


def test_each_record_has_its_event_and_each_event_passes_serialisation_and_schema(tmp_path, openlineage_env):
    folder = str(tmp_path / "run" / "lineage")
    records = [*_run(folder, "completed"), *_run(folder, "failed"), *_run(folder, "completed_with_failures", "ingest")]
    events = read_events(folder)
    assert len(events) == len(records) == len(lineage.read_records(folder))  # the records still read as before
    by_record = {r.id: r for r in records}
    for event in events:
        check_event(event, by_record[event["run"]["facets"]["vmac_run"]["record_id"]])
    # One run, one runId: START then COMPLETE or FAIL, with the Prefect flow run as parent.
    runs: dict[str, list[str]] = {}
    for event in events:
        runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
        assert event["run"]["facets"]["parent"]["run"]["runId"] == FLOW_RUN
        assert event["run"]["facets"]["parent"]["job"]["name"] == f"{event['job']['name']}_flow"
    assert sorted(runs.values()) == [["START", "COMPLETE"], ["START", "COMPLETE"], ["START", "FAIL"]]
    failed = next(e for e in events if e["eventType"] == "FAIL")
    assert failed["run"]["facets"]["errorMessage"]["message"].startswith("NonFiniteLossError")
    # Datasets are named as OpenLineage names them, and carry their content hash.
    complete = next(e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == "pretrain")
    names = {(d["namespace"], d["name"]) for d in complete["inputs"] + complete["outputs"]}
    assert names == {("file", "/data/train.zarr"), ("s3://bucket", "clips/a.mp4"), ("file", "/runs/r/encoder.pt")}
    encoder = complete["outputs"][0]["facets"]
    assert encoder["version"]["datasetVersion"] == SHA and encoder["vmac_artifact"]["sha256"] == SHA


def test_events_follow_the_records_into_an_fsspec_store(openlineage_env):
    folder = "memory://ol-test/store.zarr/lineage"
    started, closed = _run(folder)
    events = read_events(folder)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    check_event(events[1], closed)


def test_events_of_one_millisecond_read_in_lifecycle_order(tmp_path, openlineage_env):
    """A run that starts and ends within one millisecond (record times are kept to the
    millisecond): its COMPLETE event's file may list first, and START is still read first."""
    folder = str(tmp_path / "lineage")
    run_id = lineage.run_id()
    started = lineage.make_record("ingest", "started", run_id, [], [], {}, FLOW_RUN)
    closed = lineage.make_record("ingest", "completed", run_id, [], [], {}, FLOW_RUN).model_copy(
        update={"time": started.time})
    lineage.write_record(folder, closed)  # written, and so likely listed, first
    lineage.write_record(folder, started)
    events = read_events(folder)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[0]["eventTime"] == events[1]["eventTime"]


def test_run_ids_are_uuids_and_old_ids_map_to_one_uuid_per_run():
    assert len(str(lineage.run_id())) == 36
    old = "20250101T000000-abcdef"
    assert run_uuid("pretrain", old) == run_uuid("pretrain", old) != run_uuid("evaluate", old)
    assert dataset_name("memory://bucket/x/y.zarr") == ("memory://bucket", "x/y.zarr")


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def lineage_backend():
    """A real HTTP server on loopback that records the events POSTed to it; stopped afterwards."""
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Receiver.received
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _user_config(tmp_path, text: str) -> None:
    """``~/.openlineage/openlineage.yml`` of the (test's) user."""
    (tmp_path / "home" / ".openlineage").mkdir(parents=True, exist_ok=True)
    (tmp_path / "home" / ".openlineage" / "openlineage.yml").write_text(text)


@pytest.mark.parametrize("configured_by", ["OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "~/.openlineage"])
def test_events_go_to_the_backend_the_user_configured(tmp_path, openlineage_env, lineage_backend, monkeypatch,
                                                      configured_by):
    url, received = lineage_backend
    if configured_by == "OPENLINEAGE_URL":
        monkeypatch.setenv("OPENLINEAGE_URL", url)
    elif configured_by == "OPENLINEAGE_CONFIG":
        (tmp_path / "mine.yml").write_text(f"transport:\n  type: http\n  url: {url}\n")
        monkeypatch.setenv("OPENLINEAGE_CONFIG", str(tmp_path / "mine.yml"))
    else:
        _user_config(tmp_path, f"transport:\n  type: http\n  url: {url}\n")
    folder = str(tmp_path / "lineage")
    _run(folder)
    assert [path for path, _ in received] == ["/api/v1/lineage"] * 2
    assert [event for _, event in received] == read_events(folder)


def test_a_backend_that_is_down_costs_a_warning_not_the_run(tmp_path, openlineage_env, caplog):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _user_config(tmp_path, f"transport:\n  type: http\n  url: http://127.0.0.1:{port}\n  retry:\n    total: 0\n")
    folder = str(tmp_path / "lineage")
    with caplog.at_level("WARNING", logger="vmac.lineage"):
        _run(folder)
    assert len(read_events(folder)) == 2 and len(lineage.read_records(folder)) == 2
    assert "not sent (http transport)" in caplog.text


def test_an_openlineage_yml_in_the_working_folder_redirects_nothing(tmp_path, openlineage_env, lineage_backend,
                                                                   caplog):
    """Finding 8: the working folder may be anyone's (a cloned repository, a shared folder); its
    openlineage.yml is named in a warning, and no event goes where it says."""
    url, received = lineage_backend
    (tmp_path / "openlineage.yml").write_text(f"transport:\n  type: http\n  url: {url}\n")
    folder = str(tmp_path / "lineage")
    with caplog.at_level("WARNING", logger="vmac.lineage"):
        _run(folder)
    assert received == [] and len(read_events(folder)) == 2
    assert f"{tmp_path / 'openlineage.yml'} is not read" in caplog.text


def test_openlineage_disabled_keeps_the_records(tmp_path, openlineage_env, monkeypatch):
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    folder = str(tmp_path / "lineage")
    _run(folder)
    assert read_events(folder) == [] and len(lineage.read_records(folder)) == 2
