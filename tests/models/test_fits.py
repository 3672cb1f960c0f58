"""Maximum-likelihood fits reproduce the published CDNOW parameters to 3 significant figures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import hyp2f1 as scipy_hyp2f1

from bidder.models import bgnbd, gammagamma

from .support import LTV_DATA


def sig3(v: float) -> float:
    return float(f"{v:.3g}")


def test_bgnbd_fit_reproduces_published_cdnow_parameters() -> None:
    d = np.genfromtxt(LTV_DATA / "cdnow_customers_summary.csv", delimiter=",", names=True)
    r, alpha, a, b = bgnbd.fit(d["frequency"], d["recency"], d["T"])
    assert [sig3(v) for v in (r, alpha, a, b)] == [sig3(v) for v in (0.243, 4.414, 0.793, 2.426)]


def test_gamma_gamma_fit_reproduces_published_cdnow_parameters() -> None:
    d = np.genfromtxt(LTV_DATA / "cdnow_customers_summary_with_monetary.csv", delimiter=",", names=True)
    p, q, g = gammagamma.fit(d["x"], d["zbar"])
    assert [sig3(v) for v in (p, q, g)] == [sig3(v) for v in (6.25, 3.74, 15.44)]


def test_bgnbd_kernels_equal_their_reference_twins_on_random_customers() -> None:
    rng = np.random.default_rng(3)
    for _ in range(500):
        params = rng.uniform([0.1, 0.5, 0.2, 0.5], [2, 20, 3, 5])
        if abs(params[2] - 1) < 1e-3:
            continue
        T = rng.uniform(1, 80)
        x = float(rng.integers(0, 40))
        t_x = rng.uniform(0, T) if x > 0 else 0.0
        t = rng.uniform(1, 200)
        expected = bgnbd.expected_purchases_py(params, t, x, t_x, T)
        assert bgnbd.expected_purchases(params, t, x, t_x, T) == pytest.approx(expected, rel=1e-9)
        alive = bgnbd.p_alive_py(params, x, t_x, T)
        assert bgnbd.p_alive(params, x, t_x, T) == pytest.approx(alive, rel=1e-12)


def test_bgnbd_expected_purchases_stays_finite_for_very_frequent_buyers() -> None:
    params = np.array([0.243, 4.414, 0.793, 2.426])
    r, alpha, a, b = params
    x, t_x, T, t = 400.0, 38.0, 39.0, 52.0
    z = t / (alpha + T + t)
    tail = ((alpha + T) / (alpha + T + t)) ** (r + x) * scipy_hyp2f1(r + x, b + x, a + b + x - 1, z)
    alive = 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))
    paper = (a + b + x - 1) / (a - 1) * (1 - tail) * alive
    assert bgnbd.expected_purchases(params, t, x, t_x, T) == pytest.approx(paper, rel=1e-9)
    # Here the paper's form overflows a double; the kernel's Euler-transformed form does not.
    with pytest.raises(OverflowError):
        bgnbd.expected_purchases_py(params, t, 2000.0, 38.9, T)
    assert 0 < bgnbd.expected_purchases(params, t, 2000.0, 38.9, T) < 2000 * t / T


def test_gamma_gamma_kernel_equals_its_reference_twin_on_random_customers() -> None:
    rng = np.random.default_rng(4)
    for _ in range(200):
        params = np.array([rng.uniform(0.5, 10), rng.uniform(1.1, 8), rng.uniform(1, 40)])
        x, m = float(rng.integers(0, 30)), rng.uniform(0, 200)
        expected = gammagamma.expected_spend_py(params, x, m)
        assert gammagamma.expected_spend(params, x, m) == pytest.approx(expected, rel=1e-13)
