"""Currency conversion at the edges. Budgets and internal prices are USD micros.

``RATES`` is units of a currency per 1 USD. The table is deliberately static and documented (README,
"Currencies"): a bidder must not change its prices because a rate feed hiccuped mid-auction. Operators
override or extend it with ``RTB_FX`` ("EUR=0.92,GBP=0.79").
"""

from __future__ import annotations

import math

from bidder.settings import SettingsError, parse_amounts

RATES: dict[str, float] = {
    "USD": 1.0,
    "EUR": 0.92,
    "GBP": 0.79,
    "JPY": 150.0,
    "CAD": 1.37,
    "AUD": 1.52,
    "CHF": 0.88,
    "CNY": 7.2,
    "INR": 83.0,
    "BRL": 5.0,
    "MXN": 17.0,
    "SEK": 10.5,
    "NOK": 10.7,
    "DKK": 6.9,
    "PLN": 4.0,
    "KRW": 1350.0,
    "SGD": 1.35,
    "HKD": 7.8,
    "NZD": 1.65,
    "ZAR": 18.5,
    "TRY": 32.0,
}


def parse_rates(spec: str) -> dict[str, float]:
    """``"EUR=0.92,GBP=0.79"`` -> rates merged over the defaults; refuses what it cannot read."""
    overrides = parse_amounts(spec, "RTB_FX", "CODE=units-per-USD, e.g. EUR=0.92")
    for code in overrides:
        if len(code) != 3:
            raise SettingsError(f"RTB_FX: {code!r} is not a 3-letter currency code")
    return {**RATES, **{code.upper(): rate for code, rate in overrides.items()}}


def to_usd_micros_ceil(amount: float, rate: float) -> int:
    """A floor in another currency, as USD micros rounded up: a bid at this many micros is never
    below the floor once converted back."""
    return math.ceil(amount / rate * 1_000_000 - 1e-6)


def from_usd_micros(micros: int, rate: float) -> float:
    """USD micros -> an amount in the currency, rounded up to 6 decimals."""
    return math.ceil(micros * rate - 1e-6) / 1_000_000


def held_micros(price: float, rate: float) -> int:
    """What a bid at ``price`` (CPM, in the currency at ``rate``) reserves: USD micros per impression.
    The bid computes it from the price it writes and the notice from the price its URL carries back, so
    both get the same number (a float's repr reads back as the same float)."""
    return round(price / rate * 1_000_000) // 1000
