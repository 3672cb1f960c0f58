"""A/B experiments: stable, weighted assignment and the chi-square analysis.

Textbook references:
- Agresti, *An Introduction to Categorical Data Analysis*, 2nd ed. (Wiley 2007), Table 2.5 (gender and
  party identification, Section 2.4): Pearson X^2 = 30.1 with df = 2.
- Moore, McCabe & Craig, *Introduction to the Practice of Statistics*, 9th ed., Example 8.18 (aspirin
  and blood clots): 45 of 411 vs 73 of 411, relative risk 0.62 with the 95 % CI 0.4364 to 0.8707.
- The Physicians' Health Study table (aspirin 104 of 11037 vs placebo 189 of 11034 myocardial
  infarctions, Agresti Table 2.3): Pearson X^2 = 25.01 (df 1, P < 0.0001), 24.43 with Yates' correction;
  checked against the 2x2 closed form as well, so the figure does not rest on scipy alone.
"""

from __future__ import annotations

import math
from collections import Counter

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control.abtest import ABTestError, Experiment, Variant, VariantCounts, analyze, assign, validate

PINNED = ["b", "c", "c", "b", "c", "b"]
PLACEBO = VariantCounts("placebo", 11034, 189)
ASPIRIN = VariantCounts("aspirin", 11037, 104)


def experiment(*ids: str, weights: tuple[float, ...] | None = None, min_sample: int = 1000,
               yates: bool = False) -> Experiment:
    weights = weights or (1.0,) * len(ids)
    variants = [Variant(i, w) for i, w in zip(ids, weights, strict=True)]
    return Experiment("exp-1", variants, min_sample=min_sample, yates=yates)


def test_chi_square_matches_the_aspirin_textbook_example() -> None:
    a = analyze(experiment("placebo", "aspirin", min_sample=100), [PLACEBO, ASPIRIN])
    assert a.chi2 == pytest.approx(25.01, abs=0.005)
    assert a.dof == 1 and a.yates is False
    # Independent check: the 2x2 closed form N(ad - bc)^2 / (r1 r2 c1 c2) and the df=1 tail erfc(sqrt(x/2)).
    (x1, n1), (x2, n2) = (189, 11034), (104, 11037)
    a_, b_, c_, d_ = x1, n1 - x1, x2, n2 - x2
    n = n1 + n2
    closed = n * (a_ * d_ - b_ * c_) ** 2 / (n1 * n2 * (x1 + x2) * (b_ + d_))
    assert a.chi2 == pytest.approx(closed, rel=1e-12)
    assert a.p_value == pytest.approx(math.erfc(math.sqrt(closed / 2)), rel=1e-9)
    assert a.p_value < 0.0001


def test_yates_correction_applies_only_when_asked() -> None:
    a = analyze(experiment("placebo", "aspirin", min_sample=100, yates=True), [PLACEBO, ASPIRIN])
    assert a.yates is True
    assert a.chi2 == pytest.approx(24.43, abs=0.005)


def test_chi_square_matches_the_party_identification_textbook_example() -> None:
    # Rows of Agresti's Table 2.5 become three arms; "converted" = female. X^2 is the same either way round.
    counts = [VariantCounts("dem", 762 + 484, 762), VariantCounts("ind", 327 + 239, 327),
              VariantCounts("rep", 468 + 477, 468)]
    a = analyze(experiment("dem", "ind", "rep", yates=True), counts)
    assert a.chi2 == pytest.approx(30.07, abs=0.005)
    assert a.dof == 2 and a.yates is False  # Yates never applies beyond 2x2


def test_lift_interval_matches_the_textbook_relative_risk_interval() -> None:
    counts = [VariantCounts("placebo", 411, 73), VariantCounts("aspirin", 411, 45)]
    a = analyze(experiment("placebo", "aspirin", min_sample=1), counts)
    aspirin = a.variants[1]
    assert aspirin.lift is not None and aspirin.lift_ci_low is not None and aspirin.lift_ci_high is not None
    assert 1 + aspirin.lift == pytest.approx(0.6164, abs=5e-5)
    assert 1 + aspirin.lift_ci_low == pytest.approx(0.4364, abs=5e-5)
    assert 1 + aspirin.lift_ci_high == pytest.approx(0.8707, abs=5e-5)
    assert a.variants[0].lift is None  # the control has no lift over itself


def test_winner_is_declared_when_significant_and_sample_reached() -> None:
    a = analyze(experiment("aspirin", "placebo", min_sample=10_000), [ASPIRIN, PLACEBO])
    assert a.significant and a.sample_reached
    assert a.winner == "placebo"


def test_no_winner_below_the_minimum_sample_even_when_significant() -> None:
    a = analyze(experiment("aspirin", "placebo", min_sample=20_000), [ASPIRIN, PLACEBO])
    assert a.significant and not a.sample_reached
    assert a.winner is None
    assert "minimum sample" in a.message


def test_no_winner_when_not_significant() -> None:
    a = analyze(experiment("a", "b", min_sample=100),
                [VariantCounts("a", 1000, 50), VariantCounts("b", 1000, 55)])
    assert a.sample_reached and not a.significant
    assert a.p_value > 0.05 and a.winner is None


def test_no_winner_when_the_best_arm_does_not_beat_the_runner_up() -> None:
    counts = [VariantCounts("a", 10_000, 100), VariantCounts("b", 10_000, 200),
              VariantCounts("c", 10_000, 205)]
    a = analyze(experiment("a", "b", "c", min_sample=1000), counts)
    assert a.significant
    assert a.winner is None and "does not beat" in a.message


def test_zero_conversions_is_not_significant_and_does_not_crash() -> None:
    a = analyze(experiment("a", "b", min_sample=1), [VariantCounts("a", 500, 0), VariantCounts("b", 500, 0)])
    assert (a.chi2, a.p_value, a.winner) == (0.0, 1.0, None)
    assert a.variants[1].lift is None


def test_missing_variant_counts_as_zero() -> None:
    a = analyze(experiment("a", "b"), [VariantCounts("a", 10, 1)])
    assert a.variants[1].exposures == 0 and a.variants[1].rate is None
    assert a.p_value == 1.0


@pytest.mark.parametrize(("counts", "field"), [
    ([VariantCounts("zzz", 10, 1)], "$[0].variant_id"),
    ([VariantCounts("a", 10, 11)], "$[0]"),
    ([VariantCounts("a", -1, 0)], "$[0]"),
])
def test_bad_counts_are_refused_with_the_field(counts: list[VariantCounts], field: str) -> None:
    with pytest.raises(ABTestError) as err:
        analyze(experiment("a", "b"), counts)
    assert err.value.field == field


@pytest.mark.parametrize(("exp", "field"), [
    (Experiment("e", [Variant("a")]), "$.variants"),
    (Experiment("e", [Variant("a"), Variant("a")]), "$.variants[1].id"),
    (Experiment("e", [Variant("a"), Variant("b", weight=0)]), "$.variants[1].weight"),
    (Experiment("e", [Variant("a"), Variant("b", weight=math.nan)]), "$.variants[1].weight"),
    (Experiment("e", [Variant("a"), Variant("b")], alpha=1.0), "$.alpha"),
    (Experiment("e", [Variant("a"), Variant("b")], min_sample=0), "$.min_sample"),
    (Experiment("", [Variant("a"), Variant("b")]), "$.id"),
])
def test_invalid_experiments_name_the_field(exp: Experiment, field: str) -> None:
    with pytest.raises(ABTestError) as err:
        validate(exp)
    assert err.value.field == field


@given(st.text(min_size=1, max_size=40))
def test_assignment_is_stable_for_the_same_id(unit: str) -> None:
    exp = experiment("a", "b", "c", weights=(1, 2, 3))
    # A copy decoded from JSON (as after a restart) assigns the same: nothing depends on process state.
    copy = msgspec.json.decode(msgspec.json.encode(exp), type=Experiment)
    assert assign(exp, unit) == assign(exp, unit) == assign(copy, unit)


def test_assignment_is_pinned_across_releases() -> None:
    # Changing the hash would silently move live users between arms mid-experiment.
    exp = experiment("a", "b", "c", weights=(1, 2, 3))
    assert [assign(exp, f"user-{k}").id for k in range(6)] == PINNED


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0.05, 10), min_size=2, max_size=4))
def test_assignment_split_follows_the_weights(weights: list[float]) -> None:
    ids = [f"v{i}" for i in range(len(weights))]
    exp = experiment(*ids, weights=tuple(weights))
    n = 20_000
    seen = Counter(assign(exp, f"user-{k}").id for k in range(n))
    total = sum(weights)
    for vid, w in zip(ids, weights, strict=True):
        p = w / total
        # 5 standard deviations of a binomial share: a false alarm is practically impossible.
        assert abs(seen[vid] / n - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-9


def test_assignment_depends_on_the_experiment() -> None:
    a, b = experiment("x", "y"), Experiment("exp-2", [Variant("x"), Variant("y")])
    differ = sum(assign(a, f"u{k}").id != assign(b, f"u{k}").id for k in range(1000))
    assert 400 < differ < 600  # independent coin flips per experiment
