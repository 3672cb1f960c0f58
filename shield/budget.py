"""``BudgetManager``: a cap on spend + reservations over a sliding window, in integer micros.

The window is a ring of ``n + 1`` buckets of ``bucket_seconds`` (``n = ceil(window / bucket)``; by
default 1 s, or window / 600 for windows over 10 minutes) with a running total, so every operation is
O(1) amortised and memory does not grow with traffic. Money booked in a bucket counts for at least
``window_seconds`` and at most one bucket longer: spend made at 100.0 s in a 600 s window still counts
at 700.999 s and is gone at 701.0 s. Rounding that way (rather than letting money go early) is what
makes the cap exact: no interval of ``window_seconds`` ever holds more than ``max_budget`` of spend
that the manager was asked to admit. ``window_seconds=None`` is a lifetime budget (nothing leaves).

Reservations hold budget in the bucket they were made in until ``commit`` (which turns them into spend in
that same bucket, because the exchange spent the money at bid time) or ``release``; one still open after
``expiry_seconds`` is released by the next operation. Two bookings bypass the cap on purpose, because
the exchange has already spent the money and dropping it would hide real cost: a commit above its
reservation books in full (counted as an overrun) and a commit for an unknown or expired bid books at the
current time (counted as late). ``add_spend`` books unconditionally for the same reason.

Open reservations pile up to (bid rate x expiry) when exchanges send no loss notices: 10,000 bids/s for
10 minutes is 6 million. One dict holding them all would stall the bidder whenever it grows, because a
Python dict grows by copying itself (one insertion into a 700,000-entry OrderedDict took 115 ms here).
So they are spread by the bid id's hash over ``_SHARDS`` plain dicts, each of which grows (and pauses)
1/``_SHARDS`` as much, and a deque, which grows without copying, keeps (deadline, bid id, entry) in
deadline order (in chunks the garbage collector does not walk) for expiry; a pair whose reservation has
been closed meanwhile, or made again under the same id, is skipped when it reaches the front. Neither
holds anything the garbage collector tracks for long, so no collection grows with open reservations.

``hold``/``unhold``/``settle`` are the same reservations without a bid id, for ``shield.Holds``, which keeps
them in aggregate: counted in the total (and in ``reserved``), in no bucket until settled.

All methods are thread-safe (one lock; events go to the sink after it is released, or, from ``hold``,
back to the caller to ``emit``).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence

import msgspec

from shield.clock import Clock, MonotonicClock
from shield.errors import AmountError, ConfigError, DuplicateReservation
from shield.events import NULL_SINK, BudgetAlert, EventSink

_MAX_BUCKETS = 1_000_000
_INF = math.inf
_SHARDS = 128  # a power of two
_CHUNK = 256
_SHARD_MASK = _SHARDS - 1
# An open reservation is one int, micros << 84 | serial << 20 | ring slot, and not a tuple: a dict whose
# values are all ints is one the garbage collector never tracks. With tuples every insertion tracked the
# shard again, so every full collection read every open reservation (113-123 ms with a million of them,
# bench_shield.py), and a bidder under load paused every few seconds: open-loop p99 45-190 ms.
# The serial tells a reservation from an earlier one under the same id with the same amount and slot;
# 64 bits of it last 58,000 years at ten million reservations a second.
_SLOT_BITS = 20  # a ring has at most _MAX_BUCKETS slots
_SLOT_MASK = (1 << _SLOT_BITS) - 1
_NEXT_SERIAL = 1 << _SLOT_BITS
_AMOUNT_SHIFT = _SLOT_BITS + 64
assert _MAX_BUCKETS <= 1 << _SLOT_BITS
_Pair = tuple[float, str, int]  # (deadline, bid id, the entry it was queued with) in the expiry queue


class BudgetStats(msgspec.Struct, frozen=True):
    key: str
    max_budget: int  # micros
    window_seconds: float | None  # None = lifetime budget
    spend: int  # micros committed inside the window (late commits and overruns included)
    reserved: int  # micros held by live reservations
    utilisation: float  # (spend + reserved) / max_budget
    accepted: int  # try_spend and reserve calls that fit
    rejected: int  # try_spend and reserve calls refused for lack of budget
    live_reservations: int
    commits: int
    releases: int
    expired: int  # reservations released because neither commit nor release came in time
    late_commits: int
    late_micros: int
    overruns: int
    overrun_micros: int  # micros committed above their reservations
    booked_micros: int  # everything ever committed or added, window or not


class BudgetManager:
    # bidder/_admit.c reads and writes some of these slots by name (see its manager_names): keep them slots.
    __slots__ = (
        "_accepted", "_alert_at", "_alert_level", "_alerted", "_booked", "_bucket_seconds", "_buckets", "_clock",
        "_commits", "_expired", "_expiry", "_head", "_held", "_held_count", "_idx", "_k", "_late", "_late_micros",
        "_lock", "_max",
        "_next_deadline", "_next_event", "_next_roll", "_now", "_overrun_micros", "_overruns", "_queue", "_rearm_at",
        "_rearm_level", "_rejected", "_releases", "_res", "_reserved", "_sink", "_size", "_stamp", "_tail", "_total",
        "_where", "_window", "key",
    )

    def __init__(
        self,
        max_budget: int,
        window_seconds: float | None = 600.0,
        clock: Clock | None = None,
        *,
        key: str = "",
        sink: EventSink = NULL_SINK,
        bucket_seconds: float | None = None,
        expiry_seconds: float = 600.0,
        alert_at: float = 0.8,
        rearm_below: float | None = None,
    ) -> None:
        where = f"budget {key!r}" if key else "budget"
        if bucket_seconds is None:
            # About 600 buckets whatever the window: a daily budget then costs 600 ints, not 86,400.
            bucket_seconds = max(1.0, window_seconds / 600) if window_seconds else 1.0
        if not (bucket_seconds > 0 and math.isfinite(bucket_seconds)):
            raise ConfigError(f"{where}: bucket_seconds must be a finite number > 0, got {bucket_seconds!r}")
        if window_seconds is None:
            n = 0
            self._bucket_seconds = _INF  # one bucket that never rolls
        else:
            if not (window_seconds > 0 and math.isfinite(window_seconds)):
                raise ConfigError(f"{where}: window_seconds must be > 0 or None, got {window_seconds!r}")
            n = math.ceil(window_seconds / bucket_seconds)
            if n >= _MAX_BUCKETS:
                raise ConfigError(
                    f"{where}: window_seconds / bucket_seconds = {n} buckets; use larger buckets "
                    f"(at most {_MAX_BUCKETS - 1})"
                )
            if not 0 < expiry_seconds <= window_seconds:
                # A reservation must expire before its bucket leaves the window, or its money would
                # vanish from the window while still held.
                raise ConfigError(
                    f"{where}: expiry_seconds must be > 0 and <= window_seconds ({window_seconds}), "
                    f"got {expiry_seconds!r}"
                )
            self._bucket_seconds = bucket_seconds
        if not expiry_seconds > 0:
            raise ConfigError(f"{where}: expiry_seconds must be > 0, got {expiry_seconds!r}")
        if not 0 < alert_at <= 1:
            raise ConfigError(f"{where}: alert_at must be in (0, 1], got {alert_at!r}")
        rearm = alert_at if rearm_below is None else rearm_below
        if not 0 < rearm <= alert_at:
            raise ConfigError(f"{where}: rearm_below must be in (0, alert_at], got {rearm_below!r}")
        self.key = key
        self._where = where
        self._window = window_seconds
        self._clock = clock if clock is not None else MonotonicClock()
        self._now = self._clock.monotonic
        self._sink = sink
        self._expiry = expiry_seconds
        self._alert_at = alert_at
        self._rearm_at = rearm
        self._lock = threading.Lock()

        self._size = n + 1
        self._buckets = [0] * self._size
        now = self._now()
        self._k = int(now // self._bucket_seconds) if n else 0  # absolute index of the current bucket
        self._idx = self._k % self._size
        self._next_roll = (self._k + 1) * self._bucket_seconds if n else _INF
        self._total = 0  # spend + reserved inside the window
        self._reserved = 0  # held by reservations of either kind
        # Reservations held in aggregate for a ``shield.Holds``: counted in the total but in no bucket
        # (the Holds knows when each was made and gives it back or settles it).
        self._held = self._held_count = 0
        # Open reservations, bid_id -> entry (see _SLOT_BITS), in shards made on first use, and
        # (deadline, bid_id, entry) in the order they were made: deadlines are now + a constant on a
        # monotonic clock, so that is deadline order. A queued pair whose bid id no longer holds that
        # entry (closed, or made again: another serial) is skipped.
        self._res: list[dict[str, int] | None] = [None] * _SHARDS
        self._stamp = self._idx  # the next entry's low bits but for the serial: serial << 20 | current slot
        # The queue is chunks of _CHUNK pairs (tuples of tuples of atoms, which the garbage collector
        # stops tracking) plus the newest pairs in ``_tail``: a deque of millions of them would cost
        # every full collection a visit to each (30 ms with a million here); ``_head`` is the position
        # of the next pair to look at in the first chunk (or in the tail when there is none).
        self._queue: deque[tuple[_Pair, ...]] = deque()
        self._tail: list[_Pair] = []
        self._head = 0
        self._next_deadline = _INF
        self._next_event = self._next_roll

        self._alerted = False
        self._set_levels(self._check_amount(max_budget, "max_budget"))
        self._accepted = self._rejected = self._commits = self._releases = self._expired = 0
        self._late = self._late_micros = self._overruns = self._overrun_micros = self._booked = 0

    # -- the API -------------------------------------------------------------------------------

    @property
    def max_budget(self) -> int:
        return self._max

    @property
    def window_seconds(self) -> float | None:
        return self._window

    def can_spend(self, amount: int) -> bool:
        """Whether ``amount`` fits now; a hint only (use ``try_spend``/``reserve`` to take it)."""
        self._check_amount(amount)
        with self._lock:
            self._advance()
            return self._total + amount <= self._max

    # The hot methods use acquire()/try/finally rather than ``with``: half the cost on CPython 3.11.

    def try_spend(self, amount: int) -> bool:
        if amount.__class__ is not int or amount < 0:
            self._check_amount(amount)
        self._lock.acquire()
        try:
            now = self._now()
            if now >= self._next_event:
                self._catch_up(now)
            total = self._total + amount
            if total > self._max:
                self._rejected += 1
                return False
            self._total = total
            self._buckets[self._idx] += amount
            self._accepted += 1
            self._booked += amount
            if total < self._alert_level or self._alerted:
                return True
            event = self._alert()
        finally:
            self._lock.release()
        self._sink.emit(event)
        return True

    def add_spend(self, amount: int) -> None:
        """Book money already spent, whatever the cap says."""
        self._check_amount(amount)
        with self._lock:
            self._advance()
            self._total += amount
            self._buckets[self._idx] += amount
            self._booked += amount
            event = self._alert() if self._total >= self._alert_level and not self._alerted else None
        if event is not None:
            self._sink.emit(event)

    def reserve(self, bid_id: str, amount: int) -> bool:
        if amount.__class__ is not int or amount < 0:
            self._check_amount(amount)
        self._lock.acquire()
        try:
            now = self._now()
            if now >= self._next_event:
                self._catch_up(now)
            i = hash(bid_id) & _SHARD_MASK
            res = self._res[i]
            if res is None:
                res = self._res[i] = {}
            elif bid_id in res:
                raise DuplicateReservation(f"{self._where}: bid {bid_id!r} already holds a reservation")
            total = self._total + amount
            if total > self._max:
                self._rejected += 1
                return False
            self._total = total
            slot = self._idx
            self._buckets[slot] += amount
            self._reserved += amount
            deadline = now + self._expiry
            stamp = self._stamp = self._stamp + _NEXT_SERIAL
            entry = amount << _AMOUNT_SHIFT | stamp
            res[bid_id] = entry
            tail = self._tail
            tail.append((deadline, bid_id, entry))
            if len(tail) == _CHUNK:
                self._queue.append(tuple(tail))
                tail.clear()
            if deadline < self._next_deadline:  # only when it was empty: the front holds the earliest
                self._next_deadline = deadline
                if deadline < self._next_event:
                    self._next_event = deadline
            self._accepted += 1
            if total < self._alert_level or self._alerted:
                return True
            event = self._alert()
        finally:
            self._lock.release()
        self._sink.emit(event)
        return True

    def commit(self, bid_id: str, actual_amount: int) -> None:
        """Turn the reservation into ``actual_amount`` of spend; see the module docstring for the
        overrun and late cases, which book in full."""
        if actual_amount.__class__ is not int or actual_amount < 0:
            self._check_amount(actual_amount, "actual_amount")
        self._lock.acquire()
        try:
            self._advance()
            entry = self._pop(bid_id)
            if entry is None:
                self._late_locked(actual_amount)
            else:
                amount = entry >> _AMOUNT_SHIFT
                self._reserved -= amount
                delta = actual_amount - amount
                self._buckets[entry & _SLOT_MASK] += delta
                self._total += delta
                if delta > 0:
                    self._overruns += 1
                    self._overrun_micros += delta
            event = self._committed(actual_amount)
        finally:
            self._lock.release()
        if event is not None:
            self._sink.emit(event)

    def book_late(self, actual_amount: int) -> None:
        """``commit`` for a reservation this manager does not hold (expired, or held elsewhere): booked
        now, in full, and counted late."""
        if actual_amount.__class__ is not int or actual_amount < 0:
            self._check_amount(actual_amount, "actual_amount")
        with self._lock:
            self._advance()
            self._late_locked(actual_amount)
            event = self._committed(actual_amount)
        if event is not None:
            self._sink.emit(event)

    def release(self, bid_id: str) -> bool:
        """Give a reservation's money back; False when there was none (already expired or unknown)."""
        self._lock.acquire()
        try:
            self._advance()
            entry = self._pop(bid_id)
            if entry is None:
                return False
            self._unbook(entry)
            self._releases += 1
            if self._alerted and self._total < self._rearm_level:
                self._alerted = False
            return True
        finally:
            self._lock.release()

    def _undo_reserve(self, bid_id: str) -> None:
        # Rollback for ``reserve_all``: as if the reservation had never been accepted here.
        with self._lock:
            entry = self._pop(bid_id)
            if entry is not None:
                self._unbook(entry)
                self._accepted -= 1
                self._maybe_rearm()

    # -- reservations held in aggregate, for shield.Holds ---------------------------------------------

    def hold(self, amount: int) -> bool | BudgetAlert:
        """``reserve`` without a bid id: the caller (``Holds``) keeps track of what it holds. False when
        refused; True when held; a ``BudgetAlert`` when held and crossing the alert level, for the
        caller to ``emit`` once it has recorded the hold (a sink that fails must not lose track of it)."""
        if amount.__class__ is not int or amount < 0:
            self._check_amount(amount)
        self._lock.acquire()
        try:
            now = self._now()
            if now >= self._next_event:
                self._catch_up(now)
            total = self._total + amount
            if total > self._max:
                self._rejected += 1
                return False
            self._total = total
            self._reserved += amount
            self._held += amount
            self._held_count += 1
            self._accepted += 1
            if total < self._alert_level or self._alerted:
                return True
            return self._alert()
        finally:
            self._lock.release()

    def emit(self, event: BudgetAlert) -> None:
        self._sink.emit(event)

    def unhold(self, amount: int, count: int, *, expired: bool = False, undo: bool = False) -> None:
        """Give back ``count`` held reservations worth ``amount`` in all: released by a loss notice,
        ``expired``, or the ``undo`` of a ``hold`` that another budget refused (as if never accepted)."""
        with self._lock:
            self._total -= amount
            self._reserved -= amount
            self._held -= amount
            self._held_count -= count
            if undo:
                self._accepted -= count
            elif expired:
                self._expired += count
            else:
                self._releases += count
            self._maybe_rearm()

    def settle(self, held: int, actual_amount: int, at: float) -> None:
        """``commit`` for a held reservation of ``held`` made at monotonic time ``at`` (or earlier):
        ``actual_amount`` is booked in the bucket of ``at`` while it is in the window, the rest given back."""
        if actual_amount.__class__ is not int or actual_amount < 0:
            self._check_amount(actual_amount, "actual_amount")
        with self._lock:
            self._advance()
            self._held -= held
            self._held_count -= 1
            self._reserved -= held
            k = int(at // self._bucket_seconds) if self._size > 1 else self._k
            slot = k % self._size if self._k - self._size < k <= self._k else self._idx
            self._buckets[slot] += actual_amount
            self._total += actual_amount - held
            if actual_amount > held:
                self._overruns += 1
                self._overrun_micros += actual_amount - held
            event = self._committed(actual_amount)
        if event is not None:
            self._sink.emit(event)

    def set_max_budget(self, max_budget: int) -> None:
        """Change the cap (e.g. the operator edited the campaign); money already in the window stays."""
        self._check_amount(max_budget, "max_budget")
        with self._lock:
            self._set_levels(max_budget)
            self._maybe_rearm()

    def stats(self) -> BudgetStats:
        with self._lock:
            self._advance()
            return BudgetStats(
                key=self.key,
                max_budget=self._max,
                window_seconds=self._window,
                spend=self._total - self._reserved,
                reserved=self._reserved,
                utilisation=self._utilisation(),
                accepted=self._accepted,
                rejected=self._rejected,
                live_reservations=sum(len(res) for res in self._res if res) + self._held_count,
                commits=self._commits,
                releases=self._releases,
                expired=self._expired,
                late_commits=self._late,
                late_micros=self._late_micros,
                overruns=self._overruns,
                overrun_micros=self._overrun_micros,
                booked_micros=self._booked,
            )

    # -- internals (called with the lock held) --------------------------------------------------

    def _advance(self) -> None:
        # The hot methods (try_spend, reserve) inline these three lines rather than pay for the call.
        now = self._now()
        if now >= self._next_event:
            self._catch_up(now)

    def _catch_up(self, now: float) -> None:
        # Expire first: a reservation's deadline always comes before its bucket leaves the ring.
        if now >= self._next_deadline:
            queue, tail, shards = self._queue, self._tail, self._res
            self._next_deadline = _INF
            head = self._head
            while True:
                chunk: Sequence[_Pair] = queue[0] if queue else tail
                if head >= len(chunk):
                    if not queue:
                        break
                    queue.popleft()
                    head = 0
                    continue
                deadline, bid_id, entry = chunk[head]
                if deadline > now:
                    self._next_deadline = deadline
                    break
                head += 1
                res = shards[hash(bid_id) & _SHARD_MASK]
                if res is not None and res.get(bid_id) == entry:  # still this reservation
                    del res[bid_id]
                    self._unbook(entry)
                    self._expired += 1
            self._head = head
        if now >= self._next_roll:
            k = int(now // self._bucket_seconds)
            buckets, size = self._buckets, self._size
            if k - self._k >= size:
                buckets[:] = [0] * size
                self._total = self._held
            else:
                for i in range(self._k + 1, k + 1):
                    j = i % size
                    self._total -= buckets[j]
                    buckets[j] = 0
            self._k = k
            self._idx = k % size
            self._stamp = self._stamp & ~_SLOT_MASK | self._idx
            self._next_roll = (k + 1) * self._bucket_seconds
        self._next_event = min(self._next_deadline, self._next_roll)
        self._maybe_rearm()

    def _pop(self, bid_id: str) -> int | None:
        res = self._res[hash(bid_id) & _SHARD_MASK]
        return res.pop(bid_id, None) if res is not None else None

    def _late_locked(self, actual_amount: int) -> None:
        self._late += 1
        self._late_micros += actual_amount
        self._buckets[self._idx] += actual_amount
        self._total += actual_amount

    def _committed(self, actual_amount: int) -> BudgetAlert | None:
        # The end of every commit: count it, then alert, or re-arm.
        self._commits += 1
        self._booked += actual_amount
        if self._total >= self._alert_level:
            return None if self._alerted else self._alert()
        self._maybe_rearm()
        return None

    def _unbook(self, entry: int) -> None:
        amount = entry >> _AMOUNT_SHIFT
        self._buckets[entry & _SLOT_MASK] -= amount
        self._total -= amount
        self._reserved -= amount

    def _set_levels(self, max_budget: int) -> None:
        self._max = max_budget
        self._alert_level = max(1, math.ceil(max_budget * self._alert_at))
        self._rearm_level = max(1, math.ceil(max_budget * self._rearm_at))

    def _maybe_rearm(self) -> None:
        if self._alerted and self._total < self._rearm_level:
            self._alerted = False

    def _utilisation(self) -> float:
        return self._total / self._max if self._max else (0.0 if self._total == 0 else 1.0)

    def _alert(self) -> BudgetAlert:
        self._alerted = True
        return BudgetAlert(
            key=self.key,
            ts=self._clock.time(),
            utilisation=self._utilisation(),
            spend=self._total - self._reserved,
            reserved=self._reserved,
            max_budget=self._max,
        )

    def _check_amount(self, amount: object, name: str = "amount") -> int:
        if amount.__class__ is not int or amount < 0:
            raise AmountError(
                f"{self._where}: {name} must be a non-negative int of micros, "
                f"got {amount!r} ({type(amount).__name__})"
            )
        return amount
