"""The Gauss hypergeometric function 2F1(a, b; c; z) for real a, b, c > 0 and z < 1.

BG/NBD's conditional expectation needs it with a = r + x, b = b + x, c = a + b + x - 1 and
z = t / (alpha + T + t) in [0, 1). The power series sum_n (a)_n (b)_n / ((c)_n n!) z^n converges for
|z| < 1, but its terms grow like n^(a+b-c-1) before z^n wins, which is slow (and overflows) for frequent
buyers where a + b - c = r + 1 - a_bgnbd + x is large. Euler's transformation
    2F1(a, b; c; z) = (1 - z)^(c-a-b) 2F1(c-a, c-b; c; z)
swaps that growth for decay, so it is applied whenever c - a - b < 0. Negative z is mapped into [0, 1)
by Pfaff's transformation. The series stops when a term is below ``TOL`` relative to the sum; if that
has not happened after ``MAX_TERMS`` terms (z within ~1e-4 of 1), the result is NaN, never a silently
wrong number: callers check ``math.isnan``.
"""

from __future__ import annotations

import math

from numba import njit

TOL = 1e-16
MAX_TERMS = 200_000


@njit(cache=True, nogil=True)
def _series(a: float, b: float, c: float, z: float) -> float:
    total = 1.0
    term = 1.0
    for n in range(MAX_TERMS):
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z
        total += term
        # Once the ratio of successive terms is below 1 the tail is a geometric series bounded by
        # |term| * ratio / (1 - ratio), so a small term means a small remainder.
        if abs(term) <= TOL * abs(total) and (a + n + 1) * (b + n + 1) * abs(z) < (c + n + 1) * (n + 2.0):
            return total
        if term == 0.0:
            return total
    return math.nan


@njit(cache=True, nogil=True)
def hyp2f1(a: float, b: float, c: float, z: float) -> float:
    """2F1(a, b; c; z) for c > 0, z < 1; NaN outside that domain or when the series does not converge."""
    if not (c > 0.0 and z < 1.0):
        return math.nan
    if z < 0.0:
        # Pfaff: 2F1(a, b; c; z) = (1 - z)^-a 2F1(a, c - b; c; z / (z - 1)), argument in (0, 1).
        return float((1.0 - z) ** (-a) * hyp2f1(a, c - b, c, z / (z - 1.0)))
    if c - a - b < 0.0:
        return float((1.0 - z) ** (c - a - b) * _series(c - a, c - b, c, z))
    return float(_series(a, b, c, z))


def _series_py(a: float, b: float, c: float, z: float) -> float:
    total = term = 1.0
    for n in range(MAX_TERMS):
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z
        total += term
        if abs(term) <= TOL * abs(total) and (a + n + 1) * (b + n + 1) * abs(z) < (c + n + 1) * (n + 2.0):
            return total
        if term == 0.0:
            return total
    return math.nan


def hyp2f1_py(a: float, b: float, c: float, z: float) -> float:
    """Reference twin of ``hyp2f1``."""
    if not (c > 0.0 and z < 1.0):
        return math.nan
    if z < 0.0:
        return float((1.0 - z) ** (-a) * hyp2f1_py(a, c - b, c, z / (z - 1.0)))
    if c - a - b < 0.0:
        return float((1.0 - z) ** (c - a - b) * _series_py(c - a, c - b, c, z))
    return _series_py(a, b, c, z)
