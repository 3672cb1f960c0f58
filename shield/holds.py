"""``Holds``: reservations held in aggregate, with no state per bid until a notice closes one.

A bidder reserves every bid's cost against its budgets (``BudgetManager``), and most bids never hear
back: without loss notices a reservation waits for its expiry. Kept one by one, as ``reserve`` keeps
them, open reservations number bid rate x expiry (6 million at 10,000 bids a second for 10 minutes),
cost hundreds of bytes each in every budget, and make every bid slower as the book grows: with a
million open, a bid's reservation against two budgets took 6.8-8.5 us, against 1.9-3.6 us here, and
held 372 bytes against nothing (bench/bench_shield.py).

Here a bid adds its amount to a running sum per (slot, group of budgets) instead, where the slot is the
bid's ``key`` (an integer the caller can compute again from the notice: the bidder uses the bid's
expiry second, which its notice URLs carry signed) divided by ``slot_seconds``. A notice names the bid's
key, group and amount, which is all it takes to give that amount back to the right sum, or to turn it
into spend. Only then is the bid remembered: one bit in its slot, by its serial (the bidder's bid ids
end with it), so that a second notice for the same bid finds it closed and moves no money again. A
slot's sums are given back when ``expiry_seconds`` have passed since its last bid, checked when a bid
opens a new slot; so a reservation lasts at least the expiry and at most the expiry plus two slots,
never less.

What the caller guarantees: a notice's ``reserved`` is exactly what its bid reserved, and notices for bids
held elsewhere (another process, or before a restart) are not passed here as if they were held here:
the bidder tells its own bids by their id's prefix. A notice that finds no open sum (expired, or its
group changed and more than one group held in its slot) is booked in full as late, or releases nothing:
money is then held too long, never given back twice.

Thread-safe (one lock, with the managers' own locks taken inside it, always in this order).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from shield.budget import BudgetManager
from shield.clock import Clock, MonotonicClock
from shield.errors import ConfigError
from shield.events import BudgetAlert

Group = tuple[BudgetManager, ...]  # the budgets one bid draws on, all or nothing
_COUNT_BITS = 32  # a sum is amount << 32 | count: one int per (slot, group), no object per bid
_COUNT = (1 << _COUNT_BITS) - 1


class _Slot:
    __slots__ = ("closed", "first", "held", "last")

    def __init__(self, now: float) -> None:
        self.held: dict[Group, int] = {}
        self.first = -1  # the serial of the first bid held here
        # One bit per serial from ``first``: set when the bid's notice came, nothing more to give back
        # or settle. A slot's bids have consecutive serials, so this costs a bit per bid, not a set entry.
        self.closed = bytearray()
        self.last = now  # monotonic time of the latest bid held here


class Holds:
    # bidder/_admit.c reads and writes some of these slots, and _Slot's, by name: keep them slots.
    __slots__ = ("_expiry", "_gone", "_key", "_lock", "_now", "_slot", "_slot_seconds", "_slots")

    def __init__(self, clock: Clock | None = None, *, expiry_seconds: float = 600.0, slot_seconds: int = 10) -> None:
        if not expiry_seconds > 0:
            raise ConfigError(f"holds: expiry_seconds must be > 0, got {expiry_seconds!r}")
        if slot_seconds.__class__ is not int or slot_seconds < 1:
            raise ConfigError(f"holds: slot_seconds must be an int >= 1, got {slot_seconds!r}")
        self._now = (clock if clock is not None else MonotonicClock()).monotonic
        self._expiry = expiry_seconds
        self._slot_seconds = slot_seconds
        self._lock = threading.Lock()
        self._slots: dict[int, _Slot] = {}  # by slot number, in the order they opened
        self._key = -1  # the current slot's number, and the slot
        self._slot = _Slot(0.0)
        self._gone = -1  # the highest slot number that expired

    def reserve(self, group: Group, key: int, amount: int, serial: int) -> bool:
        """Hold ``amount`` in every budget of ``group``, or in none (False: one of them refused).
        ``serial``: the bid's number, from a counter that only goes up, which its notices give back."""
        alerts: list[tuple[BudgetManager, BudgetAlert]] | None = None  # rare: made when needed
        ok = True
        self._lock.acquire()  # not ``with``: half the cost, and this runs per bid
        try:
            k = key // self._slot_seconds
            if k != self._key:
                self._open(k)
            for i, manager in enumerate(group):
                held = manager.hold(amount)
                if held is False:
                    for other in group[:i]:
                        other.unhold(amount, 1, undo=True)
                    ok = False
                    break
                if held is not True:
                    alerts = [*(alerts or ()), (manager, held)]
            else:
                slot = self._slot
                slot.held[group] = slot.held.get(group, 0) + (amount << _COUNT_BITS | 1)
                slot.last = self._now()
                if slot.first < 0:
                    slot.first = serial
        finally:
            self._lock.release()
        # Only now that the hold is recorded: a failing sink cannot leave money held for good. (An alert
        # of a hold undone above still goes out: utilisation did cross the level, as with ``reserve_all``.)
        for manager, alert in alerts or ():
            manager.emit(alert)
        return ok

    def commit(self, groups: Sequence[Group], serial: int | None, key: int, reserved: int, actual: int) -> bool:
        """Book ``actual`` for a bid that reserved ``reserved`` under ``key`` in one of ``groups`` (the
        campaign's groups, oldest first): settled in the bid's bucket and the rest given back; or,
        when no open sum is found (or ``serial`` is None: a bid held elsewhere), booked in full now
        against the newest group, as late. True: settled."""
        with self._lock:
            found = self._close(groups, serial, key, reserved)
            if found is None:
                for manager in groups[-1] if groups else ():
                    manager.book_late(actual)
                return False
            slot, group, take = found
            for manager in group:
                manager.settle(take, actual, slot.last)
            return True

    def release(self, groups: Sequence[Group], serial: int | None, key: int, reserved: int) -> bool:
        """Give back what a lost bid reserved; False when nothing was held for it (any more, or here:
        ``serial`` None)."""
        with self._lock:
            found = self._close(groups, serial, key, reserved)
            if found is None:
                return False
            _, group, take = found
            for manager in group:
                manager.unhold(take, 1)
            return True

    def sweep(self) -> None:
        """Give back what has expired (bids do it when they open a slot; readers of the totals call it)."""
        with self._lock:
            self._expire(self._now())

    def open_slots(self) -> int:
        return len(self._slots)

    # -- with the lock held -------------------------------------------------------------------

    def _open(self, k: int) -> None:
        now = self._now()
        self._expire(now)
        # A key seen again (the caller's clock set back) finds its slot again: held longer, never
        # shorter. One whose slot expired gets a slot no notice can name: its late notices could not
        # be told from those of the bids held there now.
        at = k if k > self._gone else -1 - k
        slot = self._slots.get(at)
        if slot is None:
            slot = self._slots[at] = _Slot(now)
        self._key, self._slot = k, slot

    def _expire(self, now: float) -> None:
        slots = self._slots
        while slots:
            k = next(iter(slots))
            slot = slots[k]
            if slot.last + self._expiry > now:
                break  # slots open in time order, so the first one expires first
            del slots[k]
            self._gone = max(self._gone, k)
            if slot is self._slot:
                self._key = -1
            for group, held in slot.held.items():
                count = held & _COUNT
                if count:
                    for manager in group:
                        manager.unhold(held >> _COUNT_BITS, count, expired=True)

    def _close(self, groups: Sequence[Group], serial: int | None, key: int,
               reserved: int) -> tuple[_Slot, Group, int] | None:
        slot = self._slots.get(key // self._slot_seconds)
        if slot is None or serial is None:
            return None
        i = serial - slot.first
        if slot.first < 0 or i < 0:  # not a bid held here
            return None
        byte, bit = i >> 3, 1 << (i & 7)
        closed = slot.closed
        if byte < len(closed) and closed[byte] & bit:
            return None
        held_in = [g for g in groups if g in slot.held]
        if len(held_in) != 1:  # none, or a reload changed the campaign's budgets: we cannot tell which
            return None
        group = held_in[0]
        held = slot.held[group]
        if not held & _COUNT:
            return None
        take = min(reserved, held >> _COUNT_BITS)
        slot.held[group] = held - (take << _COUNT_BITS) - 1
        if byte >= len(closed):
            closed.extend(bytes(max(byte + 1 - len(closed), len(closed))))  # doubling: amortised O(1)
        closed[byte] |= bit
        return slot, group, take
