"""Fake platforms: an ``httpx.MockTransport`` handler per platform that answers like the real API.

Mock mode (``new_connector(kind, mock=True)``) and the tests use them. By default every call succeeds
with the platform's own success body; ``push`` queues scripted replies (errors, throttling headers,
malformed bodies, timeouts, slowness) that are used first, in order. Slowness is simulated by advancing an
injected fake clock, never by sleeping.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

import httpx
import msgspec

from . import google_ads, meta, tiktok, tradedesk

BASE_URLS = {
    "google_ads": google_ads.BASE_URL,
    "meta": meta.BASE_URL,
    "tiktok": tiktok.BASE_URL,
    "tradedesk": tradedesk.BASE_URL,
}


class Advanceable(Protocol):
    def advance(self, seconds: float) -> None: ...


class Reply(msgspec.Struct, frozen=True):
    """One scripted answer. ``body`` is sent as-is (for malformed answers); otherwise ``json``."""

    status: int = 200
    json: Any = None
    body: str | None = None
    headers: dict[str, str] = {}
    delay: float = 0.0  # seconds the fake clock moves while "waiting" for this answer
    timeout: bool = False  # raise httpx.ReadTimeout instead of answering


class FakePlatform:
    def __init__(self, platform: str, clock: Advanceable | None = None, latency: float = 0.0) -> None:
        if platform not in BASE_URLS:
            raise ValueError(f"no fake for platform {platform!r}; known: {sorted(BASE_URLS)}")
        self.platform = platform
        self.clock = clock
        self.latency = latency  # seconds every call takes, on the fake clock
        self.headers: dict[str, str] = {}  # added to every default answer (e.g. Meta usage headers)
        self.requests: list[httpx.Request] = []
        self.script: deque[Reply] = deque()

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def client(self) -> httpx.AsyncClient:
        transport = httpx.MockTransport(self.handle)
        return httpx.AsyncClient(transport=transport, base_url=BASE_URLS[self.platform])

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.script.popleft() if self.script else None
        delay = self.latency + (reply.delay if reply else 0.0)
        if delay and self.clock is not None:
            self.clock.advance(delay)
        if reply is None:
            return httpx.Response(200, json=self._success(request), headers=self.headers)
        if reply.timeout:
            raise httpx.ReadTimeout("fake platform did not answer", request=request)
        if reply.body is not None:
            return httpx.Response(reply.status, content=reply.body.encode(), headers=reply.headers)
        return httpx.Response(reply.status, json=reply.json, headers=reply.headers)

    def _success(self, request: httpx.Request) -> Any:
        n = len(self.requests)
        path = request.url.path
        body: Any = msgspec.json.decode(request.content) if request.content and self._is_json(request) else {}
        if self.platform == "google_ads":
            if request.method == "GET":
                return {"resourceNames": ["customers/1234567890"]}
            return {"results": [{"resourceName": op["update"]["resourceName"]} for op in body["operations"]]}
        if self.platform == "meta":
            if request.method == "GET":
                return {"id": path.rsplit("/", 1)[-1], "name": "Fake Business"}
            return {"success": True}
        if self.platform == "tiktok":
            data: dict[str, Any] = {}
            if path.endswith("/adgroup/update/"):
                data = {"adgroup_id": body["adgroup_id"]}
            elif request.method == "GET":
                data = {"list": [{"advertiser_id": "fake", "name": "Fake Advertiser"}]}
            return {"code": 0, "message": "OK", "request_id": f"fake-{n}", "data": data}
        if request.method == "GET":
            return {"PartnerId": path.rsplit("/", 1)[-1]}
        return {"id": body.get("id", ""), "status": "accepted"}

    @staticmethod
    def _is_json(request: httpx.Request) -> bool:
        return str(request.headers.get("content-type", "")).startswith("application/json")
