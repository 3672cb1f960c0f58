"""Budgets by key, and one bid reserved against several budgets at once, all or nothing.

The bidder holds one ``BudgetManager`` per key: the platform (``platform_key("meta")``), the campaign's
window budget, and its daily and lifetime budgets. A bid is reserved against all of the budgets it
draws on with ``reserve_all`` and later committed or released against the same list (one by one, by bid
id; the bidder holds them in aggregate instead, with ``shield.Holds``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from shield.budget import BudgetManager, BudgetStats
from shield.clock import Clock, MonotonicClock
from shield.errors import ConfigError
from shield.events import NULL_SINK, EventSink


def platform_key(platform: str) -> str:
    return f"platform:{platform}"


def campaign_key(campaign_id: str, scope: str = "window") -> str:
    """``scope`` names which of the campaign's budgets: "window", "daily", "total"."""
    return f"campaign:{campaign_id}:{scope}"


class Budgets:
    """A registry of ``BudgetManager``s sharing one clock, event sink and reservation expiry."""

    def __init__(
        self, clock: Clock | None = None, sink: EventSink = NULL_SINK, *, expiry_seconds: float = 600.0
    ) -> None:
        self._clock = clock if clock is not None else MonotonicClock()
        self._sink = sink
        self._expiry = expiry_seconds
        self._managers: dict[str, BudgetManager] = {}
        self._lock = threading.Lock()

    def ensure(
        self,
        key: str,
        max_budget: int,
        window_seconds: float | None = 600.0,
        *,
        bucket_seconds: float | None = None,
    ) -> BudgetManager:
        """The manager for ``key``, created if new; an existing one keeps its window and gets the new cap.

        Changing an existing key's window is refused: rebuilding it would forget the money in it.
        """
        with self._lock:
            manager = self._managers.get(key)
            if manager is None:
                manager = BudgetManager(
                    max_budget,
                    window_seconds,
                    self._clock,
                    key=key,
                    sink=self._sink,
                    bucket_seconds=bucket_seconds,
                    expiry_seconds=min(self._expiry, window_seconds or self._expiry),
                )
                self._managers[key] = manager
                return manager
        if manager.window_seconds != window_seconds:
            raise ConfigError(
                f"budget {key!r}: exists with window_seconds={manager.window_seconds}, "
                f"cannot change it to {window_seconds} without losing the money it holds"
            )
        if manager.max_budget != max_budget:
            manager.set_max_budget(max_budget)
        return manager

    def get(self, key: str) -> BudgetManager:
        try:
            return self._managers[key]
        except KeyError:
            raise ConfigError(f"no budget with key {key!r}") from None

    def drop(self, key: str) -> None:
        with self._lock:
            self._managers.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._managers

    def __len__(self) -> int:
        return len(self._managers)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._managers))

    def stats(self) -> dict[str, BudgetStats]:
        return {key: m.stats() for key, m in list(self._managers.items())}


def reserve_all(managers: Sequence[BudgetManager], bid_id: str, amount: int) -> bool:
    """Reserve ``amount`` for ``bid_id`` in every manager, or in none (rolled back on the first refusal).

    Never overspends any of them. While a rollback is under way another bid may see the partial
    reservation and be refused where it would have fitted: conservative, and only for microseconds.
    """
    for i, manager in enumerate(managers):
        try:
            ok = manager.reserve(bid_id, amount)
        except BaseException:
            _undo(managers[:i], bid_id)
            raise
        if not ok:
            _undo(managers[:i], bid_id)
            return False
    return True


def first_refusal(managers: Sequence[BudgetManager], amount: int) -> BudgetManager | None:
    """Which manager would refuse ``amount`` now; to name the no-bid reason after ``reserve_all`` failed."""
    for manager in managers:
        if not manager.can_spend(amount):
            return manager
    return None


def commit_all(managers: Sequence[BudgetManager], bid_id: str, actual_amount: int) -> None:
    for manager in managers:
        manager.commit(bid_id, actual_amount)


def release_all(managers: Sequence[BudgetManager], bid_id: str) -> None:
    for manager in managers:
        manager.release(bid_id)


def _undo(managers: Sequence[BudgetManager], bid_id: str) -> None:
    for manager in managers:
        manager._undo_reserve(bid_id)
