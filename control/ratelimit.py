"""Per-API-key token buckets: ``rate`` requests a second on average, bursts up to ``burst``."""

from __future__ import annotations

from control.clock import Clock
from control.errors import RateLimited


class KeyRateLimiter:
    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate limit needs rate > 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, last refill time)

    def check(self, key_id: str) -> None:
        """Take one token for ``key_id`` or raise ``RateLimited`` saying when the next one is due."""
        now = self.clock.now()
        tokens, last = self._buckets.get(key_id, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key_id] = (tokens, now)
            raise RateLimited((1.0 - tokens) / self.rate)
        self._buckets[key_id] = (tokens - 1.0, now)
