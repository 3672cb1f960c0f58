"""``CircuitBreaker``: stop calling what keeps failing, probe it again later.

CLOSED lets calls through and counts consecutive bad ones (an exception, or slower than
``slow_call_seconds``); ``failure_threshold`` of them in a row open it. OPEN refuses every call until
``reset_timeout`` has passed, then the next ``allow`` makes it HALF_OPEN, which lets at most
``half_open_max_calls`` probes run at once: ``success_threshold`` good probes in a row close it, any bad
probe opens it again. A probe still running after ``slow_call_seconds`` is already a bad call, so the
next ``allow`` that finds one re-opens the breaker rather than wait for it forever. An operator can force
it OPEN or DISABLE it (every call passes, nothing is counted) until ``reset``.

Usage without wrappers (how the bidder guards model scoring)::

    token = breaker.allow()
    if not token:                       # refused: use the fallback
        ...
    t0 = clock.monotonic()
    try:
        score()
    except Exception:
        breaker.record_failure(token)
        raise
    breaker.record_success(token, clock.monotonic() - t0)

The token ties a result to the state that admitted it: a call admitted while CLOSED that returns after
the breaker opened does not count as a probe, and a probe abandoned as overdue cannot close it later.
No lock is held while the guarded call runs, and the CLOSED path takes no lock at all.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import ParamSpec, TypeVar

import msgspec

from shield.clock import Clock, MonotonicClock
from shield.errors import CircuitOpen, ConfigError
from shield.events import NULL_SINK, BreakerStateChanged, EventSink

P = ParamSpec("P")
T = TypeVar("T")

_SLOT_BITS = 10  # a token is generation << _SLOT_BITS | probe slot (0 = not a probe)
_SLOT_MASK = (1 << _SLOT_BITS) - 1
REFUSED = 0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


CLOSED = BreakerState.CLOSED
OPEN = BreakerState.OPEN
HALF_OPEN = BreakerState.HALF_OPEN
FORCED_OPEN = BreakerState.FORCED_OPEN
DISABLED = BreakerState.DISABLED


class BreakerStats(msgspec.Struct, frozen=True):
    name: str
    state: str
    opens: int  # times it went OPEN (automatically)
    refused: int  # calls refused while open
    bad_calls: int  # exceptions and slow calls counted
    consecutive_bad: int


class CircuitBreaker:
    __slots__ = (
        "_bad", "_bad_calls", "_clock", "_gen", "_good_probes", "_lock", "_now", "_opened_at", "_opens", "_probes",
        "_refused", "_reset_timeout", "_sink", "_slow", "_state", "_successes_needed", "_threshold", "_token",
        "name",
    )

    def __init__(
        self,
        name: str,
        clock: Clock | None = None,
        sink: EventSink = NULL_SINK,
        *,
        failure_threshold: int = 3,
        slow_call_seconds: float = 0.5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 2,
        success_threshold: int = 2,
    ) -> None:
        if failure_threshold < 1 or success_threshold < 1:
            raise ConfigError(f"breaker {name!r}: failure_threshold and success_threshold must be >= 1")
        if not 1 <= half_open_max_calls <= _SLOT_MASK:
            raise ConfigError(f"breaker {name!r}: half_open_max_calls must be in 1..{_SLOT_MASK}")
        if not (slow_call_seconds > 0 and reset_timeout > 0):
            raise ConfigError(f"breaker {name!r}: slow_call_seconds and reset_timeout must be > 0")
        self.name = name
        self._clock = clock if clock is not None else MonotonicClock()
        self._now = self._clock.monotonic
        self._sink = sink
        self._threshold = failure_threshold
        self._slow = slow_call_seconds
        self._reset_timeout = reset_timeout
        self._successes_needed = success_threshold
        self._lock = threading.Lock()
        self._state = CLOSED
        self._gen = 1
        self._token = self._gen << _SLOT_BITS
        self._probes: list[float | None] = [None] * half_open_max_calls  # start times of probes in flight
        self._opened_at = 0.0
        self._bad = 0  # consecutive bad calls while CLOSED
        self._good_probes = 0
        self._opens = self._refused = self._bad_calls = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> int:
        """A token (> 0) when the call may run, ``REFUSED`` (0) when not. Pass the token to ``record_*``."""
        if self._state is CLOSED:
            return self._token
        return self._allow_slow()

    def record_success(self, token: int, duration: float) -> None:
        """The call returned after ``duration`` seconds; slower than ``slow_call_seconds`` counts as bad."""
        if token == self._token and self._bad == 0 and duration <= self._slow:
            return  # CLOSED (or DISABLED) with nothing to reset: the common case takes no lock
        self._record(token, duration > self._slow)

    def record_failure(self, token: int) -> None:
        self._record(token, True)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        token = self.allow()
        if not token:
            raise CircuitOpen(f"breaker {self.name!r} is {self._state.value}: call refused")
        start = self._now()
        try:
            result = fn(*args, **kwargs)
        except Exception:
            self.record_failure(token)
            raise
        self.record_success(token, self._now() - start)
        return result

    async def acall(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        token = self.allow()
        if not token:
            raise CircuitOpen(f"breaker {self.name!r} is {self._state.value}: call refused")
        start = self._now()
        try:
            result = await fn(*args, **kwargs)
        except Exception:  # cancellation (BaseException) is not the callee's fault
            self.record_failure(token)
            raise
        self.record_success(token, self._now() - start)
        return result

    def force_open(self, reason: str = "forced by operator") -> None:
        self._set(FORCED_OPEN, reason)

    def disable(self, reason: str = "disabled by operator") -> None:
        self._set(DISABLED, reason)

    def reset(self, reason: str = "reset by operator") -> None:
        """Back to CLOSED with clean counts, from any state."""
        self._set(CLOSED, reason)

    def stats(self) -> BreakerStats:
        return BreakerStats(
            self.name, self._state.value, self._opens, self._refused, self._bad_calls, self._bad
        )

    # -- internals ---------------------------------------------------------------------------------

    def _allow_slow(self) -> int:
        event = None
        token = REFUSED
        with self._lock:
            state = self._state
            if state is CLOSED or state is DISABLED:
                return self._token
            if state is OPEN or state is HALF_OPEN:
                now = self._now()
                if state is OPEN and now - self._opened_at >= self._reset_timeout:
                    event = self._transition(HALF_OPEN, now, "reset timeout passed")
                    state = HALF_OPEN
                if state is HALF_OPEN:
                    probes = self._probes
                    if any(t is not None and now - t > self._slow for t in probes):
                        event = self._transition(OPEN, now, "probe overdue (slower than the slow-call limit)")
                    else:
                        for i, started in enumerate(probes):
                            if started is None:
                                probes[i] = now
                                token = self._token | (i + 1)
                                break
            if not token:
                self._refused += 1
        if event is not None:
            self._sink.emit(event)
        return token

    def _record(self, token: int, bad: bool) -> None:
        event = None
        with self._lock:
            if token >> _SLOT_BITS != self._gen or self._state is DISABLED:
                return  # admitted under an earlier state (or nothing is counted): not this state's evidence
            slot = token & _SLOT_MASK
            if bad:
                self._bad_calls += 1
            if self._state is CLOSED:
                self._bad = self._bad + 1 if bad else 0
                if self._bad >= self._threshold:
                    event = self._transition(OPEN, self._now(), f"{self._bad} consecutive bad calls")
            elif self._state is HALF_OPEN and slot:
                self._probes[slot - 1] = None
                if bad:
                    event = self._transition(OPEN, self._now(), "probe failed")
                else:
                    self._good_probes += 1
                    if self._good_probes >= self._successes_needed:
                        event = self._transition(CLOSED, self._now(), "probes succeeded")
        if event is not None:
            self._sink.emit(event)

    def _set(self, state: BreakerState, reason: str) -> None:
        with self._lock:
            old = self._state
            event = self._transition(state, self._now(), reason)
        if old is not state:
            self._sink.emit(event)

    def _transition(self, new: BreakerState, now: float, reason: str) -> BreakerStateChanged:
        old = self._state
        self._state = new
        self._gen += 1
        self._token = self._gen << _SLOT_BITS
        self._bad = 0
        self._good_probes = 0
        self._probes = [None] * len(self._probes)
        if new is OPEN:
            self._opened_at = now
            self._opens += 1
        return BreakerStateChanged(
            key=self.name, ts=self._clock.time(), old=old.value, new=new.value, reason=reason
        )
