"""Optimisation: threshold-based suggestions for one campaign, and portfolio budget reallocation.

Public API (pure functions over msgspec Structs; money in integer micros):

- ``VariantPerf(id, spend_micros=0, revenue_micros=0, impressions=0, clicks=0, conversions=0,
  paused=False)``: a creative / ad set of the campaign.
- ``CampaignPerf(campaign_id, budget_micros, spend_micros=0, revenue_micros=0, impressions=0,
  clicks=0, conversions=0, bids=0, wins=0, target_roas: float | None = None, target_cpa_micros: int |
  None = None, variants: list[VariantPerf] = [])``.
- ``Thresholds(...)`` (frozen; defaults documented on the fields) and
  ``suggest(perf, thresholds=Thresholds()) -> Suggestion`` with ``Suggestion(campaign_id, actions:
  list[Action], message)`` and ``Action(type: "pause_variant" | "shift_budget" | "adjust_bid",
  target: str, reason: str, expected_effect: str, change_pct: float | None = None)``.
  ``reason`` is "<metric>:<value>" such as "roas:0.42" or "cpa:31.50" (USD); ``change_pct`` is the
  signed change for adjust_bid (-20.0 = lower bids by 20 %) and, for shift_budget, the share of the
  campaign's spend (in %) that moves from the paused variants to the target.
- ``PortfolioCampaign(campaign_id, budget_micros, spend_micros=0, revenue_micros=0)`` and
  ``reallocate(total_micros, campaigns, max_step=0.20, min_share=0.0, prior_spend_micros=50_000_000)
  -> list[Allocation]`` with ``Allocation(campaign_id, before_micros, after_micros, change_pct,
  score)``; ``OptimizeError`` for bad input (total < 0, no campaigns, duplicate ids, negative money,
  max_step outside [0, 1], min_share * n > 1).

Suggestion rules (a variant or campaign is judged only with enough data: ``min_spend_micros`` spent
and ``min_impressions`` served):
1. pause_variant: an active variant whose ROAS is below ``pause_roas_ratio`` x the campaign's ROAS target
   (``target_roas``, or the campaign's own ROAS when it has no target), or, with a CPA target, whose spend
   exceeds ``pause_cpa_ratio`` x target CPA with no conversion or a CPA above that. The best variant is
   never paused, so at least one stays on.
2. shift_budget: when variants are paused, their recent spend moves to the best remaining variant
   (target = that variant), expected to lift campaign ROAS towards the best variant's.
3. adjust_bid (target = campaign id), judged on the variants that stay on after rule 1, so a loss is
   not corrected twice: ROAS below target by more than ``tolerance`` -> lower bids by
   the shortfall, at most ``max_bid_step``; CPA above target likewise; ROAS above target by more than
   ``tolerance`` while the win rate is below ``low_win_rate`` -> raise bids by ``raise_bid_step``.

Portfolio reallocation (one step; run it again next period to keep converging):
- Each campaign is scored by its ROAS shrunk towards the portfolio's ROAS:
  ``score = (revenue + pooled_roas * prior) / (spend + prior)`` so a campaign with little spend cannot
  swing the allocation. Current budgets are first scaled to the new total; each then tilts by
  ``score / budget-weighted mean score``.
- Bounds per campaign, in order of precedence: the results sum EXACTLY to ``total_micros``; each gets at
  least ``floor(min_share * total)``; each moves at most ``max_step`` (20 %) from its scaled budget
  (only relaxed when the min-share floor forces it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import msgspec

ActionType = Literal["pause_variant", "shift_budget", "adjust_bid"]


class OptimizeError(ValueError):
    """Input the optimiser cannot work with; ``field`` is the JSON path at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class VariantPerf(msgspec.Struct, frozen=True):
    id: str
    spend_micros: int = 0
    revenue_micros: int = 0
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    paused: bool = False


class CampaignPerf(msgspec.Struct, frozen=True):
    campaign_id: str
    budget_micros: int
    spend_micros: int = 0
    revenue_micros: int = 0
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    bids: int = 0
    wins: int = 0
    target_roas: float | None = None
    target_cpa_micros: int | None = None
    variants: list[VariantPerf] = []


class Thresholds(msgspec.Struct, frozen=True):
    min_spend_micros: int = 20_000_000  # judge nothing on less than 20 USD of spend...
    min_impressions: int = 1000  # ...or fewer than 1000 impressions
    pause_roas_ratio: float = 0.5  # pause a variant whose ROAS is below half the target
    pause_cpa_ratio: float = 2.0  # ...or whose CPA (or conversion-less spend) passes 2x the target CPA
    tolerance: float = 0.10  # dead band around a target before bids move
    max_bid_step: float = 0.20  # lower bids by at most 20 % per suggestion
    raise_bid_step: float = 0.10  # raise bids by 10 % when well above target but rarely winning
    low_win_rate: float = 0.20


class Action(msgspec.Struct, frozen=True):
    type: ActionType
    target: str
    reason: str
    expected_effect: str
    change_pct: float | None = None


class Suggestion(msgspec.Struct, frozen=True):
    campaign_id: str
    actions: list[Action]
    message: str


class PortfolioCampaign(msgspec.Struct, frozen=True):
    campaign_id: str
    budget_micros: int
    spend_micros: int = 0
    revenue_micros: int = 0


class Allocation(msgspec.Struct, frozen=True):
    campaign_id: str
    before_micros: int
    after_micros: int
    change_pct: float | None
    score: float


def _roas(revenue: int, spend: int) -> float | None:
    return revenue / spend if spend else None


def _usd(micros: float) -> str:
    return f"{micros / 1e6:.2f} USD"


def _enough(spend: int, impressions: int, th: Thresholds) -> bool:
    return spend >= th.min_spend_micros and impressions >= th.min_impressions


def _weak_variant(v: VariantPerf, target_roas: float | None, target_cpa: int | None,
                  th: Thresholds) -> str | None:
    """The reason to pause ``v``, or None when it holds up."""
    roas = _roas(v.revenue_micros, v.spend_micros)
    if target_roas is not None and roas is not None and roas < th.pause_roas_ratio * target_roas:
        return f"roas:{roas:.2f}"
    if target_cpa:
        limit = th.pause_cpa_ratio * target_cpa
        if v.conversions == 0 and v.spend_micros > limit:
            return "conversions:0"
        if v.conversions and v.spend_micros / v.conversions > limit:
            return f"cpa:{v.spend_micros / v.conversions / 1e6:.2f}"
    return None


def suggest(perf: CampaignPerf, thresholds: Thresholds | None = None) -> Suggestion:
    th = thresholds or Thresholds()
    actions: list[Action] = []
    roas = _roas(perf.revenue_micros, perf.spend_micros)
    # Without a ROAS target, a variant is judged against the campaign it belongs to.
    baseline = perf.target_roas if perf.target_roas is not None else roas

    judged = [v for v in perf.variants if not v.paused and _enough(v.spend_micros, v.impressions, th)]
    if len(judged) >= 2:
        best = max(judged, key=lambda v: _roas(v.revenue_micros, v.spend_micros) or 0.0)
        weak = [(v, r) for v in judged if v is not best
                and (r := _weak_variant(v, baseline, perf.target_cpa_micros, th)) is not None]
        for v, reason in weak:
            actions.append(Action("pause_variant", v.id, reason,
                                  f"stop ~{_usd(v.spend_micros)} of spend returning "
                                  f"{_usd(v.revenue_micros)}"))
        if weak:
            moved = sum(v.spend_micros for v, _ in weak)
            spend = max(perf.spend_micros, sum(v.spend_micros for v in perf.variants))
            best_roas = _roas(best.revenue_micros, best.spend_micros) or 0.0
            actions.append(Action(
                "shift_budget", best.id, f"roas:{best_roas:.2f}",
                f"~{_usd(moved)} of spend moves to {best.id!r}, worth ~{_usd(moved * best_roas)} "
                f"of revenue at its ROAS", round(100 * moved / spend, 1)))
            # Bids are judged on what stays on, or pausing and cutting bids would fix the same loss twice.
            perf = msgspec.structs.replace(
                perf, spend_micros=max(0, perf.spend_micros - moved),
                revenue_micros=max(0, perf.revenue_micros - sum(v.revenue_micros for v, _ in weak)),
                conversions=max(0, perf.conversions - sum(v.conversions for v, _ in weak)))
            roas = _roas(perf.revenue_micros, perf.spend_micros)

    bid = _bid_action(perf, roas, th) if _enough(perf.spend_micros, perf.impressions, th) else None
    if bid is not None:
        actions.append(bid)
    return Suggestion(perf.campaign_id, actions, _message(perf, actions, th))


def _bid_action(perf: CampaignPerf, roas: float | None, th: Thresholds) -> Action | None:
    target, cid = perf.target_roas, perf.campaign_id
    if target is not None and roas is not None and roas < target * (1 - th.tolerance):
        cut = min(th.max_bid_step, 1 - roas / target)
        return Action("adjust_bid", cid, f"roas:{roas:.2f}",
                      f"ROAS {roas:.2f} towards the target {target:.2f}: cheaper wins, fewer of them",
                      -round(100 * cut, 1))
    if perf.target_cpa_micros:
        tcpa = perf.target_cpa_micros
        cpa = perf.spend_micros / perf.conversions if perf.conversions else math.inf
        if cpa > tcpa * (1 + th.tolerance):
            cut = min(th.max_bid_step, 1 - tcpa / cpa)
            reason = f"cpa:{cpa / 1e6:.2f}" if perf.conversions else "conversions:0"
            return Action("adjust_bid", cid, reason,
                          f"CPA towards the target {_usd(tcpa)}: cheaper wins, fewer of them",
                          -round(100 * cut, 1))
    win_rate = perf.wins / perf.bids if perf.bids else None
    if (target is not None and roas is not None and roas > target * (1 + th.tolerance)
            and win_rate is not None and win_rate < th.low_win_rate):
        return Action("adjust_bid", cid, f"win_rate:{win_rate:.2f}",
                      f"more wins while ROAS {roas:.2f} is above the target {target:.2f}",
                      round(100 * th.raise_bid_step, 1))
    return None


def _message(perf: CampaignPerf, actions: list[Action], th: Thresholds) -> str:
    if actions:
        kinds = ", ".join(f"{a.type} {a.target}" for a in actions)
        return f"{len(actions)} action(s) for campaign {perf.campaign_id!r}: {kinds}"
    if not _enough(perf.spend_micros, perf.impressions, th):
        return (f"not enough data for campaign {perf.campaign_id!r} yet: needs {_usd(th.min_spend_micros)} "
                f"of spend and {th.min_impressions} impressions")
    return f"campaign {perf.campaign_id!r} is within its thresholds; nothing to change"


def _scale(budgets: Sequence[int], total: int) -> list[int]:
    """Budgets scaled to sum to ``total`` exactly (largest remainder); an equal split when all are 0."""
    s = sum(budgets)
    n = len(budgets)
    if s == 0:
        budgets, s = [1] * n, n
    out = [b * total // s for b in budgets]
    rest = total - sum(out)
    for i in sorted(range(n), key=lambda i: (budgets[i] * total) % s, reverse=True)[:rest]:
        out[i] += 1
    return out


def _check_portfolio(total: int, campaigns: Sequence[PortfolioCampaign], max_step: float,
                     min_share: float, prior: int) -> None:
    if total < 0:
        raise OptimizeError(f"total_budget must be >= 0, got {total / 1e6} USD", "$.total_budget")
    if not campaigns:
        raise OptimizeError("no active campaigns to allocate a budget to", "$.campaigns")
    if not (0 <= max_step <= 1):
        raise OptimizeError(f"max_step must be in [0, 1], got {max_step!r}", "$.max_step")
    if not (0 <= min_share and min_share * len(campaigns) <= 1 + 1e-12):
        raise OptimizeError(f"min_share {min_share!r} x {len(campaigns)} campaigns exceeds the total",
                            "$.min_share")
    if prior < 0:
        raise OptimizeError(f"prior_spend_micros must be >= 0, got {prior}", "$.prior_spend_micros")
    seen: set[str] = set()
    for i, c in enumerate(campaigns):
        if c.campaign_id in seen:
            raise OptimizeError(f"campaign {c.campaign_id!r} appears twice", f"$.campaigns[{i}]")
        seen.add(c.campaign_id)
        for field in ("budget_micros", "spend_micros", "revenue_micros"):
            if getattr(c, field) < 0:
                raise OptimizeError(f"campaign {c.campaign_id!r}: {field} must be >= 0",
                                    f"$.campaigns[{i}].{field}")


def reallocate(total_micros: int, campaigns: Sequence[PortfolioCampaign], max_step: float = 0.20,
               min_share: float = 0.0, prior_spend_micros: int = 50_000_000) -> list[Allocation]:
    _check_portfolio(total_micros, campaigns, max_step, min_share, prior_spend_micros)
    n, total = len(campaigns), total_micros
    base = _scale([c.budget_micros for c in campaigns], total)

    spend = sum(c.spend_micros for c in campaigns)
    pooled = sum(c.revenue_micros for c in campaigns) / spend if spend else 0.0
    scores = [(c.revenue_micros + pooled * prior_spend_micros) / (c.spend_micros + prior_spend_micros)
              if c.spend_micros + prior_spend_micros else pooled for c in campaigns]
    mean = sum(b * s for b, s in zip(base, scores, strict=True)) / total if total else 0.0
    # Each budget tilts by its score over the budget-weighted mean; with no revenue anywhere, nothing moves.
    tilt = [s / mean if mean > 0 else 1.0 for s in scores]
    desired = [b * k for b, k in zip(base, tilt, strict=True)]

    floor_ = min(math.floor(min_share * total), total // n)
    steps = [math.floor(b * max_step) for b in base]
    lo = [max(b - d, floor_) for b, d in zip(base, steps, strict=True)]
    hi = [max(b + d, floor_) for b, d in zip(base, steps, strict=True)]
    if sum(lo) > total:  # the floor outranks the step bound: only the floor stays binding
        lo = [floor_] * n

    # The closest allocation (least squares) to ``desired`` inside the bounds is desired + t, clipped,
    # for the t that makes the sum come out at the total; bisection finds t, rounding keeps integers.
    def at(t: float) -> list[float]:
        return [min(max(d + t, lo[i]), hi[i]) for i, d in enumerate(desired)]

    t_lo, t_hi = -max(desired) - 1.0, float(max(hi)) + 1.0
    for _ in range(200):
        mid = (t_lo + t_hi) / 2
        if sum(at(mid)) <= total:
            t_lo = mid
        else:
            t_hi = mid
    target = at(t_lo)
    after = [math.floor(x) for x in target]
    rest = total - sum(after)
    order = sorted(range(n), key=lambda i: target[i] - after[i], reverse=True)
    for chunk in (1, total):  # fractions first, then whatever the bisection left
        for i in order:
            add = min(rest, hi[i] - after[i], chunk)
            after[i] += add
            rest -= add

    return [Allocation(c.campaign_id, c.budget_micros, a,
                       round(100 * (a - c.budget_micros) / c.budget_micros, 2) if c.budget_micros else None,
                       s)
            for c, a, s in zip(campaigns, after, scores, strict=True)]
