"""Per-platform limits on outgoing platform API calls, exact over a sliding window.

A limit of ``calls`` per ``per_seconds`` keeps the times of the last ``calls`` admitted calls in a deque
bounded by ``calls``: a new call is admitted when the oldest of them is at least ``per_seconds`` old.
That is exact (no fixed-window double burst at the edge) and O(1) per call.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

import msgspec

from shield.clock import Clock, MonotonicClock
from shield.errors import ConfigError


class RateLimit(msgspec.Struct, frozen=True):
    calls: int
    per_seconds: float


DEFAULT_LIMITS: Mapping[str, RateLimit] = {
    "google_ads": RateLimit(100, 60.0),
    "meta": RateLimit(200, 3600.0),
    "tradedesk": RateLimit(300, 60.0),
}


class SlidingWindowLimiter:
    def __init__(self, limit: RateLimit, clock: Clock | None = None, *, name: str = "") -> None:
        if limit.calls.__class__ is not int or limit.calls < 1 or not limit.per_seconds > 0:
            raise ConfigError(
                f"rate limit {name!r}: needs calls >= 1 (int) and per_seconds > 0, got {limit!r}"
            )
        self.name = name
        self.limit = limit
        self._now = (clock if clock is not None else MonotonicClock()).monotonic
        self._times: deque[float] = deque(maxlen=limit.calls)
        self._lock = threading.Lock()
        self.admitted = 0
        self.refused = 0

    def try_acquire(self) -> float:
        """0.0 when the call may go ahead (and is counted); otherwise the seconds until one may."""
        self._lock.acquire()
        try:
            now = self._now()
            times = self._times
            if len(times) == self.limit.calls:
                wait = times[0] + self.limit.per_seconds - now
                if wait > 0:
                    self.refused += 1
                    return wait
            times.append(now)  # the deque's maxlen drops the oldest
            self.admitted += 1
            return 0.0
        finally:
            self._lock.release()

    def remaining(self) -> int:
        """Calls that would be admitted right now."""
        with self._lock:
            now = self._now()
            cutoff = now - self.limit.per_seconds
            in_window = sum(1 for t in self._times if t > cutoff)
            return self.limit.calls - in_window


class RateLimiter:
    """One ``SlidingWindowLimiter`` per platform; platforms not in ``limits`` use ``default`` if given."""

    def __init__(
        self,
        clock: Clock | None = None,
        limits: Mapping[str, RateLimit] = DEFAULT_LIMITS,
        *,
        default: RateLimit | None = None,
    ) -> None:
        self._clock = clock if clock is not None else MonotonicClock()
        self._limits = dict(limits)
        self._default = default
        self._limiters: dict[str, SlidingWindowLimiter] = {}
        self._lock = threading.Lock()
        for platform, limit in self._limits.items():
            self._limiters[platform] = SlidingWindowLimiter(limit, self._clock, name=platform)

    def limiter(self, platform: str) -> SlidingWindowLimiter:
        found = self._limiters.get(platform)
        if found is not None:
            return found
        if self._default is None:
            raise ConfigError(
                f"no rate limit configured for platform {platform!r} "
                f"(configured: {', '.join(sorted(self._limits)) or 'none'}); add one or set a default"
            )
        with self._lock:
            return self._limiters.setdefault(
                platform, SlidingWindowLimiter(self._default, self._clock, name=platform)
            )

    def try_acquire(self, platform: str) -> float:
        """0.0 when a call to ``platform`` may go ahead (and is counted); else seconds to wait."""
        return self.limiter(platform).try_acquire()

    def configure(self, platform: str, limit: RateLimit) -> None:
        """Set or replace ``platform``'s limit; calls already made still count against the new one."""
        with self._lock:
            fresh = SlidingWindowLimiter(limit, self._clock, name=platform)
            old = self._limiters.get(platform)
            if old is not None:
                with old._lock:
                    fresh._times.extend(old._times)
            self._limits[platform] = limit
            self._limiters[platform] = fresh
