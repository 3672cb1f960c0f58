"""The shield's exceptions (the tree is drawn in the package docstring)."""

from __future__ import annotations


class ShieldError(Exception):
    """Base of every error the shield raises."""


class ConfigError(ShieldError, ValueError):
    """A budget, limit, threshold or platform that cannot be used; the message names it."""


class AmountError(ShieldError, ValueError):
    """Money that is not a non-negative integer of micros, or a price that is not a finite CPM >= 0."""


class DuplicateReservation(ShieldError, ValueError):
    """``reserve`` for a bid id that already holds a live reservation in the same budget."""


class CircuitOpen(ShieldError):
    """``CircuitBreaker.call``/``acall`` refused to run the call: the breaker is open."""
