"""The budget gate between a priced bid and the response: no reservation, no bid.

Each campaign's bid reserves its cost (price / 1000) all-or-nothing against every budget that covers it
(``shield``): the campaign's lifetime total, its rolling daily budget, its optional 10-minute window
cap, and its platform's window cap. A campaign with a daily budget is also paced (``shield.Pacer``):
a throttled campaign steps aside for the next candidate. Billing notices commit the clearing cost;
loss notices release; a bid with neither is released by the shield after the reservation expiry.

Managers live in a ``shield.Budgets`` registry keyed by campaign id, so they survive campaign
reloads; booked spend from the ledger seeds them at start, so a restart forgets no money.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from bidder.index import Index
from bidder.settings import parse_amounts
from shield import (
    BudgetManager,
    Budgets,
    Clock,
    EventSink,
    Pacer,
    campaign_key,
    commit_all,
    platform_key,
    release_all,
    reserve_all,
)

WINDOW = 600.0  # seconds: the sliding window of window caps
DAY = 86400.0

# Platform window caps in USD per 10 minutes (operators override with RTB_PLATFORM_BUDGETS).
PLATFORM_BUDGETS = {"google_ads": 500.0, "meta": 400.0, "tradedesk": 600.0}


def parse_platform_budgets(spec: str) -> dict[str, int]:
    """``"meta=400,tiktok=250"`` (USD per 10 minutes) over the defaults, as micros."""
    caps = {**PLATFORM_BUDGETS, **parse_amounts(spec, "RTB_PLATFORM_BUDGETS", "platform=USD, e.g. meta=400")}
    return {k: round(v * 1e6) for k, v in caps.items()}


class BudgetGate:
    __slots__ = (
        "_booked", "_booked_last_day", "_budgets", "_by_id", "_clock", "_index", "_managers", "_pacer_of", "_pacers",
        "_platform_caps", "_rng", "_total",
    )

    def __init__(
        self,
        clock: Clock,
        sink: EventSink,
        booked: Mapping[str, int],
        booked_last_day: Mapping[str, int],
        platform_caps: Mapping[str, int],
        expiry_seconds: float,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._clock = clock
        self._budgets = Budgets(clock, sink, expiry_seconds=expiry_seconds)
        self._booked = booked
        self._booked_last_day = booked_last_day
        self._platform_caps = platform_caps
        self._rng = rng
        self._pacers: dict[str, Pacer] = {}
        self._by_id: dict[str, tuple[list[BudgetManager], Pacer | None]] = {}
        self._managers: list[list[BudgetManager]] = []
        self._pacer_of: list[Pacer | None] = []
        self._total: list[BudgetManager] = []
        self._index: Index | None = None

    def bind(self, index: Index) -> None:
        """Adopt a newly built index: budgets follow the campaigns' current settings."""
        managers_of: list[list[BudgetManager]] = []
        pacers: list[Pacer | None] = []
        totals: list[BudgetManager] = []
        for c in index.campaigns:
            b = c.budget
            fresh = campaign_key(c.id, "total") not in self._budgets
            total = self._budgets.ensure(campaign_key(c.id, "total"), round(b.total * 1e6), None)
            if fresh and self._booked.get(c.id):
                total.add_spend(self._booked[c.id])
            managers = [total]
            pacer = None
            if b.daily is not None:
                daily_key = campaign_key(c.id, "daily")
                fresh = daily_key not in self._budgets
                daily = self._budgets.ensure(daily_key, round(b.daily * 1e6), DAY)
                if fresh and self._booked_last_day.get(c.id):
                    # Booked "now": it then counts for a full day from the restart, a little longer
                    # than it should, which can only make the budget stricter.
                    daily.add_spend(self._booked_last_day[c.id])
                managers.append(daily)
                pacer = self._pacers.get(c.id)
                if pacer is None:
                    pacer = self._pacers[c.id] = Pacer(round(b.daily * 1e6), self._clock, mode=b.pacing)
                else:
                    pacer.set_daily_budget(round(b.daily * 1e6))
            if b.window is not None:
                managers.append(self._budgets.ensure(campaign_key(c.id, "window"), round(b.window * 1e6), WINDOW))
            cap = self._platform_caps.get(c.platform)
            if cap is not None:
                managers.append(self._budgets.ensure(platform_key(c.platform), cap, WINDOW))
            managers_of.append(managers)
            pacers.append(pacer)
            totals.append(total)
        self._managers, self._pacer_of, self._total = managers_of, pacers, totals
        # Kept for campaigns that leave (paused, removed): their late notices still book against them.
        self._by_id.update({c.id: (m, p) for c, m, p in zip(index.campaigns, managers_of, pacers, strict=True)})
        self._index = index
        for ci, total in enumerate(totals):
            if not total.can_spend(1) and total.stats().spend >= total.max_budget:
                index.live &= ~index.campaign_lines[ci]

    def admit(self, campaign: int, bid_id: str, micros: int) -> str | None:
        """Reserve a bid's cost; None when admitted, else the no-bid reason ("pacing" or "budget")."""
        pacer = self._pacer_of[campaign]
        if pacer is not None and not pacer.allow(self._rng()):
            return "pacing"
        if reserve_all(self._managers[campaign], bid_id, micros):
            return None
        total = self._total[campaign]
        if total.stats().spend >= total.max_budget and self._index is not None:
            # Spent for good (not merely held by reservations): stop considering its lines at all.
            self._index.live &= ~self._index.campaign_lines[campaign]
        return "budget"

    def commit(self, campaign_id: str, bid_id: str, micros: int) -> None:
        """Book a billed cost (always in full: money the exchange spent is never dropped)."""
        managers, pacer = self._by_id.get(campaign_id, ((), None))
        commit_all(managers, bid_id, micros)
        if pacer is not None:
            pacer.record(micros)

    def release(self, campaign_id: str, bid_id: str) -> None:
        managers, _ = self._by_id.get(campaign_id, ((), None))
        release_all(managers, bid_id)

    def stats(self) -> dict[str, object]:
        return {key: {"spend": s.spend / 1e6, "reserved": s.reserved / 1e6, "max": s.max_budget / 1e6,
                      "utilisation": round(s.utilisation, 4), "overruns": s.overruns, "late": s.late_commits}
                for key, s in self._budgets.stats().items()}
