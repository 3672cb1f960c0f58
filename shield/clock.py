"""The time seam: everything in the shield reads time through a ``Clock`` so tests never sleep."""

from __future__ import annotations

import time
from typing import Protocol

from shield.errors import ConfigError


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; used for windows, timeouts and expiry."""
        ...

    def time(self) -> float:
        """Wall-clock unix seconds; used only for event timestamps and the pacer's day boundaries."""
        ...


class MonotonicClock:
    # staticmethod over the builtins: ``clock.monotonic()`` is then a direct C call, no Python frame.
    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


# 2026-01-01T00:00:00Z: fake wall time starts at a midnight so day arithmetic in tests is readable.
FAKE_EPOCH = 1_767_225_600.0


class FakeClock:
    """A clock that moves only when told to (``advance``); both readings move together."""

    def __init__(self, monotonic: float = 0.0, wall: float = FAKE_EPOCH) -> None:
        self._mono = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        return self._mono

    def time(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        if not seconds >= 0:  # also refuses NaN
            raise ConfigError(f"FakeClock.advance: seconds must be >= 0, got {seconds!r}")
        self._mono += seconds
        self._wall += seconds
