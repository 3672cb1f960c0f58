"""Webhook subscriptions and a durable outbox in front of ``webhooks.Deliverer``.

``notify(kind, data)`` only writes the event to the outbox (a log row), so it is cheap, synchronous
and survives a restart; ``drain()`` delivers what is pending and removes each event once every
subscriber got it or gave up (the delivery log keeps each attempt).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import msgspec

from control import webhooks
from control.clock import Clock
from control.db import Database

log = logging.getLogger("control.notify")


class _Pending(msgspec.Struct):
    kind: str
    data: dict[str, Any]


class DbDeliveryLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, attempt: webhooks.Attempt) -> None:
        self.db.append_log("webhook_delivery", attempt.subscription_id, attempt.at, attempt)


class Notifier:
    def __init__(self, db: Database, clock: Clock, deliverer: webhooks.Deliverer | None = None) -> None:
        self.db = db
        self.clock = clock
        self.deliverer = deliverer
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    # -- subscriptions ---------------------------------------------------------------------------

    def subscribe(self, url: str, events: list[str]) -> webhooks.Subscription:
        sub = webhooks.Subscription(id=f"wh_{secrets.token_hex(6)}", url=url, events=events,
                                    secret=webhooks.new_secret())
        self.db.put_doc("webhook", sub.id, self.clock.now(), sub)
        return sub

    def subscriptions(self) -> list[webhooks.Subscription]:
        return [msgspec.json.decode(b, type=webhooks.Subscription) for b in self.db.list_docs("webhook")]

    def get(self, sub_id: str) -> webhooks.Subscription | None:
        raw = self.db.get_doc("webhook", sub_id)
        return msgspec.json.decode(raw, type=webhooks.Subscription) if raw else None

    def unsubscribe(self, sub_id: str) -> bool:
        return self.db.execute("DELETE FROM docs WHERE kind = 'webhook' AND id = ?", (sub_id,)) > 0

    def deliveries(self, sub_id: str, limit: int = 200) -> list[webhooks.Attempt]:
        return [msgspec.json.decode(b, type=webhooks.Attempt)
                for b in self.db.read_log("webhook_delivery", sub_id, limit)]

    # -- events ------------------------------------------------------------------------------------

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.db.append_log("outbox", kind, self.clock.now(), _Pending(kind, data))
        self._wake.set()

    @property
    def pending(self) -> int:
        row = self.db.one("SELECT COUNT(*) AS n FROM log WHERE kind = 'outbox'")
        return int(row["n"]) if row else 0

    async def drain(self) -> None:
        if self.deliverer is None:
            return
        async with self._lock:
            sql = "SELECT id, body FROM log WHERE kind = 'outbox' ORDER BY id LIMIT 100"
            while rows := self.db.query(sql):
                subs = self.subscriptions()
                for row in rows:
                    event = msgspec.json.decode(row["body"], type=_Pending)
                    try:
                        await self.deliverer.publish(subs, event.kind, event.data)
                    except webhooks.WebhookError as exc:  # an unknown kind is dropped, not retried forever
                        log.error("webhook event dropped: %s", exc)
                    self.db.execute("DELETE FROM log WHERE id = ?", (row["id"],))

    async def run(self) -> None:
        self._wake = asyncio.Event()  # bound to this run's event loop
        while True:
            try:
                await self.drain()  # first what a previous run left in the outbox
            except Exception:
                log.exception("webhook delivery failed")
            await self._wake.wait()
            self._wake.clear()
