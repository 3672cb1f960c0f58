import pytest

from shield import (
    Budgets,
    ConfigError,
    DuplicateReservation,
    FakeClock,
    campaign_key,
    commit_all,
    first_refusal,
    platform_key,
    release_all,
    reserve_all,
)


def book() -> tuple[Budgets, FakeClock]:
    clock = FakeClock()
    return Budgets(clock), clock


def test_keys_name_the_platform_and_the_campaign_scope() -> None:
    assert platform_key("meta") == "platform:meta"
    assert campaign_key("c1") == "campaign:c1:window"
    assert campaign_key("c1", "daily") == "campaign:c1:daily"


def test_ensure_creates_once_and_updates_the_cap() -> None:
    budgets, _ = book()
    a = budgets.ensure("k", 100)
    assert a.try_spend(100)
    b = budgets.ensure("k", 200)
    assert b is a
    assert b.try_spend(100)
    assert "k" in budgets and len(budgets) == 1 and list(budgets) == ["k"]
    assert budgets.stats()["k"].spend == 200


def test_ensure_refuses_to_change_the_window_of_an_existing_budget() -> None:
    budgets, _ = book()
    budgets.ensure("k", 100, 600.0)
    with pytest.raises(ConfigError, match="'k'.*window_seconds=600.0"):
        budgets.ensure("k", 100, 86_400.0)


def test_get_of_an_unknown_key_names_it() -> None:
    budgets, _ = book()
    with pytest.raises(ConfigError, match="'nope'"):
        budgets.get("nope")
    budgets.ensure("k", 1)
    budgets.drop("k")
    assert "k" not in budgets


def test_short_windows_get_an_expiry_that_fits_them() -> None:
    budgets, clock = book()
    m = budgets.ensure("k", 100, 60.0)
    assert m.reserve("b", 100)
    clock.advance(60.0)
    assert m.stats().expired == 1


def test_reserve_all_holds_the_bid_in_every_budget() -> None:
    budgets, _ = book()
    ms = [budgets.ensure(k, 1000) for k in ("platform:meta", "campaign:c1:window", "campaign:c1:daily")]
    assert reserve_all(ms, "b1", 300)
    assert [m.stats().reserved for m in ms] == [300, 300, 300]
    commit_all(ms, "b1", 120)
    assert [m.stats().spend for m in ms] == [120, 120, 120]
    assert reserve_all(ms, "b2", 300)
    release_all(ms, "b2")
    assert [m.stats().reserved for m in ms] == [0, 0, 0]


def test_reserve_all_refused_by_one_holds_nothing_anywhere() -> None:
    budgets, _ = book()
    platform = budgets.ensure("platform:meta", 1000)
    window = budgets.ensure("campaign:c1:window", 1000)
    daily = budgets.ensure("campaign:c1:daily", 200, 86_400.0)
    ms = [platform, window, daily]
    assert not reserve_all(ms, "b1", 300)
    for m in ms:
        s = m.stats()
        assert (s.reserved, s.live_reservations, s.accepted) == (0, 0, 0)
    assert daily.stats().rejected == 1
    assert first_refusal(ms, 300) is daily
    assert first_refusal(ms, 200) is None


def test_reserve_all_rolls_back_when_a_budget_raises() -> None:
    budgets, _ = book()
    a, b = budgets.ensure("a", 1000), budgets.ensure("b", 1000)
    assert b.reserve("b1", 5)
    with pytest.raises(DuplicateReservation):
        reserve_all([a, b], "b1", 10)
    assert a.stats().reserved == 0
    assert b.stats().reserved == 5


def test_platform_and_campaign_budgets_are_independent() -> None:
    budgets, _ = book()
    meta = budgets.ensure(platform_key("meta"), 1000)
    c1 = budgets.ensure(campaign_key("c1"), 100)
    c2 = budgets.ensure(campaign_key("c2"), 100)
    assert reserve_all([meta, c1], "x1", 100)
    assert not reserve_all([meta, c1], "x2", 1)
    assert reserve_all([meta, c2], "x2", 100)
    assert meta.stats().reserved == 200
