"""Counters the hot path bumps (plain ints: no locks, no label lookups), read by /status and /metrics.

Everything runs on one event-loop thread per worker, so plain attribute increments are safe and cost
tens of nanoseconds; a prometheus_client ``Counter.labels(...).inc()`` per request would cost more than
our whole decision. ``/metrics`` turns these into Prometheus families at scrape time.
"""

from __future__ import annotations

import bisect
import collections

# Upper bounds of the request-latency histogram, in milliseconds.
LATENCY_BUCKETS_MS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0)
_BOUNDS_NS = [int(b * 1e6) for b in LATENCY_BUCKETS_MS]

# Why a request or an imp got no bid. Counted per request (the first reason that applied).
NO_BID_REASONS = (
    "no_match",  # targeting, blocks, seats or formats left no line
    "below_floor",  # lines matched but none valued the imp at or above the floor
    "budget",  # the winning line's campaign could not reserve the cost
    "pacing",  # the winning line's campaign was throttled by its pacer
    "currency",  # a floor or the requested currencies are not in the rate table
    "tmax",  # not enough time left to answer (nbr 15)
    "private_auction",  # deal-only imp and no deal line matched
    "error",  # an internal failure, answered 204 rather than 500
)


class CampaignStats:
    __slots__ = ("bids", "wins", "billed", "losses", "spend", "audits", "no_bid")

    def __init__(self) -> None:
        self.bids = 0
        self.wins = 0
        self.billed = 0
        self.losses = 0
        self.spend = 0  # USD micros booked
        self.audits = 0
        self.no_bid: collections.Counter[str] = collections.Counter()

    def as_dict(self) -> dict[str, object]:
        return {
            "bids": self.bids,
            "wins": self.wins,
            "billed": self.billed,
            "losses": self.losses,
            "spend": self.spend / 1_000_000,
            "audits": self.audits,
            "no_bid": dict(self.no_bid),
        }


class Stats:
    __slots__ = (
        "bids", "campaigns", "decisions", "errors", "events", "invalid", "latency", "latency_sum_ns", "no_bid",
        "notices", "requests",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.bids = 0  # requests answered with at least one bid
        self.invalid = 0  # answered 400/413
        self.errors = 0
        self.decisions: collections.Counter[str] = collections.Counter()  # by source: ai, fallback, ...
        self.events: collections.Counter[str] = collections.Counter()  # shield events by kind
        self.no_bid: collections.Counter[str] = collections.Counter()
        self.notices: collections.Counter[tuple[str, str]] = collections.Counter()  # (kind, outcome)
        self.campaigns: dict[str, CampaignStats] = collections.defaultdict(CampaignStats)
        self.latency = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.latency_sum_ns = 0

    def observe(self, ns: int) -> None:
        self.latency[bisect.bisect_left(_BOUNDS_NS, ns)] += 1
        self.latency_sum_ns += ns
