"""A/B experiments: stable traffic split and a chi-square analysis of conversions.

Public API (pure; no I/O, no clock):

- ``Variant(id: str, weight: float = 1.0, creative_id: str | None = None, settings: dict[str, Any] = {})``
- ``Experiment(id: str, variants: list[Variant], campaign_id: str = "", alpha: float = 0.05,
  min_sample: int = 1000, yates: bool = False)``; the first variant is the control.
- ``validate(exp: Experiment) -> Experiment``: raises ``ABTestError`` naming the field (>= 2 variants,
  unique non-empty ids, finite weights > 0, 0 < alpha < 1, min_sample >= 1).
- ``assign(exp, unit_id: str) -> Variant``: the same (experiment id, unit id) always gets the same variant;
  over many ids the split follows the weights. ``unit_id`` is the user id, or the request id without one.
  Pass a validated experiment (weights > 0). The hash is SHA-256 of ``"{experiment id}\\0{unit id}"``:
  changing it would move live users between arms, so a test pins it.
- ``VariantCounts(variant_id: str, exposures: int, conversions: int)``: what the store counted.
- ``analyze(exp, counts: Sequence[VariantCounts]) -> Analysis`` with ``Analysis(experiment_id, control_id,
  chi2, p_value, dof, yates, significant, sample_reached, winner: str | None, variants:
  list[VariantResult], message)`` and ``VariantResult(variant_id, exposures, conversions, rate: float |
  None, lift: float | None, lift_ci_low: float | None, lift_ci_high: float | None)``.
  A variant missing from ``counts`` counts as zero; an unknown variant id or conversions > exposures
  raise ``ABTestError``.

Statistics:
- The test is Pearson's chi-square on the (variants x {converted, not converted}) table,
  ``scipy.stats.chi2_contingency``. Yates' continuity correction is OFF by default: at A/B sample sizes it
  only makes the 2x2 test more conservative, and without it the 2x2 statistic equals the square of the
  two-proportion z statistic, so the p-value and the lift interval below tell the same story.
  ``Experiment(yates=True)`` turns it on (it only ever applies to 2x2 tables, as in scipy).
- A table with no conversions at all (or nothing but conversions) has nothing to test: chi2 = 0, p = 1.
- Lift is relative to the control: ``rate_v / rate_control - 1``. Its confidence interval (level
  ``1 - alpha``) is the log risk-ratio interval (Katz et al. 1978): ``exp(log RR +- z * se) - 1`` with
  ``se = sqrt(1/x_v - 1/n_v + 1/x_c - 1/n_c)``; None when either arm has no conversions.
- ``winner`` is set only when the test is significant (``p < alpha``), every variant has at least
  ``min_sample`` exposures, and the best variant also beats the runner-up on its own 2x2 test at
  ``alpha`` (with two variants that is the same test). Otherwise ``winner`` is None and ``message``
  says why.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
from scipy.stats import chi2_contingency, norm


class ABTestError(ValueError):
    """An experiment or its counts that cannot be used; ``field`` is the JSON path at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class Variant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    weight: float = 1.0
    creative_id: str | None = None
    settings: dict[str, Any] = {}


class Experiment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: str
    variants: list[Variant]
    campaign_id: str = ""
    alpha: float = 0.05
    min_sample: int = 1000
    yates: bool = False


class VariantCounts(msgspec.Struct, frozen=True):
    variant_id: str
    exposures: int
    conversions: int


class VariantResult(msgspec.Struct, frozen=True):
    variant_id: str
    exposures: int
    conversions: int
    rate: float | None
    lift: float | None = None
    lift_ci_low: float | None = None
    lift_ci_high: float | None = None


class Analysis(msgspec.Struct, frozen=True):
    experiment_id: str
    control_id: str
    chi2: float
    p_value: float
    dof: int
    yates: bool
    significant: bool
    sample_reached: bool
    winner: str | None
    variants: list[VariantResult]
    message: str


def validate(exp: Experiment) -> Experiment:
    if not exp.id:
        raise ABTestError("experiment id must not be empty", "$.id")
    if len(exp.variants) < 2:
        raise ABTestError(f"experiment {exp.id!r} needs at least 2 variants, got {len(exp.variants)}",
                          "$.variants")
    seen: set[str] = set()
    for i, v in enumerate(exp.variants):
        if not v.id:
            raise ABTestError(f"experiment {exp.id!r}: variant id must not be empty", f"$.variants[{i}].id")
        if v.id in seen:
            raise ABTestError(f"experiment {exp.id!r}: variant id {v.id!r} repeats", f"$.variants[{i}].id")
        seen.add(v.id)
        if not (math.isfinite(v.weight) and v.weight > 0):
            raise ABTestError(f"experiment {exp.id!r}: variant {v.id!r} weight must be a finite number > 0, "
                              f"got {v.weight!r}", f"$.variants[{i}].weight")
    if not (0 < exp.alpha < 1):
        raise ABTestError(f"experiment {exp.id!r}: alpha must be in (0, 1), got {exp.alpha!r}", "$.alpha")
    if exp.min_sample < 1:
        raise ABTestError(f"experiment {exp.id!r}: min_sample must be >= 1, got {exp.min_sample}",
                          "$.min_sample")
    return exp


def assign(exp: Experiment, unit_id: str) -> Variant:
    # The experiment id salts the hash so one user is not always in the first arm of every experiment.
    digest = hashlib.sha256(f"{exp.id}\x00{unit_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    total = math.fsum(v.weight for v in exp.variants)
    edges = list(itertools.accumulate(v.weight / total for v in exp.variants))
    # min() guards the last edge summing to 0.999... in floating point.
    return exp.variants[min(bisect.bisect_right(edges, u), len(exp.variants) - 1)]


def _chi2(table: np.ndarray, yates: bool) -> tuple[float, float, int]:
    table = table[table.sum(axis=1) > 0]  # an arm nobody saw has nothing to compare
    if table.shape[0] < 2 or (table.sum(axis=0) == 0).any():
        # Nobody converted (or everybody did): the arms are identical, nothing to test.
        return 0.0, 1.0, max(table.shape[0] - 1, 0)
    res = chi2_contingency(table, correction=yates)
    return float(res.statistic), float(res.pvalue), int(res.dof)


Interval = tuple[float | None, float | None, float | None]


def _lift(x_v: int, n_v: int, x_c: int, n_c: int, z: float) -> Interval:
    """(lift, low, high) of variant v over control c."""
    if n_v == 0 or n_c == 0 or x_c == 0:
        return None, None, None
    ratio = (x_v / n_v) / (x_c / n_c)
    if x_v == 0:
        return ratio - 1, None, None
    se = math.sqrt(1 / x_v - 1 / n_v + 1 / x_c - 1 / n_c)
    log_rr = math.log(ratio)
    return ratio - 1, math.exp(log_rr - z * se) - 1, math.exp(log_rr + z * se) - 1


def analyze(exp: Experiment, counts: Sequence[VariantCounts]) -> Analysis:
    validate(exp)
    by_id = {v.id: VariantCounts(v.id, 0, 0) for v in exp.variants}
    for i, c in enumerate(counts):
        if c.variant_id not in by_id:
            raise ABTestError(f"experiment {exp.id!r} has no variant {c.variant_id!r}", f"$[{i}].variant_id")
        if c.exposures < 0 or not (0 <= c.conversions <= c.exposures):
            raise ABTestError(f"experiment {exp.id!r}, variant {c.variant_id!r}: need 0 <= conversions "
                              f"<= exposures, got {c.conversions} of {c.exposures}", f"$[{i}]")
        by_id[c.variant_id] = c
    arms = [by_id[v.id] for v in exp.variants]
    control = arms[0]
    table = np.array([[a.conversions, a.exposures - a.conversions] for a in arms], dtype=np.int64)
    sample_reached = all(a.exposures >= exp.min_sample for a in arms)
    chi2, p, dof = _chi2(table, exp.yates)
    significant = p < exp.alpha

    z = float(norm.ppf(1 - exp.alpha / 2))
    results = []
    for i, a in enumerate(arms):
        rate = a.conversions / a.exposures if a.exposures else None
        if i == 0:
            results.append(VariantResult(a.variant_id, a.exposures, a.conversions, rate))
            continue
        lift, lo, hi = _lift(a.conversions, a.exposures, control.conversions, control.exposures, z)
        results.append(VariantResult(a.variant_id, a.exposures, a.conversions, rate, lift, lo, hi))

    winner, message = _decide(exp, arms, p, significant, sample_reached)
    return Analysis(exp.id, control.variant_id, chi2, p, dof, exp.yates and table.shape == (2, 2),
                    significant, sample_reached, winner, results, message)


def _decide(exp: Experiment, arms: list[VariantCounts], p: float, significant: bool,
            sample_reached: bool) -> tuple[str | None, str]:
    if not sample_reached:
        short = [a.variant_id for a in arms if a.exposures < exp.min_sample]
        return None, f"no winner yet: {', '.join(short)} below the minimum sample of {exp.min_sample}"
    if not significant:
        return None, f"no significant difference (p={p:.4g} >= alpha={exp.alpha})"
    ranked = sorted(arms, key=lambda a: a.conversions / a.exposures, reverse=True)
    best, runner_up = ranked[0], ranked[1]
    if len(arms) > 2:
        # The omnibus test says the arms differ, not that the best one beats the next best.
        pair = np.array([[a.conversions, a.exposures - a.conversions] for a in (best, runner_up)])
        _, p_pair, _ = _chi2(pair, exp.yates)
        if p_pair >= exp.alpha:
            return None, (f"arms differ (p={p:.4g}) but {best.variant_id!r} does not beat "
                          f"{runner_up.variant_id!r} significantly (p={p_pair:.4g})")
    return best.variant_id, f"{best.variant_id!r} wins (p={p:.4g} < alpha={exp.alpha})"
