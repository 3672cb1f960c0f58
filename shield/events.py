"""Events the shield emits (budget alerts, breaker state changes) and the sink seam they go to.

The shield never does I/O: it hands each event to an injected ``EventSink`` after releasing its own
locks. The bidder's sink counts them in metrics and queues them for ``GET /events``.
"""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec


class BudgetAlert(msgspec.Struct, frozen=True):
    """Utilisation (window spend + reserved) / max budget crossed the alert level upwards."""

    key: str
    ts: float  # wall-clock unix seconds
    utilisation: float
    spend: int  # micros committed in the window
    reserved: int  # micros held by live reservations
    max_budget: int  # micros
    kind: Literal["budget.alert"] = "budget.alert"


class BreakerStateChanged(msgspec.Struct, frozen=True):
    key: str
    ts: float
    old: str
    new: str
    reason: str
    kind: Literal["breaker.state_changed"] = "breaker.state_changed"


Event = BudgetAlert | BreakerStateChanged


class EventSink(Protocol):
    def emit(self, event: Event) -> None:
        """Take one event. Called without any shield lock held; must be cheap and must not raise."""
        ...


class NullSink:
    def emit(self, event: Event) -> None:
        pass


class MemorySink:
    """Keeps every event in a list; for tests and small tools."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


NULL_SINK = NullSink()
