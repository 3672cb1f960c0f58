import math

import numpy as np
import pytest

from shield import AmountError, BudgetManager, ConfigError, FakeClock, Pacer

USD = 1_000_000
DAY = 86_400


def simulate_day(mode: str, cap: int, seed: int = 7) -> tuple[list[int], Pacer]:
    """A day of traffic that could buy ~8x a $150 cap (2x even at night): returns spend per hour.

    Requests arrive every second (4 to 16 a second, a diurnal curve plus Poisson noise), each costing a
    random CPM of $1-$5 when it wins; half the bids win. The daily BudgetManager is the hard cap; the pacer
    decides which requests even try.
    """
    rng = np.random.default_rng(seed)
    clock = FakeClock()
    daily = BudgetManager(cap, DAY, clock, bucket_seconds=60.0)
    pacer = Pacer(cap, clock, mode=mode)  # type: ignore[arg-type]
    hourly = [0] * 24
    rate = 10 + 6 * np.sin(np.arange(DAY) * 2 * math.pi / DAY - math.pi / 2)
    arrivals = rng.poisson(rate).tolist()
    total = int(sum(arrivals))
    draws = rng.random(total).tolist()
    wins = (rng.random(total) < 0.5).tolist()
    costs = (rng.integers(1000, 5001, total)).tolist()  # $1-$5 CPM -> micros per impression
    i = 0
    for second in range(DAY):
        for _ in range(arrivals[second]):
            if pacer.allow(draws[i]) and wins[i] and daily.try_spend(costs[i]):
                pacer.record(costs[i])
                hourly[second // 3600] += costs[i]
            i += 1
        clock.advance(1.0)
    return hourly, pacer


def test_even_pacing_spends_the_daily_cap_through_the_whole_day() -> None:
    cap = 150 * USD
    hourly, _ = simulate_day("even", cap)
    spent = sum(hourly)
    assert spent <= cap
    assert spent >= 0.98 * cap
    share = cap / 24
    assert max(hourly) <= 2 * share, [round(h / share, 2) for h in hourly]
    assert min(hourly) >= 0.5 * share  # and no hour starves either


def test_asap_pacing_spends_as_fast_as_traffic_allows_and_stops_at_the_cap() -> None:
    cap = 150 * USD
    hourly, pacer = simulate_day("asap", cap)
    assert sum(hourly) <= cap
    assert sum(hourly[:6]) >= 0.98 * cap
    assert pacer.rate == 1.0


def test_rate_falls_when_spend_runs_ahead_of_plan() -> None:
    clock = FakeClock()
    p = Pacer(1440 * USD, clock)  # plan: $1 a minute
    p.record(10 * USD)
    clock.advance(60.0)
    assert p.allow(0.0)
    assert p.rate == pytest.approx(0.1)  # bounded step down: x0.1 per minute at most


def test_rate_follows_plan_over_actual_within_the_step_bounds() -> None:
    clock = FakeClock()
    p = Pacer(1440 * USD, clock, initial_rate=0.5)
    p.record(USD * 4 // 3)  # a third too much
    clock.advance(60.0)
    p.allow(0.0)
    assert p.rate == pytest.approx(0.5 * 0.75, rel=1e-3)


def test_rate_rises_when_spend_is_behind_plan_but_never_above_one() -> None:
    clock = FakeClock()
    p = Pacer(1440 * USD, clock, initial_rate=0.3)
    clock.advance(60.0)
    p.allow(0.0)
    assert p.rate == pytest.approx(0.6)  # nothing spent: bounded step up, x2
    clock.advance(60.0)
    p.allow(0.0)
    assert p.rate == 1.0


def test_allow_passes_draws_below_the_rate() -> None:
    p = Pacer(USD, FakeClock(), initial_rate=0.25)
    assert p.allow(0.0) and p.allow(0.2499)
    assert not p.allow(0.25) and not p.allow(0.99)


def test_plan_spreads_what_is_left_over_the_rest_of_the_day() -> None:
    clock = FakeClock()
    p = Pacer(1440 * USD, clock)
    assert p.stats().slot_plan == USD
    clock.advance(720 * 60.0)  # noon, nothing spent: $1440 over 720 minutes
    p.record(0)
    p.allow(0.5)
    assert p.stats().slot_plan == 2 * USD


def test_a_new_day_starts_with_the_whole_budget() -> None:
    clock = FakeClock()
    p = Pacer(1440 * USD, clock)
    clock.advance(60.0)
    p.allow(0.5)
    p.record(1000 * USD)
    clock.advance(DAY - 60.0)  # next midnight
    p.allow(0.5)
    s = p.stats()
    assert (s.day_spend, s.slot_plan) == (0, USD)


def test_days_follow_the_configured_utc_offset() -> None:
    clock = FakeClock()  # midnight UTC
    p = Pacer(1440 * USD, clock, utc_offset_seconds=-3600.0)  # 23:00 local
    assert p.stats().slot_plan == 1440 * USD / 60  # the last hour of the local day


def test_set_daily_budget_replans_the_day() -> None:
    p = Pacer(1440 * USD, FakeClock())
    p.set_daily_budget(2880 * USD)
    assert p.stats().slot_plan == 2 * USD


def test_spend_past_the_budget_drives_the_plan_to_zero() -> None:
    clock = FakeClock()
    p = Pacer(USD, clock)
    p.record(2 * USD)
    clock.advance(60.0)
    p.allow(0.5)
    assert p.stats().slot_plan == 0.0
    assert p.rate < 1.0


def test_bad_spend_is_refused() -> None:
    p = Pacer(USD, FakeClock())
    for bad in (-1, 1.5):
        with pytest.raises(AmountError, match="spend_micros"):
            p.record(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kw",
    [
        {"mode": "fast"},
        {"slot_seconds": 7.0},
        {"initial_rate": 0.0},
        {"min_rate": 0.5, "initial_rate": 0.1},
        {"max_step_up": 1.0},
        {"max_step_down": 1.0},
    ],
)
def test_bad_configuration_is_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="pacing"):
        Pacer(USD, FakeClock(), **kw)  # type: ignore[arg-type]
