"""The open-loop generator: every request scheduled is sent and answered, and the generator's own
garbage collector never pauses it (that pause would be counted as the server's latency)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import loadgen


class _NoContent(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the generator expects

    def do_POST(self) -> None:  # noqa: N802 - the name http.server looks for
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _NoContent)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_every_request_is_sent_and_none_waits_for_a_collection(server: int) -> None:
    started: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(record)
    try:
        r = loadgen.run("127.0.0.1", server, "/openrtb2/bid", b"{}", rate=400.0, duration=0.5, connections=4)
    finally:
        gc.callbacks.remove(record)
    assert (r.sent, r.errors) == (200, 0)
    assert 0 < r.p50_ms <= r.p99_ms <= r.max_ms
    assert started == [2]  # the one full collection before the clock starts, none while it runs
    assert gc.isenabled()
