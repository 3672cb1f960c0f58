"""A misbehaving fake platform opens the breaker; decisions fall back; the breaker recovers.

Slowness is the fake platform moving the fake clock while it "works", never a real sleep.
"""

from __future__ import annotations

import pytest

from connectors import BreakerOpen, PlatformError, PlatformTimeout, usd
from connectors.fake import FakePlatform, Reply
from shield import FakeClock
from shield.breaker import BreakerState

from .support import Recorder, decision, smart

pytestmark = pytest.mark.anyio


async def test_three_slow_calls_open_the_breaker_and_decisions_fall_back(clock: FakeClock) -> None:
    fake = FakePlatform("tradedesk", clock, latency=0.6)
    conn = smart("tradedesk", clock, fake)
    for amount in (10, 20, 30):
        # a slow call still succeeded on the platform, so its money is booked
        assert (await conn.place_bid(decision(amount))).placed
    assert conn.shield is not None and conn.shield.breaker.state is BreakerState.OPEN
    calls = len(fake.requests)

    result = await conn.place_bid(decision(50))

    assert result.source == "fallback" and not result.placed
    assert result.bid_micros == usd(20)  # median of the placed bids x tradedesk's 1.0
    assert len(fake.requests) == calls, "no platform call while open"
    stats = await conn.get_budget_stats()
    assert stats["spend"] == usd(60) and stats["reserved"] == 0
    assert conn.stats.bids["fallback"] == 1


async def test_three_failing_calls_open_the_breaker(clock: FakeClock) -> None:
    fake = FakePlatform("meta", clock)
    conn = smart("meta", clock, fake)
    await conn.place_bid(decision(40))
    fake.push(Reply(status=500, json={"error": {"message": "unknown error", "code": 1}}),
              Reply(timeout=True),
              Reply(status=200, body="not json"))
    for expected in (PlatformError, PlatformTimeout, PlatformError):
        with pytest.raises(expected):
            await conn.place_bid(decision(40))
    result = await conn.place_bid(decision(40))
    assert result.source == "fallback" and result.bid_micros == usd(40)
    assert (await conn.get_budget_stats())["spend"] == usd(40)


async def test_fallback_bid_uses_the_platform_multiplier(clock: FakeClock) -> None:
    fake = FakePlatform("tiktok", clock, latency=0.6)
    conn = smart("tiktok", clock, fake, failure_threshold=2)  # two slow calls per decision
    await conn.place_bid(decision(10))
    result = await conn.place_bid(decision(10))
    assert result.source == "fallback" and result.bid_micros == usd(15)  # tiktok: 1.5x


async def test_client_errors_do_not_open_the_breaker(clock: FakeClock) -> None:
    fake = FakePlatform("meta", clock)
    conn = smart("meta", clock, fake)
    for _ in range(3):
        fake.push(Reply(status=400, json={"error": {"message": "Invalid parameter", "code": 100}}))
        with pytest.raises(PlatformError):
            await conn.place_bid(decision(5))
    assert conn.shield is not None and conn.shield.breaker.state is BreakerState.CLOSED
    assert (await conn.place_bid(decision(5))).source == "ai"


async def test_breaker_recovers_after_the_reset_timeout(clock: FakeClock) -> None:
    fake = FakePlatform("google_ads", clock)
    sink = Recorder()
    conn = smart("google_ads", clock, fake, sink=sink)
    await conn.place_bid(decision(10))
    fake.push(*[Reply(timeout=True)] * 3)
    for _ in range(3):
        with pytest.raises(PlatformTimeout):
            await conn.place_bid(decision(10))
    assert conn.breaker_open()
    clock.advance(29.9)
    assert (await conn.place_bid(decision(10))).source == "fallback"

    clock.advance(0.1)  # reset timeout (30 s) passed: probes go through; 2 good ones close it
    result = await conn.place_bid(decision(10))  # two calls (campaign, budget): two good probes
    assert result.source == "ai" and result.placed
    assert conn.shield is not None and conn.shield.breaker.state is BreakerState.CLOSED
    changes = [(e.old, e.new) for e in sink.events if e.kind == "breaker.state_changed"]
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


async def test_open_breaker_without_history_is_no_bid(clock: FakeClock) -> None:
    fake = FakePlatform("meta", clock)
    conn = smart("meta", clock, fake)
    assert conn.shield is not None
    conn.shield.breaker.force_open()
    with pytest.raises(BreakerOpen, match="meta: circuit breaker forced_open"):
        await conn.place_bid(decision(10))
    assert not fake.requests
    assert (await conn.get_budget_stats())["reserved"] == 0
    assert conn.stats.bids["no_bid"] == 1
