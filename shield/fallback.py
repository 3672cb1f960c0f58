"""Heuristic bids for when the value model cannot be used (its breaker is open).

The bid is the median of the last ``size`` (100) bid prices the model produced, in CPM, times a
per-platform multiplier; with no history there is no bid, because a guess with nothing behind it is how
a bidder bids wildly. Samples live in a preallocated ring, and the median is computed only when asked
for after a new sample arrived (while the breaker is open none arrive, so fallback bids cost O(1)).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping

import msgspec

from shield.errors import AmountError, ConfigError

PLATFORM_MULTIPLIERS: Mapping[str, float] = {
    "google_ads": 1.0,
    "meta": 1.0,
    "tradedesk": 1.0,
    "amazon": 1.0,
    "x": 0.75,
    "linkedin": 1.2,
    "tiktok": 1.5,
    "openrtb": 1.0,
}


class FallbackStats(msgspec.Struct, frozen=True):
    samples: int
    median_cpm: float | None
    fallback_bids: int  # fallback prices handed out
    no_history: int  # fallback asked for with no samples: no bid


class FallbackPricer:
    __slots__ = ("_lock", "_median", "_multipliers", "_n", "_next", "_ring", "_size", "fallback_bids", "no_history")

    def __init__(self, size: int = 100, multipliers: Mapping[str, float] = PLATFORM_MULTIPLIERS) -> None:
        if size < 1:
            raise ConfigError(f"fallback pricer: size must be >= 1, got {size!r}")
        for platform, m in multipliers.items():
            if not (math.isfinite(m) and m > 0):
                raise ConfigError(f"fallback pricer: multiplier for {platform!r} must be > 0, got {m!r}")
        self._multipliers = dict(multipliers)
        self._ring = [0.0] * size
        self._size = size
        self._n = 0  # samples held, up to size
        self._next = 0  # ring slot for the next sample
        self._median: float | None = None  # cached; None = recompute
        self._lock = threading.Lock()
        self.fallback_bids = 0
        self.no_history = 0

    def observe(self, cpm: float) -> None:
        """Remember one bid price (CPM) the model produced."""
        if not (cpm >= 0 and cpm != math.inf):  # also refuses NaN
            raise AmountError(f"fallback pricer: a model bid must be a finite CPM >= 0, got {cpm!r}")
        self._lock.acquire()  # not ``with``: half the cost, and this runs per bid
        try:
            self._ring[self._next] = cpm
            self._next = (self._next + 1) % self._size
            if self._n < self._size:
                self._n += 1
            self._median = None
        finally:
            self._lock.release()

    def median(self) -> float | None:
        with self._lock:
            return self._median_locked()

    def fallback_bid(self, platform: str) -> float | None:
        """CPM to bid on ``platform`` without the model, or None (no history: do not bid)."""
        try:
            multiplier = self._multipliers[platform]
        except KeyError:
            raise ConfigError(
                f"fallback pricer: no multiplier for platform {platform!r} "
                f"(known: {', '.join(sorted(self._multipliers))})"
            ) from None
        with self._lock:
            median = self._median_locked()
            if median is None:
                self.no_history += 1
                return None
            self.fallback_bids += 1
        return median * multiplier

    def stats(self) -> FallbackStats:
        with self._lock:
            return FallbackStats(self._n, self._median_locked(), self.fallback_bids, self.no_history)

    def _median_locked(self) -> float | None:
        if self._median is None and self._n:
            held = sorted(self._ring[: self._n])
            mid = self._n // 2
            self._median = held[mid] if self._n % 2 else (held[mid - 1] + held[mid]) / 2
        return self._median
