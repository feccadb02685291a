"""The Dask dashboard link ingest logs serves the dashboard's status page (bokeh is installed).

Without bokeh (``dask[diagnostics]``) the same URL answers with a page saying the dashboard needs
it. The link names the machine's address; the page is fetched over loopback on the same port.
"""

from __future__ import annotations

import re
import urllib.request
from urllib.parse import urlsplit

from storage_schemas.config import IngestConfig
from tasks.ingest.cluster import decode_all
from tasks.ingest.plan import IngestPlan


def fetch_over_loopback(url: str) -> str:
    parts = urlsplit(url)
    with urllib.request.urlopen(f"http://127.0.0.1:{parts.port}{parts.path}", timeout=30) as response:
        assert response.status == 200
        return response.read().decode("utf-8", "replace")


def test_logged_dashboard_link_serves_the_status_page():
    # The cluster decode_all starts (memory:// keeps its workers in this process, so it starts fast).
    config = IngestConfig(sources=["unused"], store="memory://dashboard.zarr", dask_workers=1, progress=False)
    pages: dict[str, str] = {}

    def log(message: str) -> None:
        # Fetched while the cluster is up: decode_all logs the link right after starting it.
        found = re.search(r"Dask dashboard: (\S+)", message)
        if found:
            pages[found.group(1)] = fetch_over_loopback(found.group(1))

    decode_all(IngestPlan(todo=[], expected_frames={}, up_to_date=[]), config, "test-run", log, lambda outcome: None)
    [(link, page)] = pages.items()
    assert urlsplit(link).path == "/status"
    assert "<title>Dask Diagnostic UI</title>" in page
    assert "bokeh.min.js" in page, page[:300]
