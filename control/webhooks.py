"""Signed webhooks (Standard Webhooks): signing, verification for receivers, and retried delivery.

Public API:

- ``EVENT_KINDS``: campaign.status_changed, budget.alert, breaker.state_changed, rule.fired,
  ab_test.concluded; ``EventKind`` is the Literal of them.
- ``new_secret() -> str``: ``"whsec_" + base64(32 random bytes)``; keep it in the store, show it once.
- ``sign(secret, msg_id, timestamp: int, body: bytes) -> str``: ``"v1,<base64 HMAC-SHA256 over
  '{msg_id}.{timestamp}.{body}'>"``. A ``whsec_`` secret is base64-decoded to get the key; any other
  string is used as its UTF-8 bytes.
- ``sign_headers(secret, msg_id, timestamp, body) -> dict[str, str]``: webhook-id, webhook-timestamp,
  webhook-signature (plus content-type).
- ``verify(secret, headers: Mapping[str, str], body: bytes, now: float, tolerance: int = 300) -> None``
  for receivers: header names are matched case-insensitively; raises ``VerificationError`` (with
  ``.reason`` one of missing_header, bad_timestamp, too_old, too_new, bad_signature) when a header is
  missing, the timestamp is not an integer, more than ``tolerance`` seconds old (replay) or ahead of
  ``now``, or no ``v1,`` signature in the (space-separated) list matches, compared in constant time.
- ``encode_event(kind, data: Mapping, at: float) -> bytes``: the body ``{"type", "timestamp" (ISO 8601
  UTC), "data"}``; ``WebhookError`` for an unknown kind.
- ``Subscription(id, url, events: list[str], secret, active=True)`` with ``wants(kind) -> bool``
  ("*" in events means all).
- ``RetryPolicy(max_attempts=6, base_delay=1.0, factor=2.0, max_delay=300.0)``:
  ``delay(attempt)`` = ``min(max_delay, base_delay * factor ** (attempt - 1))`` after the given failed
  attempt; a 429's ``Retry-After`` seconds is honoured when longer (still capped at ``max_delay``).
- ``Attempt(delivery_id, subscription_id, url, event_type, attempt, at, outcome, status_code=None,
  error=None, next_retry_at=None, duration_ms=0.0)`` with outcome "delivered" | "retry" | "failed".
- ``DeliveryLog`` Protocol: ``record(attempt: Attempt) -> None`` (the core persists; sync is fine).
- ``Sleep`` Protocol ``async (seconds) -> None``; the clock is ``control.clock.Clock`` (unix seconds).
- ``Deliverer(client: httpx.AsyncClient, log, clock, sleep=asyncio.sleep, policy=RetryPolicy(),
  new_id=<uuid4 "msg_...">, timeout=10.0)``:
  ``await deliver(sub, kind, data, msg_id=None) -> DeliveryResult(delivery_id, delivered, attempts,
  status_code, error)`` posts the body signed afresh on each attempt (same webhook-id, new timestamp),
  retries network errors (``httpx.TransportError``), 429 and 5xx with backoff up to ``max_attempts``,
  gives up at once on other statuses (2xx = delivered; 3xx/4xx = failed), and records every attempt.
  ``await publish(subs, kind, data) -> list[DeliveryResult]`` delivers to every active subscription
  that wants ``kind``, concurrently. The client is the caller's (it owns its lifetime).

Errors: ``WebhookError(ValueError)`` <- ``VerificationError``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx
import msgspec

from control.clock import Clock

EventKind = Literal[
    "campaign.status_changed", "budget.alert", "breaker.state_changed", "rule.fired", "ab_test.concluded"
]
EVENT_KINDS: tuple[str, ...] = (
    "campaign.status_changed", "budget.alert", "breaker.state_changed", "rule.fired", "ab_test.concluded",
)
Outcome = Literal["delivered", "retry", "failed"]


class WebhookError(ValueError):
    """A webhook that cannot be built or sent as asked."""


class VerificationError(WebhookError):
    """A received webhook that must be rejected; ``reason`` says which check failed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[6:], validate=True)
        except ValueError as exc:
            raise WebhookError("a 'whsec_' secret must be followed by base64") from exc
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def sign_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: int = 300) -> None:
    lower = {k.lower(): v for k, v in headers.items()}
    values = []
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not lower.get(name):
            raise VerificationError("missing_header", f"the {name} header is missing")
        values.append(lower[name])
    msg_id, ts_text, signatures = values
    try:
        ts = int(ts_text)
    except ValueError:
        why = f"webhook-timestamp {ts_text!r} is not unix seconds"
        raise VerificationError("bad_timestamp", why) from None
    if now - ts > tolerance:
        raise VerificationError("too_old", f"webhook-timestamp is {now - ts:.0f} s old (limit {tolerance} s)")
    if ts - now > tolerance:
        raise VerificationError("too_new", f"webhook-timestamp is {ts - now:.0f} s in the future")
    expected = sign(secret, msg_id, ts, body)
    # Every entry is compared (no early exit) so the time taken says nothing about which one was close.
    matched = False
    for candidate in signatures.split():
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        raise VerificationError("bad_signature", "no webhook-signature entry matches the body")


class _Body(msgspec.Struct):
    type: str
    timestamp: str
    data: Mapping[str, Any]


def encode_event(kind: str, data: Mapping[str, Any], at: float) -> bytes:
    if kind not in EVENT_KINDS:
        raise WebhookError(f"unknown event kind {kind!r}; expected one of {', '.join(EVENT_KINDS)}")
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return msgspec.json.encode(_Body(kind, stamp, data))


class Subscription(msgspec.Struct, frozen=True):
    id: str
    url: str
    events: list[str]
    secret: str
    active: bool = True

    def wants(self, kind: str) -> bool:
        return self.active and ("*" in self.events or kind in self.events)


class RetryPolicy(msgspec.Struct, frozen=True):
    max_attempts: int = 6
    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        backoff = self.base_delay * self.factor ** (attempt - 1)
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        return min(self.max_delay, backoff)


class Attempt(msgspec.Struct, frozen=True):
    delivery_id: str
    subscription_id: str
    url: str
    event_type: str
    attempt: int
    at: float
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    next_retry_at: float | None = None
    duration_ms: float = 0.0


class DeliveryResult(msgspec.Struct, frozen=True):
    delivery_id: str
    delivered: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None


class DeliveryLog(Protocol):
    def record(self, attempt: Attempt) -> None: ...


class Sleep(Protocol):
    def __call__(self, seconds: float, /) -> Awaitable[None]: ...


def _retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None  # an HTTP date, or garbage: fall back to our own backoff
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _new_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class _Try(msgspec.Struct):
    status: int | None
    error: str | None
    retryable: bool
    retry_after: float | None = None


class Deliverer:
    def __init__(self, client: httpx.AsyncClient, log: DeliveryLog, clock: Clock,
                 sleep: Sleep = asyncio.sleep, policy: RetryPolicy | None = None,
                 new_id: Callable[[], str] = _new_id, timeout: float = 10.0) -> None:
        self.client = client
        self.log = log
        self.clock = clock
        self.sleep = sleep
        self.policy = policy or RetryPolicy()
        self.new_id = new_id
        self.timeout = timeout

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> _Try:
        try:
            r = await self.client.post(url, content=body, headers=headers, timeout=self.timeout)
        except httpx.TransportError as exc:  # connect, read, write, timeouts, protocol errors
            return _Try(None, f"{type(exc).__name__}: {exc}", True)
        if 200 <= r.status_code < 300:
            return _Try(r.status_code, None, False)
        return _Try(r.status_code, f"HTTP {r.status_code}", r.status_code == 429 or r.status_code >= 500,
                    _retry_after(r) if r.status_code == 429 else None)

    async def deliver(self, sub: Subscription, kind: str, data: Mapping[str, Any],
                      msg_id: str | None = None) -> DeliveryResult:
        body = encode_event(kind, data, self.clock.now())
        msg_id = msg_id or self.new_id()
        attempt = 0
        while True:
            attempt += 1
            at = self.clock.now()
            # A fresh timestamp per attempt: a late retry must not look like a replay to the receiver.
            headers = sign_headers(sub.secret, msg_id, int(at), body)
            started = time.perf_counter()
            t = await self._post(sub.url, body, headers)
            ms = (time.perf_counter() - started) * 1000
            if t.retryable and attempt < self.policy.max_attempts:
                wait = self.policy.delay(attempt, t.retry_after)
                self.log.record(Attempt(msg_id, sub.id, sub.url, kind, attempt, at, "retry", t.status,
                                        t.error, at + wait, ms))
                await self.sleep(wait)
                continue
            delivered = t.error is None
            self.log.record(Attempt(msg_id, sub.id, sub.url, kind, attempt, at,
                                    "delivered" if delivered else "failed", t.status, t.error, None, ms))
            return DeliveryResult(msg_id, delivered, attempt, t.status, t.error)

    async def publish(self, subs: Iterable[Subscription], kind: str,
                      data: Mapping[str, Any]) -> list[DeliveryResult]:
        encode_event(kind, data, 0.0)  # refuse an unknown kind before anything is sent
        return list(await asyncio.gather(*(self.deliver(s, kind, data) for s in subs if s.wants(kind))))
