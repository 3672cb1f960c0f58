"""Pulls the bidder's events (``GET {bidder}/events?after=<seq>``) and bid counters into SQLite.

The cursor is saved in the same transaction as the events it covers, and events keep the bidder's
``seq`` as their key, so a crash between the two can at worst re-read a page, never lose or double
one. A bidder that is down is not an error of ours: the pull fails, is counted, and retries later.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx
import msgspec

from control.clock import Clock
from control.db import Database
from control.stats import Stats

log = logging.getLogger("control.pull")

Notify = Callable[[str, dict[str, Any]], None]
Count = Callable[[str], None]  # called with "ok" or "error" per call to the bidder


class Event(msgspec.Struct):
    seq: int
    ts: float
    kind: str
    campaign_id: str = ""
    bid_id: str = ""
    imp_id: str = ""
    creative_id: str = ""
    price: float = 0.0
    data: dict[str, Any] = {}


class Page(msgspec.Struct):
    events: list[Event]
    next: int


class _CampaignCounters(msgspec.Struct):
    bids: int = 0


class _Status(msgspec.Struct):
    campaigns: dict[str, _CampaignCounters] = {}


# Bidder events that subscribers can receive as webhooks.
FORWARDED: dict[str, Literal["budget.alert", "breaker.state_changed"]] = {
    "budget.alert": "budget.alert", "breaker.state_changed": "breaker.state_changed",
}


class EventPuller:
    def __init__(self, db: Database, client: httpx.AsyncClient, base_url: str, clock: Clock,
                 notify: Notify | None = None, count: Count | None = None, limit: int = 1000) -> None:
        self.db = db
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.notify = notify
        self.count = count or (lambda _status: None)
        self.limit = limit
        self.stats = Stats(db)
        self.bidder_up = True

    @property
    def cursor(self) -> int:
        return int(self.db.get_meta("bidder_events_after", "0"))

    async def _get(self, path: str, **params: Any) -> bytes | None:
        try:
            r = await self.client.get(f"{self.base_url}{path}", params=params, timeout=5.0)
            r.raise_for_status()
        except httpx.HTTPError as exc:
            self.count("error")
            if self.bidder_up:  # say it once per outage, not once a second
                log.warning("bidder %s unavailable (%s); retrying every pull", self.base_url + path, exc)
            self.bidder_up = False
            return None
        self.count("ok")
        if not self.bidder_up:
            log.info("bidder %s reachable again", self.base_url)
        self.bidder_up = True
        return r.content

    async def pull_once(self) -> int:
        """Read every page available now; returns how many new events were stored."""
        stored = 0
        while True:
            after = self.cursor
            body = await self._get("/events", after=after, limit=self.limit)
            if body is None:
                break
            try:
                page = msgspec.json.decode(body, type=Page)
            except msgspec.DecodeError as exc:  # a bad page is skipped over only by a newer bidder
                self.count("error")
                log.error("bidder /events answered something that is not an event page: %s", exc)
                break
            stored += self._store(page)
            if len(page.events) < self.limit or page.next <= after:
                break
        status = await self._get("/status")
        if status is not None:
            try:
                counters = msgspec.json.decode(status, type=_Status).campaigns
            except msgspec.DecodeError as exc:
                log.error("bidder /status is not what the contract says: %s", exc)
            else:
                self.stats.record_bids({k: v.bids for k, v in counters.items()}, self.clock.now())
        return stored

    def _store(self, page: Page) -> int:
        rows = [
            (e.seq, e.ts, e.kind, e.campaign_id, e.bid_id, e.imp_id, e.creative_id, e.price,
             str(e.data.get("user_id") or e.data.get("user") or ""), msgspec.json.encode(e.data).decode())
            for e in page.events
        ]
        with self.db.tx():
            added = self.db.many(
                "INSERT OR IGNORE INTO events (seq, ts, kind, campaign_id, bid_id, imp_id, creative_id, "
                "price, user_id, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows,
            )
            self.db.set_meta("bidder_events_after", str(max(page.next, self.cursor)))
        if self.notify:
            for e in page.events:
                if e.kind in FORWARDED:
                    self.notify(FORWARDED[e.kind], {"campaign_id": e.campaign_id, "at": e.ts, **e.data})
        return added

    async def run(self, interval: float, sleep: Callable[[float], Awaitable[None]]) -> None:
        while True:
            try:
                await self.pull_once()
            except Exception:  # keep pulling; one bad page must not stop performance data for good
                log.exception("pulling bidder events failed")
            await sleep(interval)
