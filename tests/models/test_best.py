from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bidder import pricing
from bidder.campaign import BidSettings, Budget, Campaign, Creative
from bidder.models import LearnedModel, UserTable
from bidder.value import BestScorer, Context, Lines

from .test_features import random_context

# Values per conversion from "never reaches its cap" to "always bids its cap" (0 and tiny: cannot bid).
VALUES = (0.0, 1e-6, 0.001, 0.01, 0.5, 20.0, 300.0)
USERS = UserTable(["known"], np.array([150.0]), np.array([0.9]))


def lines_of(bids: list[tuple[float, float, float]], per_campaign: list[int]) -> Lines:
    campaigns = [
        Campaign(id=f"c{i}", advertiser="brand.com", budget=Budget(total=100.0),
                 bid=BidSettings(max_cpm=cap, target_roas=roas, value_per_conversion=value),
                 creatives=[Creative(id=f"c{i}-cr", w=300, h=250, adm="<a/>")])
        for i, (value, cap, roas) in enumerate(bids)
    ]
    idx = np.repeat(np.arange(len(campaigns), dtype=np.int32), per_campaign)
    return Lines(campaigns=campaigns, campaign=idx, fmt=np.zeros(idx.shape[0], dtype=np.int32))


def reference(scorer: BestScorer, lines: Lines, bits: bytes, ctx: Context, floor: int, first_price: bool,
              shade: float) -> tuple[int, list[int]]:
    """What the engine's generic path picks: extract, values, pick."""
    cand, vals, out = np.empty(lines.n, dtype=np.int32), np.empty(lines.n), np.zeros(2, dtype=np.int64)
    n = pricing.extract(bits, cand)
    scorer.values(cand, n, ctx, vals)
    inv_roas, max_cpm = pricing.campaign_arrays(lines.campaigns)
    k = pricing.pick(cand, n, vals, lines.campaign, inv_roas, max_cpm, floor, first_price, shade, out)
    return (-1, [-1]) if k < 0 else (int(cand[k]), out.tolist())


def scenario(seed: int, n_campaigns: int) -> tuple[LearnedModel, Lines, np.random.Generator]:
    rng = np.random.default_rng(seed)
    # Mean weights from "P near 0" to "P near 1", so that caps bind for some lines and not for others.
    weight = rng.normal(rng.choice([-0.8, -0.3, 0.0, 0.3]), 0.4, 1 << 10)
    bids = [(float(rng.choice(VALUES)), float(rng.choice([0.5, 2.0, 5.0])), float(rng.choice([0.5, 1.0, 2.5])))
            for _ in range(n_campaigns)]
    lines = lines_of(bids, rng.integers(1, 4, n_campaigns).tolist())
    return LearnedModel(weight, "test", USERS), lines, rng


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_campaigns=st.integers(1, 12),
       user=st.sampled_from(["", "known", "unknown"]), first_price=st.booleans(),
       floor=st.sampled_from([0, 1, 300_000, 2_000_000, 4_999_999, 10**9]),
       shade=st.sampled_from([1.0, 0.8, 0.5, 0.123]))
def test_best_picks_what_extract_values_and_pick_pick(
    seed: int, n_campaigns: int, user: str, first_price: bool, floor: int, shade: float
) -> None:
    model, lines, rng = scenario(seed, n_campaigns)
    scorer = model.bind(lines)
    ctx = random_context(rng)
    ctx.user_id = user
    bits = int(rng.integers(0, 1 << lines.n)).to_bytes((lines.n + 7) // 8, "little")
    out = np.full(2, 7, dtype=np.int64)
    line = scorer.best(bits, ctx, floor, first_price, shade, out)
    expected_line, expected_out = reference(scorer, lines, bits, ctx, floor, first_price, shade)
    assert line == expected_line
    assert (out.tolist() if line >= 0 else [int(out[0])]) == expected_out


def test_best_gives_ties_to_the_lowest_line() -> None:
    # Every line bids its cap (high value, same cap): all tie, so the lowest set bit wins.
    lines = lines_of([(300.0, 2.0, 1.0)] * 3, [2, 2, 2])
    scorer = LearnedModel(np.full(1 << 10, 0.1), "test").bind(lines)
    out = np.zeros(2, dtype=np.int64)
    assert scorer.best(bytes([0b111100]), Context(), 0, False, 1.0, out) == 2
    assert out.tolist() == [2_000_000, 2_000_000]


def test_best_finds_a_higher_cap_after_lines_that_bid_their_cap() -> None:
    lines = lines_of([(300.0, 2.0, 1.0), (300.0, 2.0, 1.0), (300.0, 5.0, 1.0)], [1, 1, 1])
    scorer = LearnedModel(np.full(1 << 10, 0.1), "test").bind(lines)
    out = np.zeros(2, dtype=np.int64)
    assert scorer.best(bytes([0b111]), Context(), 0, True, 0.8, out) == 2
    assert out.tolist() == [4_000_000, 5_000_000]


def test_best_is_minus_one_without_candidates_or_above_every_value() -> None:
    lines = lines_of([(20.0, 5.0, 1.0)], [3])
    scorer = LearnedModel(np.zeros(1 << 10), "test").bind(lines)
    out = np.zeros(2, dtype=np.int64)
    assert scorer.best(bytes(1), Context(), 0, True, 0.8, out) == -1
    assert out[0] == -1
    assert scorer.best(bytes([0b111]), Context(), 5_000_001, True, 0.8, out) == -1


def test_best_ignores_set_bits_past_the_last_line() -> None:
    lines = lines_of([(0.001, 5.0, 1.0), (0.002, 5.0, 1.0)], [1, 1])
    scorer = LearnedModel(np.zeros(1 << 10), "test").bind(lines)
    out = np.zeros(2, dtype=np.int64)
    assert scorer.best(b"\xff\xff", Context(), 0, False, 1.0, out) == 1
    assert out.tolist() == [1_000_000, 1_000_000]  # zero weights, P = 0.5: 0.5 x 0.002 USD = 1 USD CPM


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), user=st.sampled_from(["", "known", "unknown"]))
def test_explain_after_best_is_what_scoring_the_winner_gives(seed: int, user: str) -> None:
    model, lines, rng = scenario(seed, 8)
    ctx = random_context(rng)
    ctx.user_id = user
    line = model.bind(lines).best(b"\xff" * ((lines.n + 7) // 8), ctx, 0, True, 0.8, np.zeros(2, dtype=np.int64))
    if line < 0:
        return
    fresh = model.bind(lines)  # no best call: explain scores the line itself
    p, value = fresh.explain(line, ctx)
    scorer = model.bind(lines)
    scorer.best(b"\xff" * ((lines.n + 7) // 8), ctx, 0, True, 0.8, np.zeros(2, dtype=np.int64))
    assert scorer.explain(line, ctx) == (p, value)
    assert value == (150.0 if user == "known" else lines.campaigns[lines.campaign[line]].bid.value_per_conversion)
    vals = np.empty(1)
    scorer.values(np.array([line], dtype=np.int32), 1, ctx, vals)
    assert p * value == vals[0]


def test_explain_of_another_line_or_context_than_the_last_best_scores_it() -> None:
    model, lines, rng = scenario(5, 6)
    scorer = model.bind(lines)
    ctx = random_context(rng)
    bits = b"\xff" * ((lines.n + 7) // 8)
    line = scorer.best(bits, ctx, 0, False, 1.0, np.zeros(2, dtype=np.int64))
    other = (line + 1) % lines.n
    expected = model.bind(lines).explain(other, ctx)
    assert scorer.explain(other, ctx) == expected
    copy = Context(**{f: getattr(ctx, f) for f in ctx.__struct_fields__})
    copy.country = ctx.country + "x"  # same line, another context object: the stash must not answer
    assert scorer.explain(line, copy) == model.bind(lines).explain(line, copy)
