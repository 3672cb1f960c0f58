"""Customer transactions -> per-customer (x, t_x, T, monetary) summaries, in weeks.

Two input formats, told apart by the first line:
- CDNOW: whitespace-separated ``customer_id other_id YYYYMMDD quantity amount`` (no header);
- CSV with the header ``customer_id,date,amount`` and ISO dates (``2024-03-01``).

Purchases on the same day are one transaction (amounts added). For a calibration period of ``weeks``
weeks starting on ``start``, the period ends on its last day, start + 7 * weeks - 1 days, and only
transactions up to then count; customers whose first purchase is later are left out. x = repeat
purchase days, t_x = weeks from first to last purchase, T = weeks from first purchase to the period's
end, monetary = mean amount of the repeat purchases (0 when x = 0), as in the published CDNOW summaries.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec
import numpy as np
from numpy.typing import NDArray

from bidder.models.errors import DataError

Array = NDArray[np.float64]


class Summary(msgspec.Struct, frozen=True):
    """One row per customer; arrays share the order of ``ids``."""

    ids: list[str]
    x: Array
    t_x: Array
    T: Array
    monetary: Array


class Transactions(msgspec.Struct, frozen=True):
    ids: list[str]
    day: NDArray[np.int64]  # days since 1970-01-01
    amount: Array


def read_transactions(path: str | Path) -> Transactions:
    """Parse a CDNOW or CSV transaction file; errors name the file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read transactions: {exc}") from exc
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError(path, "no transactions")
    ids: list[str] = []
    dates: list[str] = []
    amounts: list[float] = []
    csv = "," in lines[first]
    if csv:
        header = [h.strip() for h in lines[first].split(",")]
        if header != ["customer_id", "date", "amount"]:
            problem = f"line {first + 1}: CSV header must be customer_id,date,amount, got {header}"
            raise DataError(path, problem)
        first += 1
    for n, line in enumerate(lines[first:], start=first + 1):
        if not line.strip():
            continue
        fields = line.split(",") if csv else line.split()
        try:
            if csv:
                cid, date, amount = (f.strip() for f in fields)
                day = date
            else:
                cid, _, date, _, amount = fields
                day = f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 else date
            dt.date.fromisoformat(day)
            value = float(amount)
        except ValueError as exc:
            raise DataError(path, f"line {n}: cannot parse {line.strip()!r} ({exc})") from exc
        if not cid or not np.isfinite(value) or value < 0:
            raise DataError(path, f"line {n}: needs a customer id and an amount >= 0, got {line.strip()!r}")
        ids.append(cid)
        dates.append(day)
        amounts.append(value)
    days = np.array(dates, dtype="datetime64[D]").astype(np.int64)
    return Transactions(ids=ids, day=days, amount=np.array(amounts, dtype=np.float64))


def summarise(tx: Transactions, start: dt.date | None = None, weeks: float | None = None) -> Summary:
    """RFM summary over the calibration period; by default the whole span of the data."""
    epoch = dt.date(1970, 1, 1)
    first_day = int(tx.day.min()) if start is None else (start - epoch).days
    end = int(tx.day.max()) if weeks is None else first_day + round(7 * weeks) - 1
    keep = (tx.day >= first_day) & (tx.day <= end)
    if not keep.any():
        raise DataError("transactions", "no transactions in the calibration period")
    uniq, cust = np.unique(np.array(tx.ids, dtype=object)[keep].astype(str), return_inverse=True)
    day, amount = tx.day[keep], tx.amount[keep]
    # One transaction per (customer, day): sort by both, then sum runs of equal keys.
    order = np.lexsort((day, cust))
    cust, day, amount = cust[order], day[order], amount[order]
    new = np.ones(cust.shape[0], dtype=bool)
    new[1:] = (cust[1:] != cust[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new)
    c, d, v = cust[starts], day[starts], np.add.reduceat(amount, starts)
    n = uniq.shape[0]
    count = np.bincount(c, minlength=n)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, c, d)
    np.maximum.at(last, c, d)
    total = np.bincount(c, weights=v, minlength=n)
    first_amount = v[np.r_[0, np.flatnonzero(c[1:] != c[:-1]) + 1]]
    x = (count - 1).astype(np.float64)
    monetary = np.divide(total - first_amount, x, out=np.zeros(n), where=x > 0)
    return Summary(
        ids=[str(u) for u in uniq],
        x=x,
        t_x=(last - first) / 7.0,
        T=(end - first) / 7.0,
        monetary=monetary,
    )
