from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import hyp2f1 as scipy_hyp2f1

from bidder.models.hyp2f1 import hyp2f1, hyp2f1_py


def bgnbd_arguments(n: int, seed: int) -> list[tuple[float, float, float, float]]:
    """(a, b, c, z) as BG/NBD's conditional expectation builds them, over wide parameter ranges."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        r, alpha = rng.uniform(0.05, 3.0), rng.uniform(0.1, 30.0)
        a, b = rng.uniform(0.2, 5.0), rng.uniform(0.2, 8.0)
        x, T, t = int(rng.integers(0, 60)), rng.uniform(0.0, 80.0), rng.uniform(0.5, 300.0)
        if a + b + x - 1 > 0:
            out.append((r + x, b + x, a + b + x - 1, t / (alpha + T + t)))
    return out


def test_hyp2f1_matches_scipy_to_1e_8_over_the_bgnbd_range() -> None:
    for a, b, c, z in bgnbd_arguments(3000, seed=1):
        expected = scipy_hyp2f1(a, b, c, z)
        assert hyp2f1(a, b, c, z) == pytest.approx(expected, rel=1e-8), (a, b, c, z)


def test_hyp2f1_matches_scipy_for_negative_z() -> None:
    for a, b, c, z in [(0.5, 1.5, 2.5, -0.3), (2.0, 3.0, 4.5, -4.0), (1.2, 0.7, 1.9, -0.95)]:
        assert hyp2f1(a, b, c, z) == pytest.approx(scipy_hyp2f1(a, b, c, z), rel=1e-8)


def test_hyp2f1_kernel_equals_its_reference_twin() -> None:
    for a, b, c, z in bgnbd_arguments(300, seed=2):
        assert hyp2f1(a, b, c, z) == pytest.approx(hyp2f1_py(a, b, c, z), rel=1e-13)


def test_hyp2f1_returns_nan_instead_of_a_wrong_value_when_the_series_does_not_converge() -> None:
    # c - a - b = 0.5: terms fall like n^-1.5, far too slowly this close to z = 1.
    assert math.isnan(hyp2f1(1.0, 1.0, 2.5, 1.0 - 1e-7))
    assert math.isnan(hyp2f1_py(1.0, 1.0, 2.5, 1.0 - 1e-7))


def test_hyp2f1_returns_nan_outside_its_domain() -> None:
    assert math.isnan(hyp2f1(1.0, 1.0, 2.0, 1.0))
    assert math.isnan(hyp2f1(1.0, 1.0, -0.5, 0.5))
