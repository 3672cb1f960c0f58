"""The connector every platform shares, and its safety pipeline.

``place_bid`` runs, in this order: budget check (a reservation of ``bid_micros`` with the platform's
``BudgetManager``), rate-limit check (our ``SlidingWindowLimiter``, and any back-off the platform's own
usage headers asked for), the platform call(s) through the ``CircuitBreaker``, the reservation committed
as spend when every call succeeded (released on any failure), and the stats. A *basic* connector has no
budget, limiter or breaker: only the translator and the transport.

While the breaker refuses calls, ``place_bid`` does not call the platform and returns the fallback
decision (``source="fallback"``, ``placed=False``, nothing booked): the median of the last 100 placed bids
times the platform's multiplier (``shield.FallbackPricer``). With no placed bid yet it raises
``BreakerOpen``.

What the breaker counts as bad: no answer (timeout, network), an answer we cannot read, a 5xx, or any call
slower than its slow-call limit. A 4xx or a throttle is the platform working as designed and counts as a
good call; throttles are handled by backing off instead.
"""

from __future__ import annotations

import logging
import uuid
from typing import Literal, Protocol

import msgspec

from shield import REFUSED, BudgetManager, CircuitBreaker, Clock, FallbackPricer, SlidingWindowLimiter
from shield.breaker import BreakerState
from shield.events import BudgetAlert, Event

from .errors import (
    BadDecision,
    BreakerOpen,
    BudgetVeto,
    ConnectorError,
    MalformedResponse,
    PlatformError,
    RateLimited,
    Throttled,
)
from .model import BidDecision, BidResult
from .stats import Stats
from .translate import Translator, Usage
from .transport import PlatformRequest, Transport

log = logging.getLogger("connectors")
USAGE_BACKOFF_S = 60.0  # least back-off once the platform's own usage passes ``backoff_at``


class RateLimitWarning(msgspec.Struct, frozen=True):
    """Calls are close to a rate limit: ours (``source="limiter"``) or the platform's own usage headers."""

    key: str
    ts: float
    source: Literal["limiter", "platform"]
    used_pct: float
    kind: Literal["ratelimit.warning"] = "ratelimit.warning"


ConnectorEvent = Event | RateLimitWarning


class Sink(Protocol):
    def emit(self, event: ConnectorEvent) -> None:
        """Take one event (budget alert, breaker change, rate-limit warning); must not raise."""
        ...


class NullSink:
    def emit(self, event: ConnectorEvent) -> None:
        pass


class Shield(msgspec.Struct):
    """What a *smart* connector carries from ``shield``; a basic connector has none of it."""

    budget: BudgetManager
    limiter: SlidingWindowLimiter
    breaker: CircuitBreaker
    fallback: FallbackPricer


class EventRelay:
    """The ``EventSink`` handed to the shield's objects: counts budget alerts, then forwards."""

    def __init__(self, stats: Stats, sink: Sink) -> None:
        self.stats = stats
        self.sink = sink

    def emit(self, event: Event) -> None:
        if isinstance(event, BudgetAlert):
            self.stats.budget_alerts += 1
            log.warning("budget alert %s: %.0f%% used", event.key, 100 * event.utilisation)
        self.sink.emit(event)


class Connector:
    def __init__(
        self,
        translator: Translator,
        transport: Transport,
        clock: Clock,
        *,
        name: str = "",
        shield: Shield | None = None,
        sink: Sink | None = None,
        warn_at: float = 0.8,
        backoff_at: float = 0.9,
        mock: bool = False,
    ) -> None:
        self.translator = translator
        self.transport = transport
        self.clock = clock
        self.platform = translator.platform
        self.name = name or self.platform
        self.shield = shield
        self.stats = Stats()
        self.sink: Sink = sink if sink is not None else NullSink()
        self.warn_at = warn_at  # share of a rate limit (ours or the platform's) that warns
        self.backoff_at = backoff_at  # share of the platform's reported usage at which we stop calling
        self.mock = mock
        self.connected = False
        self.placed_micros = 0  # booked by successful bids (what a basic connector knows of spend)
        self._blocked_until = 0.0
        self._warned = {"limiter": False, "platform": False}

    @property
    def budget(self) -> BudgetManager | None:
        return self.shield.budget if self.shield else None

    def breaker_open(self) -> bool:
        return self.shield is not None and self.shield.breaker.state in (BreakerState.OPEN,
                                                                          BreakerState.FORCED_OPEN)

    async def __aenter__(self) -> Connector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def connect(self) -> None:
        """Prove the credentials with one cheap read; raises a ``ConnectorError`` if they do not work."""
        self.translator.check(await self.transport.send(self.translator.ping()))
        self.connected = True

    async def place_bid(self, decision: BidDecision) -> BidResult:
        try:
            result = await self._place(decision)
        except ConnectorError as exc:
            self.stats.bids[_outcome(exc)] += 1
            raise
        self.stats.bids["placed" if result.placed else "fallback"] += 1
        return result

    async def get_status(self) -> dict[str, object]:
        status: dict[str, object] = {
            "name": self.name,
            "platform": self.platform,
            "smart": self.shield is not None,
            "mock": self.mock,
            "connected": self.connected,
            "backoff_s": max(0.0, self._blocked_until - self.clock.monotonic()),
            **self.stats.as_dict(),
        }
        if self.shield is not None:
            status["breaker"] = msgspec.structs.asdict(self.shield.breaker.stats())
            limiter = self.shield.limiter
            status["rate_limit"] = {"calls": limiter.limit.calls, "per_seconds": limiter.limit.per_seconds,
                                    "remaining": limiter.remaining()}
            status["fallback"] = msgspec.structs.asdict(self.shield.fallback.stats())
        return status

    async def get_budget_stats(self) -> dict[str, object]:
        if self.shield is None:
            return {"platform": self.platform, "max_budget": None, "spend": self.placed_micros,
                    "reserved": 0, "remaining": None, "utilisation": None}
        s = self.shield.budget.stats()
        return {"platform": self.platform, **msgspec.structs.asdict(s),
                "remaining": max(0, s.max_budget - s.spend - s.reserved)}

    # -- the pipeline ------------------------------------------------------------------------------

    async def _place(self, decision: BidDecision) -> BidResult:
        if decision.bid_micros <= 0 or decision.ltv_micros < 0 or decision.max_cpc_micros < 0:
            raise BadDecision(self.platform, "bid_micros must be > 0, ltv_micros and max_cpc_micros >= 0, "
                              f"got {decision.bid_micros}, {decision.ltv_micros}, {decision.max_cpc_micros}")
        if not decision.bid_id:
            decision = msgspec.structs.replace(decision, bid_id=uuid.uuid4().hex)
        requests = self.translator.requests(decision)  # a bad decision fails before any money moves
        if self.shield is None:
            start = self.clock.monotonic()
            ref = await self._send_all(requests)
            self.placed_micros += decision.bid_micros
            return self._result(decision, ref, self.clock.monotonic() - start)

        shield = self.shield
        if not shield.budget.reserve(decision.bid_id, decision.bid_micros):
            s = shield.budget.stats()
            used = (s.spend + s.reserved) / 1e6
            raise BudgetVeto(self.platform, decision.bid_micros,
                             f"${used:,.2f} of ${s.max_budget / 1e6:,.2f} already used")
        start = self.clock.monotonic()
        try:
            ref = await self._send_all(requests)
        except BreakerOpen as exc:
            shield.budget.release(decision.bid_id)
            return self._fallback(shield, decision, exc)
        except BaseException:
            shield.budget.release(decision.bid_id)
            raise
        shield.budget.commit(decision.bid_id, decision.bid_micros)
        shield.fallback.observe(decision.bid_micros / 1e6)  # what the fallback's median is made of
        self.placed_micros += decision.bid_micros
        return self._result(decision, ref, self.clock.monotonic() - start)

    async def _send_all(self, requests: list[PlatformRequest]) -> str:
        ref = ""
        for request in requests:
            ref = await self._call(request) or ref
        return ref

    async def _call(self, request: PlatformRequest) -> str:
        now = self.clock.monotonic()
        if now < self._blocked_until:
            raise Throttled(self.platform, "backoff", self._blocked_until - now,
                            "backing off: the platform reported its limit nearly used")
        shield = self.shield
        token = 0
        if shield is not None:
            wait = shield.limiter.try_acquire()
            if wait:
                raise RateLimited(self.platform, wait)
            self._check_limiter(shield.limiter)
            token = shield.breaker.allow()
            if token == REFUSED:
                raise BreakerOpen(self.platform, shield.breaker.state.value)
        start = self.clock.monotonic()
        try:
            response = await self.transport.send(request)
            elapsed = self.clock.monotonic() - start
            try:
                self._note_usage(self.translator.usage(response))
                ref = self.translator.parse(response)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                # a shape the translator did not foresee: a typed error, never a crash
                detail = f"{type(exc).__name__}: {exc}"
                raise MalformedResponse(self.platform, detail, response.status) from exc
        except Throttled as exc:
            self._back_off(exc.retry_after)
            self._record(token, self.clock.monotonic() - start, ok=True)
            raise
        except Exception as exc:
            self._record(token, self.clock.monotonic() - start, ok=not _breaker_bad(exc))
            raise
        self._record(token, elapsed, ok=True)
        return ref

    def _record(self, token: int, elapsed: float, ok: bool) -> None:
        self.stats.observe_call(elapsed, ok)
        if self.shield is not None:
            if ok:
                self.shield.breaker.record_success(token, elapsed)
            else:
                self.shield.breaker.record_failure(token)

    def _fallback(self, shield: Shield, decision: BidDecision, exc: BreakerOpen) -> BidResult:
        price = shield.fallback.fallback_bid(self.platform)
        if price is None:
            raise exc
        return BidResult(
            platform=self.platform, customer_id=decision.customer_id, campaign_id=decision.campaign_id,
            bid_id=decision.bid_id, ltv_micros=decision.ltv_micros, bid_micros=round(price * 1e6),
            explanation={**decision.explanation, "fallback": "breaker open: median of recent bids"},
            source="fallback", placed=False,
        )

    def _result(self, decision: BidDecision, ref: str, latency: float) -> BidResult:
        return BidResult(
            platform=self.platform, customer_id=decision.customer_id, campaign_id=decision.campaign_id,
            bid_id=decision.bid_id, ltv_micros=decision.ltv_micros, bid_micros=decision.bid_micros,
            explanation=decision.explanation, source="ai", placed=True,
            platform_ref=ref or decision.bid_id, latency_s=latency,
        )

    # -- rate-limit warnings and back-off --------------------------------------------------------------

    def _check_limiter(self, limiter: SlidingWindowLimiter) -> None:
        # remaining() walks the window (O(limit)); sampling every 2% of the limit keeps the warning
        # well ahead of the refusal at a fraction of the cost.
        calls = limiter.limit.calls
        if limiter.admitted % max(1, calls // 50) == 0:
            self._warn("limiter", 1 - limiter.remaining() / calls)

    def _note_usage(self, usage: Usage | None) -> None:
        if usage is None:
            return
        used = usage.pct / 100
        self._warn("platform", used)
        if used >= self.backoff_at:
            # Meta blocks at 100%; stopping short keeps the account usable for the calls that matter.
            self._back_off(max(usage.retry_after, USAGE_BACKOFF_S))

    def _back_off(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self.clock.monotonic() + seconds)

    def _warn(self, source: Literal["limiter", "platform"], used: float) -> None:
        if used < self.warn_at:
            self._warned[source] = False
            return
        if self._warned[source]:
            return
        self._warned[source] = True
        self.stats.rate_limit_warnings += 1
        log.warning("%s: %s rate limit %.0f%% used", self.name, source, 100 * used)
        self.sink.emit(RateLimitWarning(self.name, self.clock.time(), source, 100 * used))


def _breaker_bad(exc: Exception) -> bool:
    # An error *answer* below 500 is the platform working as designed; anything else (no answer, an
    # unreadable one, a 5xx, an exception we did not expect) is the platform misbehaving.
    if isinstance(exc, PlatformError) and not isinstance(exc, MalformedResponse):
        return exc.status is None or exc.status >= 500
    return True


def _outcome(exc: ConnectorError) -> str:
    if isinstance(exc, BudgetVeto):
        return "budget_veto"
    if isinstance(exc, Throttled):
        return "throttled"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, BreakerOpen):
        return "no_bid"
    return "error"
