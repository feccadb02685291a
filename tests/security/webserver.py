"""A loopback HTTP server for source tests: files that need HTTP Basic credentials or a signed
query, byte ranges (as fsspec's HTTP filesystem reads), and a log of every request it answered."""

from __future__ import annotations

import base64
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Served:
    """A file and what a request for it must carry: ``basic`` ("user:password") and/or ``query``."""

    data: bytes
    basic: str | None = None
    query: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server_version = "test"

    def log_message(self, *args) -> None:  # quiet: the test reads self.server.requests instead
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _allowed(self, served: Served, query: dict) -> bool:
        if served.basic is not None:
            sent = self.headers.get("Authorization", "")
            if sent != "Basic " + base64.b64encode(served.basic.encode()).decode():
                return False
        return all(query.get(name) == [value] for name, value in served.query.items())

    def _answer(self, head: bool) -> None:
        url = urlsplit(self.path)
        self.server.requests.append(self.path)
        served = self.server.files.get(url.path.lstrip("/"))
        if served is None or not self._allowed(served, parse_qs(url.query)):
            self.send_response(404 if served is None else 403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data, status, first = served.data, 200, 0
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            start, _, end = ranged[6:].partition("-")
            first = int(start or 0)
            last = min(int(end) if end else len(data) - 1, len(data) - 1)
            data, status = data[first:last + 1], 206
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{first + len(data) - 1}/{len(served.data)}")
        self.end_headers()
        if not head:
            self.wfile.write(data)


@contextlib.contextmanager
def web_server(files: dict[str, Served]) -> Iterator[ThreadingHTTPServer]:
    """Serve ``files`` (name → Served) on 127.0.0.1 at a free port while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files, server.requests = files, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
