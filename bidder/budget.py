"""The budget gate between a priced bid and the response: no reservation, no bid.

Each campaign's bid reserves its cost (price / 1000) all-or-nothing against every budget that covers it
(``shield``): the campaign's lifetime total, its rolling daily budget, its optional 10-minute window
cap, and its platform's window cap. A campaign with a daily budget is also paced (``shield.Pacer``):
a throttled campaign steps aside for the next candidate. Billing notices commit the clearing cost;
loss notices release; a bid with neither is released by the shield after the reservation expiry.

Reservations are held in aggregate (``shield.Holds``), keyed by the bid's expiry second, which its
notice URLs carry signed with its price: a bid leaves no state behind, and a notice finds its sum
again. A bid id is this process's ``prefix`` and the bid's serial in hex: a notice for a bid made by
another process (or before a restart), which this one holds nothing for, is booked as late instead.

Managers live in a ``shield.Budgets`` registry keyed by campaign id, so they survive campaign
reloads; booked spend from the ledger seeds them at start, so a restart forgets no money.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping

from bidder._native import Admit
from bidder.index import Index
from bidder.settings import parse_amounts
from shield import (
    BudgetManager,
    Budgets,
    Clock,
    EventSink,
    Group,
    Holds,
    Pacer,
    campaign_key,
    platform_key,
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
        "_booked", "_booked_last_day", "_budgets", "_by_id", "_clock", "_group", "_holds", "_index", "_pacer_of",
        "_pacers", "_platform_caps", "_rng", "_total", "admit", "prefix",
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
        # Slots of a 60th of the expiry: a campaign's reservations are about 60 sums, whatever the bid rate.
        self._holds = Holds(clock, expiry_seconds=expiry_seconds, slot_seconds=max(1, int(expiry_seconds) // 60))
        self.prefix = os.urandom(5).hex()  # starts every bid id: ours across restarts and workers
        self._booked = booked
        self._booked_last_day = booked_last_day
        self._platform_caps = platform_caps
        self._rng = rng
        self._pacers: dict[str, Pacer] = {}
        # Per campaign id, every group of budgets its bids have drawn on (a reload may change it), newest last.
        self._by_id: dict[str, tuple[list[Group], Pacer | None]] = {}
        self._group: list[Group] = []
        self._pacer_of: list[Pacer | None] = []
        self._total: list[BudgetManager] = []
        self._index: Index | None = None
        self.admit = self._admission()

    def _admission(self) -> Admit:
        """``admit(campaign, key, micros, serial)``, the twin of ``admit_py`` in C (``bidder/_admit.c``),
        over the current campaigns' budgets."""
        return Admit(self._pacer_of, self._group, self._holds, self._rng, self._refused)

    def bind(self, index: Index) -> None:
        """Adopt a newly built index: budgets follow the campaigns' current settings."""
        groups: list[Group] = []
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
            group = tuple(managers)
            groups.append(group)
            pacers.append(pacer)
            totals.append(total)
            # Kept for campaigns that leave (paused, removed): their late notices still book against them.
            seen = self._by_id.get(c.id, ([], None))[0]
            self._by_id[c.id] = ([*(g for g in seen if g != group), group], pacer)
        self._group, self._pacer_of, self._total = groups, pacers, totals
        self._index = index
        self.admit = self._admission()
        for ci, total in enumerate(totals):
            if not total.can_spend(1) and total.stats().spend >= total.max_budget:
                index.live &= ~index.campaign_lines[ci]

    def admit_py(self, campaign: int, key: int, micros: int, serial: int) -> str | None:
        """``admit`` in Python: reserve a bid's cost under ``key`` (its expiry second); None when admitted,
        else the no-bid reason ("pacing" or "budget"). ``serial``: the number its bid id ends with, in hex."""
        pacer = self._pacer_of[campaign]
        if pacer is not None and not pacer.allow(self._rng()):
            return "pacing"
        if self._holds.reserve(self._group[campaign], key, micros, serial):
            return None
        return self._refused(campaign)

    def _refused(self, campaign: int) -> str:
        """A bid the budgets refused: "budget"."""
        total = self._total[campaign]
        if total.stats().spend >= total.max_budget and self._index is not None:
            # Spent for good (not merely held by reservations): stop considering its lines at all.
            self._index.live &= ~self._index.campaign_lines[campaign]
        return "budget"

    def commit(self, campaign_id: str, bid_id: str, key: int, reserved: int, micros: int) -> None:
        """Book a billed cost (always in full: money the exchange spent is never dropped) for a bid
        that reserved ``reserved`` under ``key``."""
        groups, pacer = self._by_id.get(campaign_id, ([], None))
        self._holds.commit(groups, self._serial(bid_id), key, reserved, micros)
        if pacer is not None:
            pacer.record(micros)

    def release(self, campaign_id: str, bid_id: str, key: int, reserved: int) -> None:
        groups, _ = self._by_id.get(campaign_id, ([], None))
        self._holds.release(groups, self._serial(bid_id), key, reserved)

    def _serial(self, bid_id: str) -> int | None:
        """The serial of one of this process's bid ids; None for another's (held nothing here)."""
        if not bid_id.startswith(self.prefix):
            return None
        try:
            return int(bid_id[len(self.prefix):], 16)
        except ValueError:
            return None

    def stats(self) -> dict[str, object]:
        self._holds.sweep()
        return {key: {"spend": s.spend / 1e6, "reserved": s.reserved / 1e6, "max": s.max_budget / 1e6,
                      "utilisation": round(s.utilisation, 4), "overruns": s.overruns, "late": s.late_commits}
                for key, s in self._budgets.stats().items()}
