"""Budget alerts at 80%, rate-limit warnings before throttling, and the Prometheus collector."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from connectors import BudgetVeto, ConnectorCollector, RateLimited, RateLimitWarning
from connectors.fake import FakePlatform, Reply
from shield import BudgetAlert, FakeClock

from .support import Recorder, decision, smart

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("platform", "cap"), [("google_ads", 500), ("meta", 400), ("tradedesk", 600)])
async def test_budget_alert_once_when_a_platform_crosses_80_percent(
    clock: FakeClock, platform: str, cap: int
) -> None:
    sink = Recorder()
    conn = smart(platform, clock, sink=sink)
    await conn.place_bid(decision(cap * 0.79))
    assert not [e for e in sink.events if isinstance(e, BudgetAlert)]
    await conn.place_bid(decision(cap * 0.01))  # now exactly 80%
    await conn.place_bid(decision(cap * 0.1))
    alerts = [e for e in sink.events if isinstance(e, BudgetAlert)]
    assert len(alerts) == 1 and alerts[0].utilisation == pytest.approx(0.8)
    assert alerts[0].key == f"platform:{platform}"
    assert conn.stats.budget_alerts == 1


async def test_rate_limit_warning_comes_before_the_limiter_refuses(clock: FakeClock) -> None:
    sink = Recorder()
    conn = smart("tradedesk", clock, sink=sink, rate_limit=10)
    seen: list[str] = []
    for i in range(11):
        try:
            await conn.place_bid(decision(1, bid_id=f"b{i}"))
            seen.append("ok")
        except RateLimited:
            seen.append("refused")
        if any(isinstance(e, RateLimitWarning) for e in sink.events) and "warned" not in seen:
            seen.append("warned")
    assert seen.index("warned") == 8  # after the 8th of 10 calls (80%)
    assert seen[-1] == "refused"
    warnings = [e for e in sink.events if isinstance(e, RateLimitWarning)]
    assert len(warnings) == 1 and warnings[0].source == "limiter"
    assert conn.stats.rate_limit_warnings == 1


async def test_meta_usage_header_warns_at_80_percent_and_keeps_calling(clock: FakeClock) -> None:
    sink = Recorder()
    fake = FakePlatform("meta", clock)
    fake.headers = {"x-business-use-case-usage": json.dumps(
        {"1122334455": [{"type": "ads_management", "call_count": 85, "total_cputime": 10, "total_time": 10,
                         "estimated_time_to_regain_access": 0}]})}
    conn = smart("meta", clock, fake, sink=sink)
    for i in range(3):
        assert (await conn.place_bid(decision(5, bid_id=f"b{i}"))).placed
    warnings = [e for e in sink.events if isinstance(e, RateLimitWarning)]
    assert [(w.source, w.used_pct) for w in warnings] == [("platform", 85.0)]


async def test_meta_usage_at_90_percent_backs_off_before_meta_blocks(clock: FakeClock) -> None:
    fake = FakePlatform("meta", clock)
    fake.push(Reply(json={"success": True}, headers={"x-app-usage": json.dumps({"call_count": 91})}))
    conn = smart("meta", clock, fake)
    await conn.place_bid(decision(5))
    with pytest.raises(RateLimited, match="backing off"):
        await conn.place_bid(decision(5))
    assert len(fake.requests) == 1
    clock.advance(60)
    assert (await conn.place_bid(decision(5))).placed


async def test_collector_exposes_calls_vetoes_and_response_times(clock: FakeClock) -> None:
    fake = FakePlatform("tradedesk", clock, latency=0.2)
    conn = smart("tradedesk", clock, fake, budget=100)
    other = smart("meta", clock)
    for amount in (40, 40, 40):  # the third is vetoed
        try:
            await conn.place_bid(decision(amount))
        except BudgetVeto:
            pass
    fake.push(Reply(status=503, body="down"))
    with pytest.raises(Exception, match="503"):
        await conn.place_bid(decision(10))
    registry = CollectorRegistry()
    registry.register(ConnectorCollector(lambda: [conn, other]))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"connector": "tradedesk_smart", "platform": "tradedesk", **labels})

    assert value("rtb_connector_bids_total", outcome="placed") == 2
    assert value("rtb_connector_bids_total", outcome="budget_veto") == 1
    assert value("rtb_connector_bids_total", outcome="error") == 1
    assert value("rtb_connector_budget_veto_rate") == pytest.approx(1 / 4)
    assert value("rtb_connector_calls_total", result="ok") == 2
    assert value("rtb_connector_calls_total", result="failed") == 1
    assert value("rtb_connector_response_seconds_count") == 3
    assert value("rtb_connector_response_seconds_sum") == pytest.approx(0.6)
    assert value("rtb_connector_response_seconds_bucket", le="0.25") == 3
    assert value("rtb_connector_budget_utilisation") == pytest.approx(0.8)
    assert value("rtb_connector_breaker_open") == 0
    assert registry.get_sample_value("rtb_connector_bids_total",
                                     {"connector": "meta_smart", "platform": "meta", "outcome": "placed"}) == 0
    assert b"rtb_connector_budget_veto_rate" in generate_latest(registry)


async def test_status_shows_breaker_limiter_and_fallback(clock: FakeClock) -> None:
    conn = smart("google_ads", clock)
    await conn.place_bid(decision(10))
    status = await conn.get_status()
    assert status["breaker"]["state"] == "closed"  # type: ignore[index]
    assert status["rate_limit"] == {"calls": 100, "per_seconds": 60.0, "remaining": 98}
    assert status["fallback"]["samples"] == 1  # type: ignore[index]
    assert status["calls"] == {"ok": 2, "failed": 0}
