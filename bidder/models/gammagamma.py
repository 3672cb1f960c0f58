"""Gamma-Gamma: how much a customer spends per purchase.

Fader, Hardie & Lee, "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis" (JMR 42(4),
2005), with the Gamma-Gamma form of Fader & Hardie's note "The Gamma-Gamma Model of Monetary Value"
(2013). Spend per transaction ~ Gamma(p, nu), nu ~ Gamma(q, gamma) across customers. Fitted on the
customers with x > 0 repeat purchases and their mean spend m_x per repeat purchase; parameters as an
array ``[p, q, gamma]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray
from scipy.special import gammaln

from bidder.models.bgnbd import _minimise
from bidder.models.errors import FitError

Array = NDArray[np.float64]


def log_likelihood(params: Array, x: Array, m: Array) -> Array:
    """Per-customer log-likelihood of mean spend m over x > 0 purchases for params [p, q, gamma]."""
    p, q, g = params
    px = p * x
    out: Array = (
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(g)
        + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(g + x * m)
    )
    return out


def fit(x: Array, m: Array, start: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Array:
    """Maximum-likelihood [p, q, gamma] on the customers with x > 0 and m > 0 (others are ignored)."""
    keep = (x > 0) & (m > 0)
    if keep.sum() < 3:
        raise FitError("Gamma-Gamma", "needs at least 3 customers with repeat purchases and spend > 0")
    xk, mk = x[keep], m[keep]

    def nll(log_params: Array) -> float:
        ll = log_likelihood(np.exp(log_params), xk, mk)
        return -float(ll.sum()) if np.all(np.isfinite(ll)) else math.inf

    return _minimise(nll, np.log(np.asarray(start, dtype=np.float64)), "Gamma-Gamma")


@njit(cache=True, nogil=True)
def expected_spend(params: Array, x: float, m: float) -> float:
    """E[spend per purchase | x purchases of mean m]; the population mean when x = 0 (needs q > 1)."""
    p, q, g = float(params[0]), float(params[1]), float(params[2])
    return p * (g + x * m) / (p * x + q - 1.0)


def expected_spend_py(params: Array, x: float, m: float) -> float:
    """Reference twin of ``expected_spend``."""
    p, q, g = (float(v) for v in params)
    return p * (g + x * m) / (p * x + q - 1.0)
