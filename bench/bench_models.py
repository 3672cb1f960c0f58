"""Speed of the learned value model's request path.

    python3 -m pytest bench/bench_models.py --benchmark-only -p no:cacheprovider

Targets (issue 4): all 50 candidate lines of one impression, feature hashing included, <= 5 us median;
one known user's LTV <= 1 us. ``PriorModel`` (the baseline seam) is measured alongside as a ratio.

``best`` (the engine's fused path: bitset in, priced winner out) is measured on two line sets: ``capped``,
where every line bids its ``max_cpm`` (high values, as with big-ticket conversions), so lines that cannot
beat the best so far are skipped unscored; and ``scored``, values far below the caps and no user table,
so every one of the 50 lines is scored: the worst case.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bidder import pricing
from bidder.campaign import BidSettings, Budget, Campaign, Creative
from bidder.models import LearnedModel, UserTable, warm_up
from bidder.models.ltv import ltv
from bidder.models.simulate import World
from bidder.value import Lines, PriorModel
from bidder.value import warm_up as warm_up_prior

N_CANDIDATES = 50
BG = np.array([0.243, 4.414, 0.793, 2.426])
GG = np.array([6.25, 3.74, 15.44])


def _lines(value: float = 20.0) -> Lines:
    campaigns = [
        Campaign(id=f"camp-{i:02d}", advertiser="brand.com", budget=Budget(total=1000.0),
                 bid=BidSettings(max_cpm=5.0, value_per_conversion=value, conversion_rate=0.01),
                 creatives=[Creative(id=f"cr-{i}", w=300, h=250, adm="<a/>")])
        for i in range(N_CANDIDATES)
    ]
    idx = np.arange(N_CANDIDATES, dtype=np.int32)
    return Lines(campaigns=campaigns, campaign=idx, fmt=np.zeros(N_CANDIDATES, dtype=np.int32))


@pytest.fixture(scope="module")
def contexts() -> itertools.cycle:  # type: ignore[type-arg]
    # A pool of realistic, varied impressions so that caches see more than one feature set.
    events, _ = World(seed=1).sample(1000, seed=1)
    return itertools.cycle([e.ctx for e in events])


@pytest.fixture(scope="module")
def model() -> LearnedModel:
    warm_up()
    rng = np.random.default_rng(1)
    users = UserTable([f"u{i}" for i in range(100_000)], rng.uniform(0, 500, 100_000), np.ones(100_000))
    return LearnedModel(rng.normal(0, 0.1, 1 << 20), "bench", users)


def test_score_50_candidates_learned(benchmark, model: LearnedModel, contexts) -> None:  # type: ignore[no-untyped-def]
    scorer = model.bind(_lines())
    cand = np.arange(N_CANDIDATES, dtype=np.int32)
    out = np.empty(N_CANDIDATES)
    benchmark(lambda: scorer.values(cand, N_CANDIDATES, next(contexts), out))
    assert np.all((out > 0) & (out < 20))


def test_score_50_candidates_prior_baseline(benchmark, contexts) -> None:  # type: ignore[no-untyped-def]
    warm_up_prior()
    scorer = PriorModel().bind(_lines())
    cand = np.arange(N_CANDIDATES, dtype=np.int32)
    out = np.empty(N_CANDIDATES)
    benchmark(lambda: scorer.values(cand, N_CANDIDATES, next(contexts), out))


ALL = ((1 << N_CANDIDATES) - 1).to_bytes((N_CANDIDATES + 7) // 8, "little")


@pytest.mark.parametrize("case", ["capped", "scored"])
def test_best_of_50_candidates_learned(benchmark, model: LearnedModel, contexts, case: str) -> None:  # type: ignore[no-untyped-def]
    if case == "capped":
        scorer = model.bind(_lines())
    else:  # P is about 0.5 here: 0.5 x 0.001 USD = 0.5 USD CPM, a tenth of the cap
        scorer = LearnedModel(model.weight, "bench").bind(_lines(value=0.001))
    out = np.zeros(2, dtype=np.int64)
    benchmark(lambda: scorer.best(ALL, next(contexts), 0, True, 0.8, out))
    assert 0 < out[0] <= 4_000_000


def test_extract_values_pick_50_candidates_learned(benchmark, model: LearnedModel, contexts) -> None:  # type: ignore[no-untyped-def]
    # The engine's generic path for a model without ``best``: what the fused kernel replaces.
    lines = _lines()
    scorer = model.bind(lines)
    inv_roas, max_cpm = pricing.campaign_arrays(lines.campaigns)
    cand, vals, out = np.empty(N_CANDIDATES, dtype=np.int32), np.empty(N_CANDIDATES), np.zeros(2, dtype=np.int64)

    def generic() -> int:
        n = pricing.extract(ALL, cand)
        scorer.values(cand, n, next(contexts), vals)
        return pricing.pick(cand, n, vals, lines.campaign, inv_roas, max_cpm, 0, True, 0.8, out)

    pricing.warm_up()
    assert benchmark(generic) >= 0


def test_best_of_50_candidates_prior_baseline(benchmark, contexts) -> None:  # type: ignore[no-untyped-def]
    warm_up_prior()
    scorer = PriorModel().bind(_lines())
    out = np.zeros(2, dtype=np.int64)
    benchmark(lambda: scorer.best(ALL, next(contexts), 0, True, 0.8, out))


def test_explain_the_winner_of_best(benchmark, model: LearnedModel, contexts) -> None:  # type: ignore[no-untyped-def]
    scorer = model.bind(_lines())
    ctx = next(contexts)
    line = scorer.best(ALL, ctx, 0, True, 0.8, np.zeros(2, dtype=np.int64))
    p, _ = benchmark(scorer.explain, line, ctx)
    assert 0 < p < 1


def test_known_user_ltv_lookup(benchmark, model: LearnedModel) -> None:  # type: ignore[no-untyped-def]
    ids = itertools.cycle([f"u{i}" for i in range(0, 100_000, 7)])
    assert benchmark(lambda: model.user_ltv(next(ids))) is not None


def test_one_user_ltv_kernel_from_summary(benchmark) -> None:  # type: ignore[no-untyped-def]
    # The computation the table does once per user at load: BG/NBD (2F1) x Gamma-Gamma, 52 weeks.
    warm_up()
    assert benchmark(ltv, BG, GG, 52.0, 2.0, 30.43, 38.86, 22.35) > 0
