"""The budget gate between a priced bid and the response: no reservation, no bid.

``BudgetGate`` is the seam; ``TotalBudget`` is the simple gate (booked spend against each campaign's
total budget). When a campaign can no longer afford a bid, its lines leave ``Index.live`` so that later
requests do not even consider it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from bidder.index import Index


class BudgetGate(Protocol):
    def bind(self, index: Index) -> None:
        """Adopt a newly built index (campaign positions change when campaigns reload)."""

    def reserve(self, campaign: int, bid_id: str, micros: int) -> bool:
        """Hold ``micros`` for a bid of the campaign at position ``campaign``; False refuses the bid."""

    def commit(self, campaign_id: str, bid_id: str, micros: int) -> None:
        """Book the billed cost of a bid (always: money the exchange spent is never dropped)."""

    def release(self, bid_id: str) -> None:
        """Give back what a lost bid held."""


class TotalBudget:
    def __init__(self, booked: Mapping[str, int]) -> None:
        self._booked = dict(booked)  # campaign id -> USD micros
        self._index: Index | None = None
        self._totals: list[int] = []
        self._ids: list[str] = []

    def bind(self, index: Index) -> None:
        self._index = index
        self._ids = [c.id for c in index.campaigns]
        self._totals = [round(c.budget.total * 1e6) for c in index.campaigns]
        for ci in range(len(self._ids)):
            self._refresh(ci)

    def _refresh(self, ci: int) -> None:
        index = self._index
        assert index is not None
        lines = index.lines_of(ci)
        if self._booked.get(self._ids[ci], 0) >= self._totals[ci]:
            index.live &= ~lines
        else:
            index.live |= lines

    def reserve(self, campaign: int, bid_id: str, micros: int) -> bool:
        return self._booked.get(self._ids[campaign], 0) + micros <= self._totals[campaign]

    def commit(self, campaign_id: str, bid_id: str, micros: int) -> None:
        self._booked[campaign_id] = self._booked.get(campaign_id, 0) + micros
        if campaign_id in self._ids:
            self._refresh(self._ids.index(campaign_id))

    def release(self, bid_id: str) -> None:
        pass  # nothing is held between bid and notice by this gate
