"""A stand-in for the bidder's internal port (``/events`` and ``/status``) behind ``httpx.MockTransport``."""

from __future__ import annotations

from typing import Any

import httpx


class FakeBidder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.bids: dict[str, int] = {}
        self.up = True
        self.calls: list[str] = []

    def add(self, kind: str, campaign_id: str, price: float = 0.0, ts: float = 1_767_225_600.0,
            bid_id: str | None = None, creative_id: str = "p0-300x250", **data: Any) -> None:
        seq = len(self.events) + 1
        self.events.append({
            "seq": seq, "ts": ts, "kind": kind, "campaign_id": campaign_id, "bid_id": bid_id or f"b{seq}",
            "imp_id": "1", "creative_id": creative_id, "price": price, "data": data,
        })

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.url.path)
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/events":
            after = int(request.url.params.get("after", 0))
            limit = int(request.url.params.get("limit", 1000))
            page = [e for e in self.events if e["seq"] > after][:limit]
            return httpx.Response(200, json={"events": page, "next": page[-1]["seq"] if page else after})
        if request.url.path == "/status":
            return httpx.Response(200, json={"campaigns": {k: {"bids": v, "wins": 0, "billed": 0, "spend": 0.0,
                                                                "no_bid": {}} for k, v in self.bids.items()},
                                             "model": "prior"})
        return httpx.Response(404)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
