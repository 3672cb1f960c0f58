"""Conversion probability: logistic regression on hashed features, trained with FTRL-Proximal.

McMahan et al., "Ad Click Prediction: a View from the Trenches" (KDD 2013), Algorithm 1: per-coordinate
learning rates alpha / (beta + sqrt(sum g^2)) with L1 and L2 regularisation, weights computed lazily
from the state (z, n). Serving uses the weights only. Kernels have pure-Python reference twins.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
from numba import njit
from numpy.typing import NDArray

from bidder.models.events import Event
from bidder.models.features import MAX_FEATURES, N_FIXED, hash_bytes, hash_context, indices, mix, text
from bidder.pricing import price

Array = NDArray[np.float64]
MAX_INDICES = 2 * MAX_FEATURES


class Ftrl(msgspec.Struct, frozen=True):
    alpha: float = 0.1
    beta: float = 1.0
    l1: float = 1.0
    l2: float = 1.0


@njit(cache=True, nogil=True)
def _weight(z: float, n: float, alpha: float, beta: float, l1: float, l2: float) -> float:
    if abs(z) <= l1:
        return 0.0
    return -(z - math.copysign(l1, z)) / ((beta + math.sqrt(n)) / alpha + l2)


@njit(cache=True, nogil=True)
def _sigmoid(s: float) -> float:
    s = min(max(s, -35.0), 35.0)
    return 1.0 / (1.0 + math.exp(-s))


@njit(cache=True, nogil=True)
def ftrl_fit(
    idx: NDArray[np.int64],  # (events, MAX_INDICES): weight indices per event, first count[e] used
    count: NDArray[np.int64],  # (events,)
    y: Array,  # (events,) 1.0 converted, 0.0 not
    z: Array,  # (2^bits,) FTRL state, updated in place
    nsq: Array,  # (2^bits,) sum of squared gradients, updated in place
    alpha: float, beta: float, l1: float, l2: float,
    p_out: Array,  # (events,) prediction made before learning from each event (progressive validation)
) -> None:
    w = np.empty(idx.shape[1])
    for e in range(idx.shape[0]):
        s = 0.0
        for j in range(count[e]):
            i = idx[e, j]
            w[j] = _weight(z[i], nsq[i], alpha, beta, l1, l2)
            s += w[j]
        p = _sigmoid(s)
        p_out[e] = p
        g = p - y[e]
        for j in range(count[e]):
            i = idx[e, j]
            sigma = (math.sqrt(nsq[i] + g * g) - math.sqrt(nsq[i])) / alpha
            z[i] += g - sigma * w[j]
            nsq[i] += g * g


@njit(cache=True, nogil=True)
def weights(z: Array, nsq: Array, alpha: float, beta: float, l1: float, l2: float) -> Array:
    out = np.empty(z.shape[0])
    for i in range(z.shape[0]):
        out[i] = _weight(z[i], nsq[i], alpha, beta, l1, l2)
    return out


@njit(cache=True, nogil=True, inline="always")
def _hashed(
    buf: bytes, fmt: int, device_type: int, hour_of_week: int, w: int, h: int, weight: Array
) -> tuple[NDArray[np.uint64], int, np.uint64, float]:
    """The impression's feature hashes and how many, the weight-index mask, and the sum of the
    impression's own (uncrossed) weights: what ``score`` and ``pick_best`` start from, alike."""
    feats = np.empty(MAX_FEATURES, dtype=np.uint64)
    m = hash_context(buf, fmt, device_type, hour_of_week, w, h, feats)
    mask = np.uint64(weight.shape[0] - 1)
    base = 0.0
    for i in range(m):
        base += weight[np.int64(feats[i] & mask)]
    return feats, m, mask, base


@njit(cache=True, nogil=True)
def score(
    buf: bytes, fmt: int, device_type: int, hour_of_week: int, w: int, h: int,
    cand: NDArray[np.int32],  # (n,) candidate lines
    n: int,
    line_key: NDArray[np.uint64],  # (lines,) campaign key of each line (features.hash_bytes of its id)
    line_value: Array,  # (lines,) USD per conversion of each line's campaign
    user_value: float,  # the user's predicted LTV in USD, or < 0 when the user is unknown
    weight: Array,  # (2^bits,) model weights
    out: Array,  # (n,) written: P(conversion) x value, USD
    p_out: Array,  # (n,) written: P(conversion)
) -> None:
    """Hash the impression once, then price every candidate line: out[k] = P(conv | ctx, line) x value."""
    feats, m, mask, base = _hashed(buf, fmt, device_type, hour_of_week, w, h, weight)
    for k in range(n):
        line = cand[k]
        key = line_key[line]
        s = base
        for i in range(m):
            if i < N_FIXED and i != 0 and i != 1 and i != 2 and i != 4:
                continue
            s += weight[np.int64(mix(feats[i] ^ key) & mask)]
        p = _sigmoid(s)
        p_out[k] = p
        out[k] = p * (user_value if user_value >= 0.0 else line_value[line])


@njit(cache=True, nogil=True)
def bias_cross(line_key: NDArray[np.uint64], weight: Array) -> Array:
    """(lines,) each line's weight for the bias x campaign cross."""
    feats = np.empty(MAX_FEATURES, dtype=np.uint64)
    hash_context(b"", 0, 0, 0, 0, 0, feats)  # feats[0], the bias, is the same for every impression
    mask = np.uint64(weight.shape[0] - 1)
    out = np.empty(line_key.shape[0])
    for line in range(line_key.shape[0]):
        out[line] = weight[np.int64(mix(feats[0] ^ line_key[line]) & mask)]
    return out


KEY, VALUE, INV_ROAS, BIAS, MAX_CPM = range(5)  # columns of ``line_table``


def line_table(
    line_key: NDArray[np.uint64], value: Array, inv_roas: Array, max_cpm: NDArray[np.int64], weight: Array
) -> NDArray[np.uint64]:
    """(lines, 5) what ``pick_best`` reads per line, in one array because each array argument of a numba call
    costs ~0.05 us: the campaign key, USD per conversion, 1 / target ROAS, the weight of the bias x
    campaign cross (the one cross that is the same for every impression, so it is read from here rather
    than from the large weight vector) and ``max_cpm`` in micros. Floats are stored as their bits."""
    table = np.empty((line_key.shape[0], 5), dtype=np.uint64)
    f = table.view(np.float64)
    table[:, KEY] = line_key
    f[:, VALUE] = value
    f[:, INV_ROAS] = inv_roas
    f[:, BIAS] = bias_cross(line_key, weight)
    table[:, MAX_CPM] = max_cpm
    return table


@njit(cache=True, nogil=True)
def pick_best(
    buf: bytes, fmt: int, device_type: int, hour_of_week: int, w: int, h: int,
    bits: bytes,  # little-endian bitset of candidate lines: bit i = line i
    table: NDArray[np.uint64],  # (lines, 5) ``line_table``
    user_value: float,  # as in ``score``
    weight: Array,  # (2^bits,)
    floor: int, first_price: bool, shade: float,  # as in ``pricing.pick``
    out: NDArray[np.int64],  # written: [bid, value] in micros of USD CPM
) -> tuple[int, float]:
    """``score`` then ``pricing.pick`` over the set bits in one call: (best line or -1, its P(conversion)).

    Values are bitwise those of ``score`` (the same additions in the same order), so the pick is the same.
    A line is not scored when even P = 1 could not beat the best bid so far: P <= 1 and the price is
    monotonic in the value, so such a line can at most tie, and ties go to the lower line, seen first."""
    feats, m, mask, base = _hashed(buf, fmt, device_type, hour_of_week, w, h, weight)
    # The crossed features after the bias, packed to the front of feats in the order ``score`` adds them.
    nc = 0
    for i in range(1, m):
        if i >= N_FIXED or i == 1 or i == 2 or i == 4:
            feats[nc] = feats[i]
            nc += 1
    f, ints = table.view(np.float64), table.view(np.int64)
    n = table.shape[0]
    best_line = best_bid = -1
    best_p = 0.0
    for i in range(len(bits)):
        b = bits[i]
        if b == 0:
            continue
        for j in range(8):
            if not (b >> j) & 1:
                continue
            line = i * 8 + j
            if line >= n:
                break
            worth = user_value if user_value >= 0.0 else f[line, VALUE]
            cap = ints[line, MAX_CPM]
            if best_bid >= 0:
                bound, _ = price(worth * 1e9 * f[line, INV_ROAS], cap, floor, first_price, shade)
                if bound <= best_bid:
                    continue
            key = table[line, KEY]
            s = base + f[line, BIAS]
            for t in range(nc):
                s += weight[np.int64(mix(feats[t] ^ key) & mask)]
            p = _sigmoid(s)
            bid, value = price(p * worth * 1e9 * f[line, INV_ROAS], cap, floor, first_price, shade)
            if bid > best_bid:
                best_bid = bid
                best_line = line
                best_p = p
                out[1] = value
    out[0] = best_bid
    return best_line, best_p


@njit(cache=True, nogil=True)
def event_indices(
    buf: bytes, fmt: int, device_type: int, hour_of_week: int, w: int, h: int, key: np.uint64,
    mask: np.uint64, out: NDArray[np.int64],
) -> int:
    """Weight indices of one logged impression for training; returns how many were written."""
    feats = np.empty(MAX_FEATURES, dtype=np.uint64)
    m = hash_context(buf, fmt, device_type, hour_of_week, w, h, feats)
    return indices(feats, m, key, mask, out)


# --- pure-Python reference twins -------------------------------------------------------------------


def _weight_py(z: float, n: float, f: Ftrl) -> float:
    if abs(z) <= f.l1:
        return 0.0
    return -(z - math.copysign(f.l1, z)) / ((f.beta + math.sqrt(n)) / f.alpha + f.l2)


def _sigmoid_py(s: float) -> float:
    return 1.0 / (1.0 + math.exp(-min(max(s, -35.0), 35.0)))


def ftrl_fit_py(rows: list[list[int]], y: list[float], z: Array, nsq: Array, f: Ftrl) -> list[float]:
    """Reference twin of ``ftrl_fit``; returns the progressive predictions."""
    preds = []
    for row, label in zip(rows, y, strict=True):
        w = [_weight_py(float(z[i]), float(nsq[i]), f) for i in row]
        p = _sigmoid_py(sum(w))
        preds.append(p)
        g = p - label
        for i, wi in zip(row, w, strict=True):
            sigma = (math.sqrt(nsq[i] + g * g) - math.sqrt(nsq[i])) / f.alpha
            z[i] += g - sigma * wi
            nsq[i] += g * g
    return preds


def score_py(rows: list[list[int]], weight: Array) -> list[float]:
    """Reference for ``score``'s P: sigmoid of the summed weights of each candidate's indices."""
    return [_sigmoid_py(sum(float(weight[i]) for i in row)) for row in rows]


def event_rows(events: list[Event], bits: int) -> tuple[NDArray[np.int64], NDArray[np.int64], Array]:
    """Weight indices (events, MAX_INDICES), their counts and the labels of logged events."""
    mask = np.uint64((1 << bits) - 1)
    idx = np.zeros((len(events), MAX_INDICES), dtype=np.int64)
    count = np.empty(len(events), dtype=np.int64)
    keys: dict[str, np.uint64] = {}
    for e, ev in enumerate(events):
        key = keys.get(ev.campaign)
        if key is None:
            key = keys[ev.campaign] = np.uint64(hash_bytes(ev.campaign.encode()))
        c = ev.ctx
        count[e] = event_indices(text(c), c.fmt, c.device_type, c.hour_of_week, c.w, c.h, key, mask, idx[e])
    y = np.fromiter((ev.converted for ev in events), dtype=np.float64, count=len(events))
    return idx, count, y


def train(
    events: list[Event], bits: int = 20, ftrl: Ftrl | None = None, epochs: int = 1
) -> tuple[Array, Array]:
    """FTRL over the events in order, ``epochs`` times; returns (weights, progressive predictions).

    The progressive predictions are those of the first pass, each made before learning from its event,
    so they are an honest out-of-sample estimate of quality.
    """
    f = ftrl or Ftrl()
    idx, count, y = event_rows(events, bits)
    z, nsq = np.zeros(1 << bits), np.zeros(1 << bits)
    progressive = np.empty(len(events))
    scratch = np.empty(len(events))
    for epoch in range(epochs):
        p_out = progressive if epoch == 0 else scratch
        ftrl_fit(idx, count, y, z, nsq, f.alpha, f.beta, f.l1, f.l2, p_out)
    return weights(z, nsq, f.alpha, f.beta, f.l1, f.l2), progressive


def predict(events: list[Event], weight: Array) -> Array:
    """P(conversion) of logged events under a trained model (for evaluation, not the request path)."""
    bits = int(weight.shape[0]).bit_length() - 1
    idx, count, _ = event_rows(events, bits)
    s = np.array([weight[idx[e, : count[e]]].sum() for e in range(len(events))])
    out: Array = 1.0 / (1.0 + np.exp(-np.clip(s, -35, 35)))
    return out
