"""Credentials in source URLs (finding 4) and remote sources (finding 6, 7): a URL's password,
token or signature is used to read the source and written nowhere: not in the catalog, lineage
records, OpenLineage events, stdout, nor any Prefect object (flow run parameters, states, logs,
artifacts, events). Real components: a loopback HTTP server that demands the credentials, real
fsspec/aiohttp, Dask, ffmpeg, Zarr and Prefect."""

from __future__ import annotations

import itertools
import json
import os
import re
import uuid
from pathlib import Path

import pytest

from tasks.io.secrets import MASK, reader_uri, redact, redact_text
from tests.conftest import moving_frames
from tests.security.webserver import Served, web_server

# --- redaction: the class of URLs, checked against an oracle -------------------------------------

SECRET = "Zq8-secret-Vw3"
# (URL with SECRET in it, what must stay visible): userinfo passwords, tokens as user names, signed queries.
CARRIERS = [
    ("https://alice:{s}@host.example/clips/a.mp4", "https://alice:***@host.example/clips/a.mp4"),
    ("ftp://bob:{s}@10.0.0.2:2121/videos/", "ftp://bob:***@10.0.0.2:2121/videos/"),
    ("sftp://carol:{s}@lab/clip.mkv", "sftp://carol:***@lab/clip.mkv"),
    ("https://{s}@github.example/raw/a.mp4", "https://***@github.example/raw/a.mp4"),
]
QUERY_KEYS = ["X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Signature", "Signature", "sig",
              "token", "access_token", "key", "api_key", "password", "client_secret"]


def test_redact_masks_every_credential_and_keeps_the_rest():
    for template, shown in CARRIERS:
        url = template.format(s=SECRET)
        assert redact(url) == shown and redact(shown) == shown
        assert SECRET not in reader_uri(shown)
    for key, (before, after) in itertools.product(QUERY_KEYS, [("", ""), ("v=1&", "&X-Amz-Expires=60#t=2")]):
        url = f"https://b.example/k/clip.mp4?{before}{key}={SECRET}{after}"
        masked = redact(url)
        assert SECRET not in masked and f"{key}={MASK}" in masked and masked.endswith(after) and before in masked
        assert SECRET not in reader_uri(masked)
    for plain in ("/data/clip.mp4?token=x", "s3://bucket/key.mp4", "memory://s.zarr", "https://h/a.mp4?t=10&x=y"):
        assert redact(plain) == plain
    text = f"404, message='Not Found', url='https://u:{SECRET}@h/a.mp4?sig={SECRET}' then http://x/y"
    assert SECRET not in redact_text(text) and "http://x/y" in redact_text(text)


# --- end to end ----------------------------------------------------------------------------------


def _clip(path: Path, seed: int) -> bytes:
    from tasks.io.ffmpeg import encode_video

    encode_video(moving_frames(10, 48, 64, seed=seed), str(path), 12)
    return path.read_bytes()


def _prefect_objects() -> str:
    """Every flow run (parameters, state), task run, log, artifact and event the Prefect API holds,
    as JSON text."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        parts = [client.read_flow_runs(), client.read_task_runs(), client.read_logs(), client.read_artifacts()]
        events = client.request("POST", "/events/filter", json={"limit": 50}).json()
        texts = [json.dumps([item.model_dump(mode="json") for item in part]) for part in parts]
        pages = [json.dumps(events)]
        while events.get("next_page"):
            events = client._client.get(events["next_page"]).json()
            pages.append(json.dumps(events))
    return "\n".join(texts + pages)


def _database_bytes() -> bytes:
    from prefect.settings import get_current_settings

    url = get_current_settings().server.database.connection_url.get_secret_value()
    path = Path(url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


@pytest.mark.slow
def test_credentials_in_source_urls_are_used_and_written_nowhere(prefect_harness, tmp_path, capsys):
    from cli.main import main
    from tasks.audit.rehash import audit_store
    from tasks.io.secrets import _GIVEN, given, remember
    from tasks.io.store import read_catalog

    secrets = {name: f"{name}-{uuid.uuid4().hex}" for name in ("password", "signature", "credential", "token")}
    web = {"basic.mp4": Served(_clip(tmp_path / "b.mp4", 1), basic=f"alice:{secrets['password']}"),
           "signed.mp4": Served(_clip(tmp_path / "s.mp4", 2),
                                query={"X-Amz-Signature": secrets["signature"], "X-Amz-Credential": secrets["credential"]})}
    local = tmp_path / "local" / "here.mp4"
    local.parent.mkdir()
    _clip(local, 3)
    store = tmp_path / "s.zarr"
    with web_server(web) as server:
        port = server.server_address[1]
        sources = [f"http://alice:{secrets['password']}@127.0.0.1:{port}/basic.mp4",
                   f"http://127.0.0.1:{port}/signed.mp4?X-Amz-Signature={secrets['signature']}"
                   f"&X-Amz-Credential={secrets['credential']}&X-Amz-Expires=600",
                   # Nothing listens on port 9 (discard): one unreachable source, with a token.
                   f"https://{secrets['token']}@127.0.0.1:9/gone.mp4",
                   str(local)]
        code = main(["ingest", *sources, "--store", str(store), "--no-progress", "--workers", "1"])
        served = list(server.requests)
        # Re-reading: with the URLs given in this process, the audit re-hashes them; in another
        # process (none kept), it says why it cannot instead of calling them missing or changed.
        checked, drifts, _ = audit_store(str(store))
        assert checked["sources"] == 3 and [d.video_id for d in drifts] == [], drifts
        saved = given()
        _GIVEN.clear()
        try:
            checked, drifts, notes = audit_store(str(store))
        finally:
            remember(saved)
        assert checked["sources"] == 1 and drifts == []
        assert sum("its URL carried credentials, which vmac does not keep" in note for note in notes) == 2, notes
    out, err = capsys.readouterr()
    assert code == 1, err  # the unreachable source is a failed row; the run says so
    catalog = {record.source_uri: record for record in read_catalog(str(store)).values()}
    assert catalog[f"http://alice:***@127.0.0.1:{port}/basic.mp4"].status.value == "complete"
    signed = f"http://127.0.0.1:{port}/signed.mp4?X-Amz-Signature=***&X-Amz-Credential=***&X-Amz-Expires=600"
    assert catalog[signed].status.value == "complete" and catalog[str(local)].status.value == "complete"
    gone = catalog["https://***@127.0.0.1:9/gone.mp4"]
    assert gone.status.value == "failed" and "unreadable source" in gone.reason, gone.reason
    # The failed row names it, redacted (the table folds long cells: read it without its frame).
    assert "https://***@127.0.0.1:9/gone.mp4" in re.sub(r"[\s│┃]", "", out)
    assert any("X-Amz-Signature=" + secrets["signature"] in r for r in served), "the signed URL was not used"

    def leaks(text: str) -> list[str]:
        return [name for name, value in secrets.items() if value in text]

    assert not leaks(out + err), "a credential reached the terminal"
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".mp4"]
    assert any("lineage" in p.parts for p in written) and any("openlineage" in p.parts for p in written)
    for path in written:
        assert not leaks(path.read_bytes().decode("latin-1")), f"a credential was written to {path}"
    recorded = _prefect_objects()
    assert f"alice:***@127.0.0.1:{port}/basic.mp4" in recorded  # the flow's parameters, redacted, were read
    assert not leaks(recorded), "a credential reached a Prefect object"
    assert not leaks(_database_bytes().decode("latin-1")), "a credential reached Prefect's database"
    for home_file in Path(os.environ["PREFECT_HOME"]).rglob("*"):
        if home_file.is_file():
            assert not leaks(home_file.read_bytes().decode("latin-1")), f"a credential was written to {home_file}"
