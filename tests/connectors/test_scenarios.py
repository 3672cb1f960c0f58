"""The seed's platform scenarios, concurrency, rate limits and the factory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors import (
    KINDS,
    BadDecision,
    BudgetVeto,
    ConfigError,
    Connector,
    PlatformError,
    RateLimited,
    new_connector,
    usd,
)
from connectors.fake import FakePlatform, Reply
from shield import FakeClock

from .support import CREDENTIALS, PLATFORMS, decision, smart

pytestmark = pytest.mark.anyio


async def spend(conn: Connector) -> int:
    value = (await conn.get_budget_stats())["spend"]
    assert isinstance(value, int)
    return value


@pytest.mark.parametrize(
    ("platform", "bids", "refused"),
    [
        ("google_ads", [100, 75, 100], 300),  # $275 of $500, then $300 does not fit
        ("meta", [120, 100], 200),  # $220 of $400
        ("tradedesk", [150, 150, 150], 200),  # $450 of $600
    ],
)
async def test_seed_scenario_books_successful_bids_and_vetoes_the_one_over_budget(
    clock: FakeClock, platform: str, bids: list[int], refused: int
) -> None:
    conn = smart(platform, clock)
    for i, amount in enumerate(bids):
        result = await conn.place_bid(decision(amount, campaign=f"c{i}"))
        assert result.placed and result.source == "ai" and result.bid_micros == usd(amount)
    assert await spend(conn) == usd(sum(bids))
    with pytest.raises(BudgetVeto, match=rf"{platform}: budget veto for \${refused}"):
        await conn.place_bid(decision(refused))
    stats = await conn.get_budget_stats()
    assert stats["spend"] == usd(sum(bids)) and stats["rejected"] == 1 and stats["reserved"] == 0


async def test_three_platforms_at_once_keep_independent_totals(clock: FakeClock) -> None:
    caps = {"google_ads": 300, "meta": 200, "tradedesk": 250}
    conns = {p: smart(p, clock, budget=cap) for p, cap in caps.items()}
    results = await asyncio.gather(*(c.place_bid(decision(100)) for c in conns.values()))
    assert all(r.placed for r in results)
    for platform, conn in conns.items():
        stats = await conn.get_budget_stats()
        assert stats["spend"] == usd(100), platform
        assert stats["remaining"] == usd(caps[platform] - 100), platform


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_hundred_concurrent_15_dollar_bids_against_1000_accept_exactly_66(
    clock: FakeClock, platform: str
) -> None:
    conn = smart(platform, clock, budget=1000, rate_limit=1000)
    outcomes = await asyncio.gather(
        *(conn.place_bid(decision(15, bid_id=f"b{i}")) for i in range(100)), return_exceptions=True
    )
    placed = [o for o in outcomes if not isinstance(o, BaseException)]
    vetoed = [o for o in outcomes if isinstance(o, BudgetVeto)]
    assert (len(placed), len(vetoed)) == (66, 34)
    assert await spend(conn) == usd(990)
    assert conn.stats.bids["placed"] == 66 and conn.stats.bids["budget_veto"] == 34


@pytest.mark.parametrize(
    ("platform", "calls", "window"),
    [("google_ads", 100, 60.0), ("meta", 200, 3600.0), ("tradedesk", 300, 60.0), ("tiktok", 600, 60.0)],
)
async def test_rate_limiter_stops_calls_at_the_platform_limit(
    clock: FakeClock, platform: str, calls: int, window: float
) -> None:
    fake = FakePlatform(platform, clock)
    conn = smart(platform, clock, fake, budget=1_000_000)
    with pytest.raises(RateLimited) as refused:
        for i in range(calls + 1):
            await conn.place_bid(decision(1, bid_id=f"b{i}"))
    assert len(fake.requests) == calls
    assert refused.value.retry_after == pytest.approx(window)
    assert (await conn.get_budget_stats())["reserved"] == 0
    clock.advance(window)
    assert (await conn.place_bid(decision(1, bid_id="after"))).placed


async def test_rate_limited_decision_books_nothing(clock: FakeClock) -> None:
    conn = smart("tradedesk", clock, rate_limit=2)
    for i in range(2):
        await conn.place_bid(decision(10, bid_id=f"b{i}"))
    with pytest.raises(RateLimited):
        await conn.place_bid(decision(10, bid_id="b2"))
    assert await spend(conn) == usd(20)
    assert conn.stats.bids["rate_limited"] == 1


async def test_budget_recovers_after_the_sliding_window(clock: FakeClock) -> None:
    conn = smart("google_ads", clock)
    await conn.place_bid(decision(275))
    with pytest.raises(BudgetVeto):
        await conn.place_bid(decision(300))
    clock.advance(601)
    assert (await conn.place_bid(decision(300))).placed


async def test_failed_platform_call_releases_the_reservation(clock: FakeClock) -> None:
    fake = FakePlatform("meta", clock)
    fake.push(Reply(status=500, json={"error": {"message": "boom", "code": 2}}))
    conn = smart("meta", clock, fake, budget=100)
    with pytest.raises(PlatformError):
        await conn.place_bid(decision(100))
    assert (await conn.place_bid(decision(100))).placed  # the full $100 is still there


async def test_zero_bid_is_a_bad_decision_and_reserves_nothing(clock: FakeClock) -> None:
    conn = smart("google_ads", clock)
    with pytest.raises(BadDecision, match="bid_micros must be > 0"):
        await conn.place_bid(decision(0, ltv=10))
    assert (await conn.get_budget_stats())["accepted"] == 0


async def test_basic_kind_has_no_budget_and_only_tallies_spend(clock: FakeClock) -> None:
    fake = FakePlatform("google_ads", clock)
    conn = new_connector("google_ads", mock=True, clock=clock, client=fake.client(), env={})
    assert conn.shield is None and conn.budget is None
    await conn.place_bid(decision(400))
    await conn.place_bid(decision(400))  # past the smart kind's $500: a basic connector does not check
    stats = await conn.get_budget_stats()
    assert stats["spend"] == usd(800) and stats["max_budget"] is None


# -- the factory ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_factory_builds_every_kind_in_mock_mode_without_credentials(kind: str) -> None:
    async with new_connector(kind, mock=True, env={}) as conn:
        await conn.connect()
        assert conn.connected and conn.mock
        assert conn.platform == kind.removesuffix("_smart")
        assert (conn.shield is not None) == kind.endswith("_smart")
        assert (await conn.place_bid(decision(10))).placed
        status = await conn.get_status()
        assert status["name"] == kind and status["bids"] == {**status["bids"], "placed": 1}  # type: ignore[dict-item]


def test_factory_knows_the_eight_kinds() -> None:
    assert set(KINDS) == {f"{p}{s}" for p in ("google_ads", "meta", "tradedesk", "tiktok") for s in ("", "_smart")}


def test_factory_reads_credentials_and_budget_from_the_environment() -> None:
    env = {"GOOGLE_ADS_API_KEY": "k-env", "GOOGLE_ADS_CUSTOMER_ID": "111-222-3333", "GOOGLE_ADS_BUDGET": "750"}
    conn = new_connector("google_ads_smart", env=env)
    assert conn.translator.headers["developer-token"] == "k-env"  # type: ignore[attr-defined]
    assert conn.translator.customer_id == "1112223333"  # type: ignore[attr-defined]
    assert conn.budget is not None and conn.budget.max_budget == usd(750)


def test_explicit_arguments_win_over_the_environment() -> None:
    env = {"META_ACCESS_TOKEN": "env-token", "META_BUSINESS_ID": "1", "META_BUDGET": "900"}
    conn = new_connector("meta_smart", env=env, access_token="arg-token", budget=123.45)
    assert conn.translator.headers["authorization"] == "Bearer arg-token"  # type: ignore[attr-defined]
    assert conn.budget is not None and conn.budget.max_budget == usd(123.45)


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("bing_ads", {}, "unknown connector kind; known: google_ads, google_ads_smart"),
        ("tradedesk_smart", {"api_key": "k"}, "missing partner_id: pass partner_id=... or set TRADEDESK_PARTNER_ID"),
        ("tradedesk", {"api_key": "k", "partner_id": "p"},
         r"missing notice_secret: pass notice_secret=\.\.\. or set TRADEDESK_NOTICE_SECRET \(or RTB_NOTICE_SECRET\)"),
        ("tradedesk", {"api_key": "k", "partner_id": "p", "notice_secret": "s", "bid_ttl": "soon"},
         "bid_ttl must be a whole number of seconds > 0, got 'soon'"),
        ("meta", {"access_token": "t", "business_id": "b", "budgett": 5}, r"unknown option\(s\) budgett"),
        ("tiktok_smart", {"access_token": "t", "advertiser_id": "a", "budget": "lots"}, "budget must be a number"),
        ("tiktok_smart", {"access_token": "t", "advertiser_id": "a", "budget": -5}, "budget must be a finite"),
        ("meta_smart", {"access_token": "t", "business_id": "b", "rate_limit": 0}, "needs calls >= 1"),
        ("meta_smart", {"access_token": "t", "business_id": "b", "reset_timeout": -1}, "reset_timeout must be > 0"),
    ],
)
def test_factory_refuses_bad_configuration_naming_what_is_wrong(kind: str, config: dict[str, Any],
                                                                message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        new_connector(kind, env={}, **config)


async def test_connect_reports_bad_credentials_as_a_platform_error(clock: FakeClock) -> None:
    fake = FakePlatform("tiktok", clock)
    fake.push(Reply(json={"code": 40105, "message": "Access token is incorrect or has been revoked."}))
    conn = smart("tiktok", clock, fake)
    with pytest.raises(PlatformError, match="40105"):
        await conn.connect()
    assert not conn.connected
    assert fake.requests[0].url.params["advertiser_ids"] == '["7000000001"]'
    assert fake.requests[0].headers["access-token"] == CREDENTIALS["tiktok"]["access_token"]
