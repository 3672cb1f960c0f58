import pytest

from shield import AmountError, BudgetAlert, BudgetManager, ConfigError, FakeClock, MemorySink

USD = 1_000_000


def manager(cap: int = 1000 * USD, **kw: object) -> tuple[BudgetManager, FakeClock]:
    clock = FakeClock()
    return BudgetManager(cap, clock=clock, **kw), clock  # type: ignore[arg-type]


def test_spend_up_to_the_cap_is_accepted_and_beyond_refused() -> None:
    b, _ = manager(100)
    assert b.try_spend(60)
    assert b.try_spend(40)  # exactly at the cap
    assert not b.try_spend(1)
    s = b.stats()
    assert (s.spend, s.accepted, s.rejected, s.utilisation) == (100, 2, 1, 1.0)


def test_can_spend_answers_without_booking() -> None:
    b, _ = manager(100)
    assert b.can_spend(100)
    assert not b.can_spend(101)
    assert b.stats().spend == 0


def test_spend_still_counts_exactly_at_the_window_edge() -> None:
    b, clock = manager(100)
    clock.advance(100.0)
    assert b.try_spend(100)
    clock.advance(600.0)  # exactly window_seconds later
    assert not b.can_spend(1)
    clock.advance(0.999)
    assert not b.can_spend(1)


def test_budget_recovers_one_bucket_after_the_window_edge() -> None:
    b, clock = manager(100)
    clock.advance(100.0)
    assert b.try_spend(100)
    clock.advance(601.0)
    assert b.try_spend(100)
    assert b.stats().spend == 100


def test_no_interval_of_window_length_holds_more_than_the_cap() -> None:
    # Spend late in one second and try again 599.6 s later: a per-second ring that let the first
    # second go at 600.0 would admit 2x the cap inside those 599.6 s.
    b, clock = manager(100)
    clock.advance(100.9)
    assert b.try_spend(100)
    clock.advance(599.6)
    assert not b.try_spend(1)


def test_window_spend_rolls_out_second_by_second() -> None:
    b, clock = manager(1000)
    for _ in range(5):
        assert b.try_spend(10)
        clock.advance(1.0)
    clock.advance(596.0)  # now 601: the spend of second 0 is gone
    assert b.stats().spend == 40
    clock.advance(2.0)
    assert b.stats().spend == 20


def test_long_idle_clears_the_whole_window() -> None:
    b, clock = manager(100)
    assert b.try_spend(100)
    clock.advance(10_000.0)
    assert b.stats().spend == 0
    assert b.try_spend(100)


def test_lifetime_budget_never_recovers() -> None:
    b, clock = manager(100, window_seconds=None)
    assert b.try_spend(100)
    clock.advance(10 * 365 * 86_400.0)
    assert not b.try_spend(1)
    assert b.stats().window_seconds is None


def test_long_window_uses_coarse_buckets_and_keeps_money_at_least_the_window() -> None:
    b, clock = manager(100, window_seconds=86_400.0)  # buckets of 144 s by default
    assert b.try_spend(100)
    clock.advance(86_400.0 + 143.0)
    assert not b.can_spend(1)
    clock.advance(1.0)
    assert b.can_spend(100)


def test_add_spend_books_even_past_the_cap() -> None:
    b, _ = manager(100)
    b.add_spend(150)
    s = b.stats()
    assert (s.spend, s.booked_micros, s.utilisation) == (150, 150, 1.5)
    assert not b.try_spend(0 + 1)


def test_set_max_budget_changes_the_cap_and_keeps_the_money() -> None:
    b, _ = manager(100)
    assert b.try_spend(80)
    b.set_max_budget(200)
    assert b.try_spend(120)
    b.set_max_budget(50)
    assert not b.try_spend(1)
    assert b.stats().spend == 200


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10", None])
def test_bad_amounts_are_refused_with_the_budget_named(bad: object) -> None:
    b, _ = manager(100, key="campaign:c1:window")
    for call in (b.try_spend, b.add_spend, b.can_spend, lambda a: b.reserve("x", a), lambda a: b.commit("x", a)):
        with pytest.raises(AmountError, match="campaign:c1:window"):
            call(bad)
    assert b.stats().spend == 0


@pytest.mark.parametrize(
    "kw, what",
    [
        ({"max_budget": -5}, "max_budget"),
        ({"max_budget": 10.0}, "max_budget"),
        ({"window_seconds": 0}, "window_seconds"),
        ({"window_seconds": float("nan")}, "window_seconds"),
        ({"bucket_seconds": 0}, "bucket_seconds"),
        ({"window_seconds": 1e9, "bucket_seconds": 1.0}, "buckets"),
        ({"window_seconds": 60.0}, "expiry_seconds"),  # default expiry 600 s > window
        ({"expiry_seconds": 0}, "expiry_seconds"),
        ({"alert_at": 1.5}, "alert_at"),
        ({"rearm_below": 0.9}, "rearm_below"),
    ],
)
def test_bad_configuration_is_refused_naming_the_setting(kw: dict[str, object], what: str) -> None:
    args: dict[str, object] = {"max_budget": 100, **kw}
    with pytest.raises((ConfigError, AmountError), match=what):
        BudgetManager(clock=FakeClock(), **args)  # type: ignore[arg-type]


def test_alert_fires_once_when_utilisation_crosses_80_percent() -> None:
    sink = MemorySink()
    b, _ = manager(1000, key="platform:meta", sink=sink)
    assert b.try_spend(799)
    assert sink.events == []
    assert b.try_spend(1)  # 80.0 %
    assert b.try_spend(100)
    assert b.try_spend(100)
    assert len(sink.events) == 1
    alert = sink.events[0]
    assert isinstance(alert, BudgetAlert)
    assert (alert.kind, alert.key, alert.spend, alert.max_budget, alert.utilisation) == (
        "budget.alert",
        "platform:meta",
        800,
        1000,
        0.8,
    )


def test_alert_fires_again_only_after_falling_back_below() -> None:
    sink = MemorySink()
    b, clock = manager(1000, sink=sink)
    assert b.try_spend(900)
    clock.advance(300.0)
    assert b.try_spend(50)  # still above: no second alert
    assert len(sink.events) == 1
    clock.advance(301.0)  # the 900 leaves the window: 5 %, re-armed
    assert b.stats().utilisation == 0.05
    assert b.try_spend(800)
    assert len(sink.events) == 2


def test_alert_counts_reservations_and_rearms_on_release() -> None:
    sink = MemorySink()
    b, _ = manager(1000, sink=sink)
    assert b.reserve("bid-1", 850)
    assert len(sink.events) == 1 and sink.events[0].reserved == 850  # type: ignore[union-attr]
    assert b.release("bid-1")
    assert b.reserve("bid-2", 850)
    assert len(sink.events) == 2


def test_alert_hysteresis_waits_for_the_rearm_level() -> None:
    sink = MemorySink()
    b, _ = manager(1000, sink=sink, rearm_below=0.5)
    assert b.reserve("a", 700)
    assert b.reserve("b", 200)  # 90 %: alert
    b.release("b")  # 70 %: below 80 % but not below 50 %
    assert b.reserve("c", 200)
    assert len(sink.events) == 1
    b.release("c")
    b.release("a")  # 0 %: re-armed
    assert b.try_spend(900)
    assert len(sink.events) == 2


def test_alert_is_emitted_with_the_wall_clock_time() -> None:
    sink = MemorySink()
    b, clock = manager(10, sink=sink)
    clock.advance(42.0)
    b.add_spend(10)
    assert sink.events[0].ts == clock.time()
