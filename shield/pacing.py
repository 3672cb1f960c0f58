"""Daily budget pacing: an adaptive throttle in front of the budget check.

After Agarwal, Ghosh, Wei and Chen, "Budget Pacing for Targeted Online Advertisements at LinkedIn"
(KDD 2014): each campaign has a pass-through rate ``p``; a request goes on to bidding with
probability ``p``. Every slot (a minute by default) the spend of the slots just ended is compared with
the plan for them and ``p`` is scaled by plan / actual (bounded per step), and the plan for each
remaining slot is re-spread from what is left of the day's budget. A campaign facing far more traffic
than it can buy therefore spends through the whole day instead of in its first minutes; a campaign
that cannot find enough traffic runs at ``p = 1``.

The pacer only shapes spend. The cap itself is a ``BudgetManager`` (the campaign's daily budget),
which the bidder reserves against after ``allow`` says yes.
"""

from __future__ import annotations

import math
import threading
from typing import Literal

import msgspec

from shield.clock import Clock, MonotonicClock
from shield.errors import AmountError, ConfigError

DAY_SECONDS = 86_400.0
PacingMode = Literal["even", "asap"]


class PacerStats(msgspec.Struct, frozen=True):
    mode: str
    rate: float  # pass-through probability now
    daily_budget: int  # micros
    day_spend: int  # micros recorded today
    slot_plan: float  # micros planned for each remaining slot today


class Pacer:
    # bidder/_admit.c reads _time, _next_update and _rate by name: keep them slots.
    __slots__ = (
        "_abs_slot", "_budget", "_clock", "_day", "_day_spend", "_down", "_lock", "_min_rate", "_mode",
        "_next_update", "_offset", "_plan", "_rate", "_slot", "_slot_spend", "_slots_per_day", "_time", "_up",
    )

    def __init__(
        self,
        daily_budget: int,
        clock: Clock | None = None,
        *,
        mode: PacingMode = "even",
        slot_seconds: float = 60.0,
        utc_offset_seconds: float = 0.0,
        initial_rate: float = 1.0,
        min_rate: float = 1e-4,
        max_step_up: float = 2.0,
        max_step_down: float = 0.1,
    ) -> None:
        if mode not in ("even", "asap"):
            raise ConfigError(f"pacing mode must be 'even' or 'asap', got {mode!r}")
        if not (slot_seconds > 0 and DAY_SECONDS % slot_seconds == 0):
            raise ConfigError(f"pacing slot_seconds must divide a day (86400 s), got {slot_seconds!r}")
        if not 0 < min_rate <= initial_rate <= 1:
            raise ConfigError(
                f"pacing rates need 0 < min_rate <= initial_rate <= 1, got {min_rate!r}, {initial_rate!r}"
            )
        if not (max_step_up > 1 and 0 < max_step_down < 1):
            raise ConfigError("pacing steps need max_step_up > 1 and 0 < max_step_down < 1")
        self._clock = clock if clock is not None else MonotonicClock()
        self._time = self._clock.time
        self._mode = mode
        self._slot = slot_seconds
        self._slots_per_day = int(DAY_SECONDS // slot_seconds)
        self._offset = utc_offset_seconds
        self._min_rate = min_rate
        self._up = max_step_up
        self._down = max_step_down
        self._lock = threading.Lock()
        self._budget = _micros(daily_budget, "daily_budget")
        self._rate = 1.0 if mode == "asap" else initial_rate
        self._slot_spend = 0  # micros recorded since the last update
        self._day_spend = 0
        now = self._time()
        self._day, self._abs_slot = self._position(now)
        self._plan = self._replan()
        self._next_update = (self._abs_slot + 1) * slot_seconds - self._offset

    def allow(self, u: float) -> bool:
        """Whether this request may bid; ``u`` is a uniform random number in [0, 1) the caller draws."""
        now = self._time()
        if now >= self._next_update:
            self._update(now)
        return u < self._rate

    def record(self, spend_micros: int) -> None:
        """Report money spent (billed) by this campaign."""
        if spend_micros.__class__ is not int or spend_micros < 0:
            _micros(spend_micros, "spend_micros")
        self._lock.acquire()  # not ``with``: half the cost, and this runs per billed impression
        try:
            self._slot_spend += spend_micros
        finally:
            self._lock.release()

    def set_daily_budget(self, daily_budget: int) -> None:
        with self._lock:
            self._budget = _micros(daily_budget, "daily_budget")
            self._plan = self._replan()

    @property
    def rate(self) -> float:
        return self._rate

    def stats(self) -> PacerStats:
        now = self._time()
        if now >= self._next_update:
            self._update(now)
        spend = self._day_spend + self._slot_spend
        return PacerStats(self._mode, self._rate, self._budget, spend, self._plan)

    def _position(self, now: float) -> tuple[int, int]:
        abs_slot = math.floor((now + self._offset) / self._slot)
        return abs_slot // self._slots_per_day, abs_slot

    def _replan(self) -> float:
        slots_left = self._slots_per_day - self._abs_slot % self._slots_per_day
        return max(0, self._budget - self._day_spend) / slots_left

    def _update(self, now: float) -> None:
        with self._lock:
            if now < self._next_update:  # another thread did it
                return
            day, abs_slot = self._position(now)
            if abs_slot == self._abs_slot:
                # Float rounding put ``now`` on the boundary but not past it: look again a bit later.
                self._next_update = math.nextafter(now, math.inf)
                return
            spend, self._slot_spend = self._slot_spend, 0
            if day != self._day:
                # A new day: its budget starts whole. The rate carries over, as today's traffic is
                # more like yesterday's than like nothing.
                self._day, self._day_spend = day, 0
            else:
                self._day_spend += spend
                if self._mode == "even":
                    planned = self._plan * (abs_slot - self._abs_slot)
                    step = self._up if spend <= 0 else min(self._up, max(self._down, planned / spend))
                    self._rate = min(1.0, max(self._min_rate, self._rate * step))
            self._abs_slot = abs_slot
            self._plan = self._replan()
            self._next_update = (abs_slot + 1) * self._slot - self._offset


def _micros(amount: object, name: str) -> int:
    if amount.__class__ is not int or amount < 0:
        raise AmountError(f"pacer: {name} must be a non-negative int of micros, got {amount!r}")
    return amount
