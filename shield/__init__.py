"""Money safety for the bidder: budgets, pacing, rate limits, a circuit breaker and fallback bids.

Depends on nothing else in this repository. Time comes from an injected ``Clock`` (``FakeClock`` in
tests); events go to an injected ``EventSink``; money is integer micros (1 USD = 1_000_000).

- ``budget``: ``BudgetManager``, a sliding-window cap with reservations (one per key).
- ``keyed``: ``Budgets`` (managers by key) and ``reserve_all``/``commit_all``/``release_all``.
- ``holds``: ``Holds``, a bid's reservation against several budgets held in aggregate (no state per bid).
- ``pacing``: ``Pacer``, the adaptive throttle that spreads a daily budget over the day.
- ``ratelimit``: ``RateLimiter``, exact sliding-window limits on outgoing platform API calls.
- ``breaker``: ``CircuitBreaker``; ``fallback``: ``FallbackPricer`` for when the breaker is open.

Errors::

    ShieldError
     +-- ConfigError (ValueError)            a budget, limit, threshold or platform that cannot be used
     +-- AmountError (ValueError)            money that is not a non-negative int of micros / bad CPM
     +-- DuplicateReservation (ValueError)   a second live reservation for the same bid id
     +-- CircuitOpen                         CircuitBreaker.call/acall refused to run the call
"""

from shield.breaker import REFUSED, BreakerState, BreakerStats, CircuitBreaker
from shield.budget import BudgetManager, BudgetStats
from shield.clock import Clock, FakeClock, MonotonicClock
from shield.errors import AmountError, CircuitOpen, ConfigError, DuplicateReservation, ShieldError
from shield.events import BreakerStateChanged, BudgetAlert, Event, EventSink, MemorySink, NullSink
from shield.fallback import PLATFORM_MULTIPLIERS, FallbackPricer, FallbackStats
from shield.holds import Group, Holds
from shield.keyed import (
    Budgets,
    campaign_key,
    commit_all,
    first_refusal,
    platform_key,
    release_all,
    reserve_all,
)
from shield.pacing import Pacer, PacerStats
from shield.ratelimit import DEFAULT_LIMITS, RateLimit, RateLimiter, SlidingWindowLimiter

__all__ = [
    "DEFAULT_LIMITS",
    "PLATFORM_MULTIPLIERS",
    "REFUSED",
    "AmountError",
    "BreakerState",
    "BreakerStateChanged",
    "BreakerStats",
    "BudgetAlert",
    "BudgetManager",
    "BudgetStats",
    "Budgets",
    "CircuitBreaker",
    "CircuitOpen",
    "Clock",
    "ConfigError",
    "DuplicateReservation",
    "Event",
    "EventSink",
    "FakeClock",
    "FallbackPricer",
    "FallbackStats",
    "Group",
    "Holds",
    "MemorySink",
    "MonotonicClock",
    "NullSink",
    "Pacer",
    "PacerStats",
    "RateLimit",
    "RateLimiter",
    "ShieldError",
    "SlidingWindowLimiter",
    "campaign_key",
    "commit_all",
    "first_refusal",
    "platform_key",
    "release_all",
    "reserve_all",
]
