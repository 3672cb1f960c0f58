"""Threshold rules over windowed campaign metrics, and the schedule that says when to evaluate them.

Public API (pure; time comes from an injected ``control.clock.Clock``, never from sleeping):

- ``Rule(id, metric, operator, threshold: float, window: str, action, percent: float | None = None,
  campaign_id: str | None = None, every: str = "5m", cooldown: str | None = None, enabled: bool = True)``
  with ``metric`` in roas | cpa | spend | ctr | win_rate, ``operator`` in > >= < <= ==, ``action`` in
  pause | notify | adjust_budget | adjust_bid. ``percent`` is required for adjust_budget/adjust_bid
  (signed: -20 means "reduce by 20 %", > -100, <= 1000) and refused for the others. ``campaign_id`` None
  means every campaign the metrics source knows. Units of ``threshold``: USD for spend and cpa, a
  ratio for roas, ctr and win_rate (0.02 = 2 %).
- ``parse_duration("90s" | "15m" | "1h" | "24h" | "7d" | "2w") -> int`` seconds; ``RuleError`` otherwise.
- ``validate(rule) -> Rule``: checks everything above; ``RuleError`` names the rule and the field.
- ``WindowTotals(campaign_id, spend_micros=0, revenue_micros=0, impressions=0, clicks=0,
  conversions=0, bids=0, wins=0)``: one campaign's sums over one window.
- ``metric_value(metric, totals) -> float | None``: roas = revenue/spend, cpa = spend/conversions (USD),
  spend (USD), ctr = clicks/impressions, win_rate = wins/bids. None when undefined (zero denominator),
  except cpa with spend > 0 and no conversions, which is +inf (spending without converting is the
  worst CPA, and "cpa > X" must fire on it). None never fires.
- ``evaluate(rule, totals: Iterable[WindowTotals], now: float) -> list[Firing]`` with
  ``Firing(rule_id, campaign_id, metric, value: float | None, operator, threshold, window, action,
  percent, at)``. ``value`` is None in JSON when it is inf (msgspec writes inf as null).
  ``==`` compares with a relative tolerance of 1e-9.
- ``MetricsSource`` Protocol: ``window_totals(campaign_id: str | None, start: float, end: float) ->
  list[WindowTotals]`` (unix seconds, [start, end)); the core implements it over its store.
- ``Scheduler(clock, last_run: dict[str, float] | None = None, last_fired: dict[tuple[str, str],
  float] | None = None)``: ``due(rules) -> list[Rule]`` (enabled rules never run or whose ``every`` has
  elapsed), ``run(rules, source) -> list[Firing]`` (evaluates the due rules over
  ``[now - window, now)``, drops firings still in their cooldown, marks the rules run; the caller records
  and applies the firings), ``next_due_in(rules) -> float | None`` (seconds until the next rule is due,
  0 when one is due now, None when none is enabled), and ``last_run`` / ``last_fired`` to persist.
  The cooldown of a (rule, campaign) after it fired defaults to the rule's window, so a "cut the
  budget 20 %" rule sees a full window of fresh data before it can cut again.
"""

from __future__ import annotations

import math
import operator as op
import re
from collections.abc import Callable, Iterable
from typing import Literal, Protocol

import msgspec

from control.clock import Clock

Metric = Literal["roas", "cpa", "spend", "ctr", "win_rate"]
Operator = Literal[">", ">=", "<", "<=", "=="]
ActionKind = Literal["pause", "notify", "adjust_budget", "adjust_bid"]

METRICS: tuple[str, ...] = ("roas", "cpa", "spend", "ctr", "win_rate")
ACTIONS: tuple[str, ...] = ("pause", "notify", "adjust_budget", "adjust_bid")


def _eq(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": op.gt, ">=": op.ge, "<": op.lt, "<=": op.le, "==": _eq,
}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+)([smhdw])")


class RuleError(ValueError):
    """A rule that cannot be evaluated; ``field`` is the JSON path at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    metric: Metric
    operator: Operator
    threshold: float
    window: str
    action: ActionKind
    percent: float | None = None
    campaign_id: str | None = None
    every: str = "5m"
    cooldown: str | None = None
    enabled: bool = True


class WindowTotals(msgspec.Struct, frozen=True):
    campaign_id: str
    spend_micros: int = 0
    revenue_micros: int = 0
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    bids: int = 0
    wins: int = 0


class Firing(msgspec.Struct, frozen=True):
    rule_id: str
    campaign_id: str
    metric: str
    value: float | None
    operator: str
    threshold: float
    window: str
    action: str
    percent: float | None
    at: float


class MetricsSource(Protocol):
    def window_totals(self, campaign_id: str | None, start: float, end: float) -> list[WindowTotals]:
        """Sums per campaign over ``[start, end)`` (unix seconds); every campaign when id is None."""
        ...


def parse_duration(text: str, field: str = "$.window") -> int:
    m = _DURATION.fullmatch(text.strip())
    if m is None or int(m.group(1)) == 0:
        why = f"must be a positive duration like '15m', '1h' or '7d', got {text!r}"
        raise RuleError(f"{field[2:]} {why}", field)
    return int(m.group(1)) * _UNITS[m.group(2)]


def validate(rule: Rule) -> Rule:
    def bad(field: str, why: str) -> RuleError:
        return RuleError(f"rule {rule.id!r}: {field} {why}", f"$.{field}")

    if not rule.id:
        raise RuleError("rule id must not be empty", "$.id")
    if not math.isfinite(rule.threshold):
        raise bad("threshold", f"must be a finite number, got {rule.threshold!r}")
    for field in ("window", "every", "cooldown"):
        value = getattr(rule, field)
        if value is not None:
            try:
                parse_duration(value, f"$.{field}")
            except RuleError as exc:
                raise RuleError(f"rule {rule.id!r}: {exc}", exc.field) from None
    if rule.action in ("adjust_budget", "adjust_bid"):
        if rule.percent is None:
            raise bad("percent", f"is required for {rule.action} (e.g. -20 to reduce by 20 %)")
        if not (math.isfinite(rule.percent) and -100 < rule.percent <= 1000 and rule.percent != 0):
            raise bad("percent", f"must be non-zero, above -100 and at most 1000, got {rule.percent!r}")
    elif rule.percent is not None:
        raise bad("percent", f"only applies to adjust_budget and adjust_bid, not {rule.action}")
    return rule


def metric_value(metric: str, t: WindowTotals) -> float | None:
    if metric == "spend":
        return t.spend_micros / 1e6
    if metric == "roas":
        return t.revenue_micros / t.spend_micros if t.spend_micros else None
    if metric == "cpa":
        if t.conversions:
            return t.spend_micros / 1e6 / t.conversions
        return math.inf if t.spend_micros else None
    if metric == "ctr":
        return t.clicks / t.impressions if t.impressions else None
    if metric == "win_rate":
        return t.wins / t.bids if t.bids else None
    raise RuleError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}", "$.metric")


def evaluate(rule: Rule, totals: Iterable[WindowTotals], now: float) -> list[Firing]:
    compare = _COMPARE[rule.operator]
    firings = []
    for t in totals:
        if rule.campaign_id is not None and t.campaign_id != rule.campaign_id:
            continue
        value = metric_value(rule.metric, t)
        if value is not None and compare(value, rule.threshold):
            firings.append(Firing(rule.id, t.campaign_id, rule.metric, value, rule.operator, rule.threshold,
                                  rule.window, rule.action, rule.percent, now))
    return firings


class Scheduler:
    """Which rules are due, and the cooldown after a firing; state is two dicts the caller may persist."""

    def __init__(self, clock: Clock, last_run: dict[str, float] | None = None,
                 last_fired: dict[tuple[str, str], float] | None = None) -> None:
        self.clock = clock
        self.last_run: dict[str, float] = dict(last_run or {})
        self.last_fired: dict[tuple[str, str], float] = dict(last_fired or {})

    def _next_at(self, rule: Rule) -> float:
        last = self.last_run.get(rule.id)
        return -math.inf if last is None else last + parse_duration(rule.every, "$.every")

    def due(self, rules: Iterable[Rule]) -> list[Rule]:
        now = self.clock.now()
        return [r for r in rules if r.enabled and self._next_at(r) <= now]

    def next_due_in(self, rules: Iterable[Rule]) -> float | None:
        times = [self._next_at(r) for r in rules if r.enabled]
        return max(0.0, min(times) - self.clock.now()) if times else None

    def run(self, rules: Iterable[Rule], source: MetricsSource) -> list[Firing]:
        now = self.clock.now()
        firings: list[Firing] = []
        for rule in self.due(rules):
            window = parse_duration(rule.window)
            cooldown = parse_duration(rule.cooldown, "$.cooldown") if rule.cooldown else window
            totals = source.window_totals(rule.campaign_id, now - window, now)
            for f in evaluate(rule, totals, now):
                key = (rule.id, f.campaign_id)
                if now - self.last_fired.get(key, -math.inf) < cooldown:
                    continue
                self.last_fired[key] = now
                firings.append(f)
            self.last_run[rule.id] = now
        return firings
