"""The control plane's Prometheus metrics, in a registry of its own (one per app, so tests can make many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "campaign_automation_requests_total", "API requests by action and HTTP status",
            ["action", "status"], registry=self.registry,
        )
        self.duration = Histogram(
            "campaign_automation_request_duration_seconds", "API request duration by action", ["action"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.platform_calls = Counter(
            "platform_api_calls_total", "Calls to bidders and ad platforms by platform and outcome",
            ["platform", "status"], registry=self.registry,
        )
        self.active_rules = Gauge(
            "campaign_automation_active_rules", "Enabled optimisation rules", registry=self.registry,
        )
