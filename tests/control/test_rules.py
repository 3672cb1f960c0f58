"""Threshold rules: validation, metric values, evaluation, and the clock-driven schedule."""

from __future__ import annotations

import math

import msgspec
import pytest

from control.clock import FakeClock
from control.rules import (
    Firing,
    Rule,
    RuleError,
    Scheduler,
    WindowTotals,
    evaluate,
    metric_value,
    parse_duration,
    validate,
)

USD = 1_000_000
T = WindowTotals("c1", spend_micros=100 * USD, revenue_micros=42 * USD, impressions=10_000, clicks=150,
                 conversions=4, bids=1000, wins=250)


def rule(**kw: object) -> Rule:
    base: dict[str, object] = {"id": "r1", "metric": "roas", "operator": "<", "threshold": 0.5,
                               "window": "24h", "action": "pause"}
    return msgspec.convert(base | kw, Rule)


class Source:
    """A metrics store double that remembers what it was asked for."""

    def __init__(self, totals: list[WindowTotals]) -> None:
        self.totals = totals
        self.calls: list[tuple[str | None, float, float]] = []

    def window_totals(self, campaign_id: str | None, start: float, end: float) -> list[WindowTotals]:
        self.calls.append((campaign_id, start, end))
        return self.totals


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("24h", 86400),
                                               ("7d", 604800), ("2w", 1209600)])
def test_durations_parse_to_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0h", "1y", "h", "1.5h", "-1h", "1 h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(RuleError, match="window must be a positive duration"):
        parse_duration(text)


@pytest.mark.parametrize(("metric", "value"), [("roas", 0.42), ("cpa", 25.0), ("spend", 100.0),
                                               ("ctr", 0.015), ("win_rate", 0.25)])
def test_metric_values_from_window_totals(metric: str, value: float) -> None:
    assert metric_value(metric, T) == pytest.approx(value)


def test_undefined_metrics_are_none_not_errors() -> None:
    empty = WindowTotals("c1")
    assert [metric_value(m, empty) for m in ("roas", "cpa", "ctr", "win_rate")] == [None] * 4
    assert metric_value("spend", empty) == 0.0


def test_cpa_without_conversions_is_infinite_and_fires_a_cpa_ceiling() -> None:
    no_conv = WindowTotals("c1", spend_micros=80 * USD)
    assert metric_value("cpa", no_conv) == math.inf
    [f] = evaluate(rule(metric="cpa", operator=">", threshold=50), [no_conv], now=0)
    assert f.value == math.inf
    assert b'"value":null' in msgspec.json.encode(f)


@pytest.mark.parametrize(("operator", "threshold", "fires"), [
    (">", 0.42, False), (">=", 0.42, True), ("<", 0.42, False), ("<=", 0.42, True), ("==", 0.42, True),
    ("<", 0.5, True), (">", 0.4, True), ("==", 0.4200001, False),
])
def test_operators_compare_metric_and_threshold(operator: str, threshold: float, fires: bool) -> None:
    assert bool(evaluate(rule(operator=operator, threshold=threshold), [T], now=0)) is fires


def test_firing_records_rule_campaign_value_and_action() -> None:
    r = rule(action="adjust_budget", percent=-20, window="1h")
    assert evaluate(r, [T, WindowTotals("c2", spend_micros=USD, revenue_micros=3 * USD)], now=1234.0) == [
        Firing("r1", "c1", "roas", 0.42, "<", 0.5, "1h", "adjust_budget", -20.0, 1234.0)
    ]


def test_rule_scoped_to_a_campaign_ignores_others() -> None:
    other = WindowTotals("c2", spend_micros=USD, revenue_micros=0)
    assert [f.campaign_id for f in evaluate(rule(campaign_id="c2"), [T, other], now=0)] == ["c2"]


def test_no_data_never_fires() -> None:
    assert evaluate(rule(metric="ctr", operator="<", threshold=0.01), [WindowTotals("c1")], now=0) == []


@pytest.mark.parametrize(("kw", "field"), [
    ({"action": "adjust_bid"}, "$.percent"),
    ({"action": "adjust_budget", "percent": -100}, "$.percent"),
    ({"action": "adjust_budget", "percent": 0}, "$.percent"),
    ({"action": "pause", "percent": 10}, "$.percent"),
    ({"window": "1y"}, "$.window"),
    ({"every": "soon"}, "$.every"),
    ({"cooldown": "0m"}, "$.cooldown"),
    ({"threshold": math.inf}, "$.threshold"),
    ({"id": ""}, "$.id"),
])
def test_invalid_rules_name_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(RuleError) as err:
        validate(rule(**kw))
    assert err.value.field == field


def test_unknown_metric_or_action_is_refused_on_decode() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.metric"):
        rule(metric="profit")
    with pytest.raises(msgspec.ValidationError, match=r"\$\.action"):
        rule(action="delete")


def test_scheduler_runs_a_rule_then_waits_its_interval() -> None:
    clock = FakeClock(10_000.0)
    sched = Scheduler(clock)
    r = rule(every="5m")
    assert sched.due([r]) == [r]
    sched.run([r], Source([]))
    assert sched.due([r]) == []
    assert sched.next_due_in([r]) == 300.0
    clock.advance(299)
    assert sched.due([r]) == []
    clock.advance(1)
    assert sched.due([r]) == [r] and sched.next_due_in([r]) == 0.0


def test_scheduler_skips_disabled_rules() -> None:
    sched = Scheduler(FakeClock())
    off = rule(enabled=False)
    assert sched.due([off]) == [] and sched.next_due_in([off]) is None


def test_scheduler_asks_for_the_rules_window() -> None:
    clock = FakeClock(100_000.0)
    source = Source([])
    Scheduler(clock).run([rule(window="1h", campaign_id="c9")], source)
    assert source.calls == [("c9", 100_000.0 - 3600, 100_000.0)]


def test_a_firing_is_not_repeated_within_its_cooldown() -> None:
    clock = FakeClock(0.0)
    sched = Scheduler(clock)
    r = rule(window="1h", every="5m")
    source = Source([T])
    assert len(sched.run([r], source)) == 1
    clock.advance(300)
    assert sched.run([r], source) == []  # evaluated, but the last cut has not had a full window yet
    clock.advance(3300)
    assert [f.at for f in sched.run([r], source)] == [3600.0]


def test_explicit_cooldown_overrides_the_window() -> None:
    clock = FakeClock(0.0)
    sched = Scheduler(clock)
    r = rule(window="24h", every="5m", cooldown="10m")
    sched.run([r], Source([T]))
    clock.advance(600)
    assert len(sched.run([r], Source([T]))) == 1


def test_scheduler_state_survives_a_restart() -> None:
    clock = FakeClock(0.0)
    first = Scheduler(clock)
    r = rule(window="1h", every="5m")
    first.run([r], Source([T]))
    clock.advance(600)
    again = Scheduler(clock, first.last_run, first.last_fired)
    assert again.due([r]) == [r]
    assert again.run([r], Source([T])) == []  # cooldown carried over
