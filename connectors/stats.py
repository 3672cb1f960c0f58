"""Per-connector counters, and a Prometheus collector that the bidder's ``/metrics`` can register.

Plain integers updated on the event loop (no locks needed there); the collector reads them at scrape time,
so the hot path pays for an increment, not for a metrics library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from .base import Connector

# Outcomes of place_bid; "placed" and "fallback" are decisions, the rest are refusals or failures.
OUTCOMES = ("placed", "fallback", "budget_veto", "rate_limited", "throttled", "error", "no_bid")
# Platform response time buckets, seconds; 0.5 is the breaker's "slow" line.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Stats:
    def __init__(self) -> None:
        self.bids = dict.fromkeys(OUTCOMES, 0)
        self.calls_ok = 0
        self.calls_failed = 0
        self.latency_counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.latency_sum = 0.0
        self.rate_limit_warnings = 0
        self.budget_alerts = 0

    def observe_call(self, seconds: float, ok: bool) -> None:
        if ok:
            self.calls_ok += 1
        else:
            self.calls_failed += 1
        self.latency_sum += seconds
        for i, edge in enumerate(BUCKETS):
            if seconds <= edge:
                self.latency_counts[i] += 1
                return
        self.latency_counts[-1] += 1

    @property
    def attempts(self) -> int:
        return sum(self.bids.values())

    @property
    def veto_rate(self) -> float:
        """Budget vetoes / place_bid attempts (0 before the first attempt)."""
        n = self.attempts
        return self.bids["budget_veto"] / n if n else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "bids": dict(self.bids),
            "calls": {"ok": self.calls_ok, "failed": self.calls_failed},
            "veto_rate": self.veto_rate,
            "mean_response_s": self.latency_sum / max(1, self.calls_ok + self.calls_failed),
            "rate_limit_warnings": self.rate_limit_warnings,
            "budget_alerts": self.budget_alerts,
        }


class ConnectorCollector(Collector):
    """``REGISTRY.register(ConnectorCollector(lambda: connectors))``: exposes every connector's counters,
    labelled by ``connector`` (its name) and ``platform``."""

    def __init__(self, connectors: Callable[[], Iterable[Connector]]) -> None:
        self._connectors = connectors

    def collect(self) -> Iterator[Metric]:
        labels = ["connector", "platform"]
        bids = CounterMetricFamily("rtb_connector_bids", "place_bid outcomes", labels=[*labels, "outcome"])
        calls = CounterMetricFamily("rtb_connector_calls", "platform API calls", labels=[*labels, "result"])
        veto = GaugeMetricFamily("rtb_connector_budget_veto_rate", "budget vetoes / place_bid attempts",
                                 labels=labels)
        latency = HistogramMetricFamily("rtb_connector_response_seconds", "platform response time",
                                        labels=labels)
        warnings = CounterMetricFamily("rtb_connector_rate_limit_warnings", "rate-limit warnings",
                                       labels=labels)
        alerts = CounterMetricFamily("rtb_connector_budget_alerts", "budget alerts (80% utilisation)",
                                     labels=labels)
        util = GaugeMetricFamily("rtb_connector_budget_utilisation", "window spend+reserved / cap",
                                 labels=labels)
        breaker = GaugeMetricFamily("rtb_connector_breaker_open", "1 while the breaker refuses calls",
                                    labels=labels)
        for c in self._connectors():
            lv = [c.name, c.platform]
            s = c.stats
            for outcome, n in s.bids.items():
                bids.add_metric([*lv, outcome], n)
            calls.add_metric([*lv, "ok"], s.calls_ok)
            calls.add_metric([*lv, "failed"], s.calls_failed)
            veto.add_metric(lv, s.veto_rate)
            cumulative, running = [], 0
            for edge, n in zip((*map(str, BUCKETS), "+Inf"), s.latency_counts, strict=True):
                running += n
                cumulative.append((edge, running))
            latency.add_metric(lv, cumulative, s.latency_sum)
            warnings.add_metric(lv, s.rate_limit_warnings)
            alerts.add_metric(lv, s.budget_alerts)
            if c.budget is not None:
                util.add_metric(lv, c.budget.stats().utilisation)
            breaker.add_metric(lv, 1.0 if c.breaker_open() else 0.0)
        yield from (bids, calls, veto, latency, warnings, alerts, util, breaker)
