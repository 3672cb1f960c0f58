"""BG/NBD: how many purchases a customer will make, and whether they are still "alive".

Fader, Hardie & Lee, "Counting Your Customers the Easy Way" (Marketing Science 24(2), 2005). While
alive a customer buys at a Poisson rate lambda ~ Gamma(r, alpha); after each purchase they drop out
with probability p ~ Beta(a, b). A customer is summarised by (x, t_x, T): repeat purchases, time of the
last one and age, all in the same time unit (weeks here) since the first purchase.

Parameters are fitted by maximum likelihood on log-parameters (so they stay positive). Scoring kernels
take parameters as an array ``[r, alpha, a, b]`` and have pure-Python reference twins.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import gammaln

from bidder.models.errors import FitError
from bidder.models.hyp2f1 import hyp2f1, hyp2f1_py

Array = NDArray[np.float64]


def log_likelihood(params: Array, x: Array, t_x: Array, T: Array) -> Array:
    """Per-customer log-likelihood (FHL 2005, eq. 6) for params [r, alpha, a, b]."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    # For x = 0 the second term of the likelihood is absent; b + x - 1 may be <= 0 there, so it is
    # only evaluated where it exists.
    a4 = np.full_like(a3, -np.inf)
    xr = x[repeat]
    a4[repeat] = np.log(a) - np.log(b + xr - 1) - (r + xr) * np.log(alpha + t_x[repeat])
    out: Array = a1 + a2 + np.logaddexp(a3, a4)
    return out


def fit(x: Array, t_x: Array, T: Array, start: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)) -> Array:
    """Maximum-likelihood [r, alpha, a, b]; raises FitError when the optimiser fails."""

    def nll(log_params: Array) -> float:
        ll = log_likelihood(np.exp(log_params), x, t_x, T)
        return -float(ll.sum()) if np.all(np.isfinite(ll)) else math.inf

    return _minimise(nll, np.log(np.asarray(start, dtype=np.float64)), "BG/NBD")


def _minimise(nll: object, x0: Array, name: str) -> Array:
    # Nelder-Mead is robust from a poor start; BFGS from its optimum polishes to full precision.
    nm = {"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20_000}
    coarse = minimize(nll, x0, method="Nelder-Mead", options=nm)
    fine = minimize(nll, coarse.x, method="BFGS", options={"gtol": 1e-7})
    best = fine if fine.fun <= coarse.fun else coarse
    params: Array = np.exp(best.x)
    if not (np.isfinite(best.fun) and np.all(np.isfinite(params))):
        raise FitError(name, f"maximum-likelihood fit did not converge ({best.message})")
    return params


@njit(cache=True, nogil=True)
def p_alive(params: Array, x: float, t_x: float, T: float) -> float:
    """P(customer still alive at T | x, t_x, T)."""
    r, alpha, a, b = float(params[0]), float(params[1]), float(params[2]), float(params[3])
    if x == 0.0:
        return 1.0
    return float(1.0 / (1.0 + a / (b + x - 1.0) * ((alpha + T) / (alpha + t_x)) ** (r + x)))


@njit(cache=True, nogil=True)
def expected_purchases(params: Array, t: float, x: float, t_x: float, T: float) -> float:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005, eq. 10); NaN if 2F1 does not converge."""
    r, alpha, a, b = float(params[0]), float(params[1]), float(params[2]), float(params[3])
    z = t / (alpha + T + t)
    # ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z) under Euler's transformation is
    # (1-z)^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z): O(1) where the original overflows for large x.
    tail = (1.0 - z) ** (a - 1.0) * float(hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z))
    head = (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail)
    if x == 0.0:
        return float(head)
    return float(head / (1.0 + a / (b + x - 1.0) * ((alpha + T) / (alpha + t_x)) ** (r + x)))


def p_alive_py(params: Array, x: float, t_x: float, T: float) -> float:
    """Reference twin of ``p_alive``."""
    r, alpha, a, b = (float(v) for v in params)
    if x == 0.0:
        return 1.0
    return float(1.0 / (1.0 + a / (b + x - 1.0) * ((alpha + T) / (alpha + t_x)) ** (r + x)))


def expected_purchases_py(params: Array, t: float, x: float, t_x: float, T: float) -> float:
    """Reference twin of ``expected_purchases``, written in the paper's (untransformed) form."""
    r, alpha, a, b = (float(v) for v in params)
    z = t / (alpha + T + t)
    tail = ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1_py(r + x, b + x, a + b + x - 1.0, z)
    head = (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail)
    if x == 0.0:
        return float(head)
    return float(head / (1.0 + a / (b + x - 1.0) * ((alpha + T) / (alpha + t_x)) ** (r + x)))
