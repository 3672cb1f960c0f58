"""Numba kernels of the decision: candidate extraction from a bitset, and the auction price.

Prices are integer micros of USD CPM. For candidate k, the model's expected value per impression
``values[k]`` (USD) becomes a CPM of ``values[k] * 1000 / target_roas``, capped at the campaign's
``max_cpm``. Under first price (``at`` = 1) the bid is shaded to ``shade`` x value, never below the
floor; under second price it is the value itself. Lines whose value is below the floor, or not a
finite positive number, cannot bid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit
from numpy.typing import NDArray

from bidder.campaign import Campaign


@njit(cache=True, nogil=True)
def extract(bits: bytes, out: NDArray[np.int32]) -> int:
    """Write the indices of the set bits of little-endian ``bits`` into ``out``; return how many."""
    n = 0
    limit = out.shape[0]
    for i in range(len(bits)):
        b = bits[i]
        if b == 0:
            continue
        for j in range(8):
            if (b >> j) & 1:
                if n < limit:
                    out[n] = i * 8 + j
                    n += 1
    return n


def extract_py(bits: bytes, out: NDArray[np.int32]) -> int:
    """Reference twin of ``extract``."""
    idx = [i for i in range(len(bits) * 8) if bits[i // 8] >> (i % 8) & 1][: out.shape[0]]
    out[: len(idx)] = idx
    return len(idx)


@njit(cache=True, nogil=True, inline="always")
def price(v: float, cap: int, floor: int, first_price: bool, shade: float) -> tuple[int, int]:
    """(bid, value) in micros of CPM for a value ``v`` in micros of CPM; bid -1 when it cannot bid.
    Every kernel that prices a line goes through here, so all models are priced alike."""
    if not v > 0.0:  # also rejects NaN
        return -1, 0
    value = cap if v >= cap else int(v + 0.5)
    if value < floor or value <= 0:
        return -1, 0
    if not first_price:
        return value, value
    bid = int(value * shade + 0.5)  # to the nearest micro: 0.8 is not exact in binary
    return (bid if bid >= floor else floor), value


@njit(cache=True, nogil=True)
def pick(
    cand: NDArray[np.int32],
    n: int,
    values: NDArray[np.float64],
    line_campaign: NDArray[np.int32],
    inv_roas: NDArray[np.float64],  # (campaigns,) 1 / target ROAS
    max_cpm: NDArray[np.int64],  # (campaigns,) micros
    floor: int,  # micros of USD CPM
    first_price: bool,
    shade: float,
    out: NDArray[np.int64],  # [bid micros, value micros]
) -> int:
    """Return the position in ``cand`` of the highest bid (ties: the lowest line), or -1."""
    best = -1
    best_bid = -1
    for k in range(n):
        c = line_campaign[cand[k]]
        bid, value = price(values[k] * 1e9 * inv_roas[c], max_cpm[c], floor, first_price, shade)
        if bid > best_bid:
            best_bid = bid
            best = k
            out[1] = value
    out[0] = best_bid
    return best


def pick_py(
    cand: NDArray[np.int32],
    n: int,
    values: NDArray[np.float64],
    line_campaign: NDArray[np.int32],
    inv_roas: NDArray[np.float64],
    max_cpm: NDArray[np.int64],
    floor: int,
    first_price: bool,
    shade: float,
    out: NDArray[np.int64],
) -> int:
    """Reference twin of ``pick``."""
    best, best_bid, best_value = -1, -1, 0
    for k in range(n):
        c = int(line_campaign[cand[k]])
        v = float(values[k]) * 1e9 * float(inv_roas[c])
        if not v > 0.0:
            continue
        value = int(max_cpm[c]) if v >= max_cpm[c] else int(v + 0.5)
        if value < floor or value <= 0:
            continue
        bid = max(int(value * shade + 0.5), floor) if first_price else value
        if bid > best_bid:
            best, best_bid, best_value = k, bid, value
    out[0], out[1] = best_bid, best_value
    return best


@njit(cache=True, nogil=True)
def fallback_values(
    cand: NDArray[np.int32],
    n: int,
    line_campaign: NDArray[np.int32],
    scale: NDArray[np.float64],  # (campaigns,) platform multiplier x target ROAS / 1000
    cpm: float,
    out: NDArray[np.float64],
) -> None:
    """Values that make ``pick`` bid ``cpm`` x the platform multiplier: the breaker's heuristic."""
    for k in range(n):
        out[k] = cpm * scale[line_campaign[cand[k]]]


def campaign_arrays(campaigns: Sequence[Campaign]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per campaign: 1 / target ROAS, and ``max_cpm`` in micros; what ``pick`` and ``price`` read."""
    inv_roas = np.array([1.0 / c.bid.target_roas for c in campaigns] or [1.0])
    max_cpm = np.array([round(c.bid.max_cpm * 1e6) for c in campaigns] or [0], dtype=np.int64)
    return inv_roas, max_cpm


def warm_up() -> None:
    """Compile now, so that the first request does not pay for it."""
    cand = np.zeros(8, dtype=np.int32)
    extract(b"\x01", cand)
    out = np.zeros(2, dtype=np.int64)
    fallback_values(cand, 1, np.zeros(1, dtype=np.int32), np.ones(1), 1.0, np.zeros(1))
    pick(cand, 1, np.ones(1), np.zeros(1, dtype=np.int32), np.ones(1), np.ones(1, dtype=np.int64),
         0, True, 0.8, out)
