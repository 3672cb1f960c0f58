"""Customer lifetime value over a horizon: BG/NBD expected purchases x Gamma-Gamma expected spend.

LTV(horizon) = E[purchases in (T, T + horizon] | x, t_x, T] x E[spend per purchase | x, m], undiscounted,
in the currency of the transactions; times in weeks. Kernels take the parameter arrays
``bg = [r, alpha, a, b]`` and ``gg = [p, q, gamma]``.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
from numba import njit
from numpy.typing import NDArray

from bidder.models import bgnbd, gammagamma
from bidder.models.errors import FitError
from bidder.models.transactions import Summary

Array = NDArray[np.float64]


class LtvParams(msgspec.Struct, frozen=True):
    bg: Array  # [r, alpha, a, b]
    gg: Array  # [p, q, gamma]
    horizon_weeks: float = 52.0


@njit(cache=True, nogil=True)
def ltv(bg: Array, gg: Array, horizon: float, x: float, t_x: float, T: float, m: float) -> float:
    """Predicted value over ``horizon`` weeks of one customer; NaN if 2F1 did not converge."""
    return bgnbd.expected_purchases(bg, horizon, x, t_x, T) * gammagamma.expected_spend(gg, x, m)


@njit(cache=True, nogil=True)
def ltv_many(
    bg: Array, gg: Array, horizon: float, x: Array, t_x: Array, T: Array, m: Array,
    out_ltv: Array, out_alive: Array,
) -> None:
    """Fill ``out_ltv[i]`` and ``out_alive[i]`` (P(alive)) for customers i (all arrays the same length)."""
    for i in range(x.shape[0]):
        out_ltv[i] = ltv(bg, gg, horizon, x[i], t_x[i], T[i], m[i])
        out_alive[i] = bgnbd.p_alive(bg, x[i], t_x[i], T[i])


def ltv_py(bg: Array, gg: Array, horizon: float, x: float, t_x: float, T: float, m: float) -> float:
    """Reference twin of ``ltv``."""
    return bgnbd.expected_purchases_py(bg, horizon, x, t_x, T) * gammagamma.expected_spend_py(gg, x, m)


def fit_ltv(s: Summary, horizon_weeks: float = 52.0) -> tuple[LtvParams, dict[str, float]]:
    """Fit BG/NBD on all customers and Gamma-Gamma on the repeat buyers; returns params and metrics."""
    bg = bgnbd.fit(s.x, s.t_x, s.T)
    gg = gammagamma.fit(s.x, s.monetary)
    if gg[1] <= 1.0 or abs(bg[2] - 1.0) < 1e-9:
        raise FitError("LTV", f"degenerate fit (q = {gg[1]:.4g} must be > 1, a = {bg[2]:.4g} must not be 1)")
    repeat = (s.x > 0) & (s.monetary > 0)
    metrics = {
        "customers": float(s.x.shape[0]),
        "repeat_customers": float(repeat.sum()),
        "bgnbd_log_likelihood": float(bgnbd.log_likelihood(bg, s.x, s.t_x, s.T).sum()),
        "gamma_gamma_log_likelihood": float(
            gammagamma.log_likelihood(gg, s.x[repeat], s.monetary[repeat]).sum()
        ),
    }
    if not all(math.isfinite(v) for v in metrics.values()):
        raise FitError("LTV", f"non-finite fit metrics {metrics}")
    return LtvParams(bg=bg, gg=gg, horizon_weeks=horizon_weeks), metrics
