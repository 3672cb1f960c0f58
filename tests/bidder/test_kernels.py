"""Numba kernels agree with their pure-Python twins on random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bidder import pricing, value


@settings(max_examples=200, deadline=None)
@given(bits=st.binary(max_size=64), limit=st.integers(1, 600))
def test_extract_matches_reference(bits: bytes, limit: int) -> None:
    a, b = np.zeros(limit, dtype=np.int32), np.zeros(limit, dtype=np.int32)
    n = pricing.extract(bits, a)
    assert n == pricing.extract_py(bits, b)
    assert a[:n].tolist() == b[:n].tolist()


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 40), first=st.booleans(),
       floor=st.integers(0, 5_000_000), shade=st.floats(0.05, 1.0))
def test_pick_matches_reference(seed: int, n: int, first: bool, floor: int, shade: float) -> None:
    rng = np.random.default_rng(seed)
    campaigns = 7
    lines = 50
    line_campaign = rng.integers(0, campaigns, lines).astype(np.int32)
    cand = rng.choice(lines, size=max(n, 1), replace=False).astype(np.int32)
    values = rng.exponential(0.004, max(n, 1))
    values[rng.random(values.shape) < 0.1] = np.nan  # models can misbehave
    values[rng.random(values.shape) < 0.05] = np.inf
    inv_roas = 1.0 / rng.uniform(0.5, 4, campaigns)
    max_cpm = rng.integers(100_000, 20_000_000, campaigns).astype(np.int64)
    out_a, out_b = np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64)
    k = pricing.pick(cand, n, values, line_campaign, inv_roas, max_cpm, floor, first, shade, out_a)
    assert k == pricing.pick_py(cand, n, values, line_campaign, inv_roas, max_cpm, floor, first, shade, out_b)
    if k >= 0:
        assert out_a.tolist() == out_b.tolist()
        assert out_a[0] >= floor and out_a[0] <= max(out_a[1], floor)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 30), fmt=st.integers(0, 3), dev=st.integers(-2, 12))
def test_prior_values_match_reference(seed: int, n: int, fmt: int, dev: int) -> None:
    rng = np.random.default_rng(seed)
    line_campaign = rng.integers(0, 5, 40).astype(np.int32)
    cand = rng.integers(0, 40, max(n, 1)).astype(np.int32)
    rates = rng.random((5, len(value.FORMATS), value.N_DEVICE_TYPES))
    vals = rng.uniform(0, 100, 5)
    a, b = np.zeros(max(n, 1)), np.zeros(max(n, 1))
    value.prior_values(cand, n, line_campaign, rates, vals, fmt, dev, a)
    value.prior_values_py(cand, n, line_campaign, rates, vals, fmt, dev, b)
    assert np.allclose(a[:n], b[:n])


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), fmt=st.integers(0, 3), dev=st.integers(-2, 12), first=st.booleans(),
       floor=st.integers(0, 3_000_000), shade=st.floats(0.05, 1.0))
def test_fused_prior_kernel_picks_what_extract_values_and_pick_pick(seed: int, fmt: int, dev: int, first: bool,
                                                                    floor: int, shade: float) -> None:
    rng = np.random.default_rng(seed)
    lines, campaigns = 80, 9
    line_campaign = rng.integers(0, campaigns, lines).astype(np.int32)
    rates = rng.random((campaigns, len(value.FORMATS), value.N_DEVICE_TYPES)) * 1e-3
    rates[rng.random(rates.shape) < 0.1] = 0.0
    vals = rng.uniform(0, 100, campaigns)
    inv_roas = 1.0 / rng.uniform(0.5, 4, campaigns)
    max_cpm = rng.integers(100_000, 20_000_000, campaigns).astype(np.int64)
    bits = rng.integers(0, 256, lines // 8, dtype=np.uint8).tobytes()

    cand, scores = np.zeros(lines, dtype=np.int32), np.zeros(lines)
    n = pricing.extract(bits, cand)
    value.prior_values(cand, n, line_campaign, rates, vals, fmt, dev, scores)
    expected = np.zeros(2, dtype=np.int64)
    k = pricing.pick(cand, n, scores, line_campaign, inv_roas, max_cpm, floor, first, shade, expected)
    got = np.zeros(2, dtype=np.int64)
    row = value.prior_line_values(line_campaign, rates, vals, inv_roas)[
        fmt * value.N_DEVICE_TYPES + (dev if 0 <= dev < value.N_DEVICE_TYPES else 0)]
    line = value.prior_best(bits, row, max_cpm[line_campaign], floor, first, shade, got)
    assert line == (int(cand[k]) if k >= 0 else -1)
    if line >= 0:
        assert got.tolist() == expected.tolist()
