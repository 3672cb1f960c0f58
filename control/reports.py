"""Performance reports: aggregate rows into the API's metrics, per day and per ad set, as JSON or CSV.

Public API (pure):

- ``PerfRow(day: datetime.date, campaign_id: str, ad_set_id: str = "", spend_micros=0, impressions=0,
  clicks=0, conversions=0, revenue_micros=0, bids=0, wins=0)``: one counted slice (the store may hand
  several rows for the same key; they are summed).
- ``Metrics(total_spend: float, impressions, clicks, total_conversions, revenue: float, roas: float |
  None, cpa: float | None, win_rate: float | None, ctr: float | None)``: money in USD at this edge
  (micros / 1e6, exact to the micro); a ratio with a zero denominator is None (JSON null), never an error.
- ``metrics(rows: Iterable[PerfRow]) -> Metrics``.
- ``Report(start_date, end_date, campaign_id: str | None, totals: Metrics, by_day: list[DayMetrics],
  by_ad_set: list[AdSetMetrics], rows: list[DetailMetrics])``; ``DayMetrics`` adds ``date``,
  ``AdSetMetrics`` adds ``campaign_id`` and ``ad_set_id``, ``DetailMetrics`` all three.
- ``build(rows, start: date, end: date, campaign_id: str | None = None) -> Report``: keeps rows with
  ``start <= day <= end`` (inclusive) and, when given, of that campaign; ``by_day`` has one entry per day
  of the range (zero-filled), ``by_ad_set`` and ``rows`` (per day x campaign x ad set) only what was seen,
  sorted. ``ReportError`` when end < start or the range is longer than ``MAX_DAYS`` (3660).
- ``parse_date(text, field) -> date``: ISO ``YYYY-MM-DD``; ``ReportError`` names the field.
- ``to_json(report) -> bytes`` and ``to_csv(report) -> str``: CSV is the ``rows`` grain with a header
  ``date,campaign_id,ad_set_id,total_spend,impressions,clicks,total_conversions,revenue,roas,cpa,
  win_rate,ctr``; undefined ratios are empty cells.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Hashable, Iterable
from datetime import date, timedelta
from typing import Any, TypeVar

import msgspec

MAX_DAYS = 3660

K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound="Metrics")


class ReportError(ValueError):
    """A report that cannot be built as asked; ``field`` names the parameter at fault."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class PerfRow(msgspec.Struct, frozen=True):
    day: date
    campaign_id: str
    ad_set_id: str = ""
    spend_micros: int = 0
    impressions: int = 0
    clicks: int = 0
    conversions: int = 0
    revenue_micros: int = 0
    bids: int = 0
    wins: int = 0


class Metrics(msgspec.Struct, frozen=True, kw_only=True):
    total_spend: float
    impressions: int
    clicks: int
    total_conversions: int
    revenue: float
    roas: float | None
    cpa: float | None
    win_rate: float | None
    ctr: float | None


class DayMetrics(Metrics, frozen=True, kw_only=True):
    date: date


class AdSetMetrics(Metrics, frozen=True, kw_only=True):
    campaign_id: str
    ad_set_id: str


class DetailMetrics(Metrics, frozen=True, kw_only=True):
    date: date
    campaign_id: str
    ad_set_id: str


class Report(msgspec.Struct, frozen=True):
    start_date: date
    end_date: date
    campaign_id: str | None
    totals: Metrics
    by_day: list[DayMetrics]
    by_ad_set: list[AdSetMetrics]
    rows: list[DetailMetrics]


METRIC_FIELDS = ("total_spend", "impressions", "clicks", "total_conversions", "revenue", "roas", "cpa",
                 "win_rate", "ctr")
CSV_COLUMNS = ("date", "campaign_id", "ad_set_id", *METRIC_FIELDS)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def metrics(rows: Iterable[PerfRow]) -> Metrics:
    spend = impressions = clicks = conversions = revenue = bids = wins = 0
    for r in rows:
        spend += r.spend_micros
        impressions += r.impressions
        clicks += r.clicks
        conversions += r.conversions
        revenue += r.revenue_micros
        bids += r.bids
        wins += r.wins
    return Metrics(
        total_spend=spend / 1e6, impressions=impressions, clicks=clicks, total_conversions=conversions,
        revenue=revenue / 1e6, roas=_ratio(revenue, spend), cpa=_ratio(spend / 1e6, conversions),
        win_rate=_ratio(wins, bids), ctr=_ratio(clicks, impressions),
    )


def _keyed(cls: type[M], rows: Iterable[PerfRow], **keys: Any) -> M:
    return cls(**keys, **msgspec.structs.asdict(metrics(rows)))


def _group(rows: Iterable[PerfRow], key: Callable[[PerfRow], K]) -> dict[K, list[PerfRow]]:
    groups: dict[K, list[PerfRow]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return groups


def parse_date(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ReportError(f"{field} must be a date like 2026-01-31, got {text!r}", field) from None


def build(rows: Iterable[PerfRow], start: date, end: date, campaign_id: str | None = None) -> Report:
    if end < start:
        raise ReportError(f"end_date {end} is before start_date {start}", "end_date")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise ReportError(f"the range holds {days} days; at most {MAX_DAYS} per report", "end_date")
    kept = [r for r in rows
            if start <= r.day <= end and (campaign_id is None or r.campaign_id == campaign_id)]
    by_day = _group(kept, lambda r: r.day)
    by_ad_set = _group(kept, lambda r: (r.campaign_id, r.ad_set_id))
    detail = _group(kept, lambda r: (r.day, r.campaign_id, r.ad_set_id))
    return Report(
        start, end, campaign_id, metrics(kept),
        [_keyed(DayMetrics, by_day.get(d, ()), date=d) for d in (start + timedelta(i) for i in range(days))],
        [_keyed(AdSetMetrics, g, campaign_id=c, ad_set_id=a) for (c, a), g in sorted(by_ad_set.items())],
        [_keyed(DetailMetrics, g, date=d, campaign_id=c, ad_set_id=a)
         for (d, c, a), g in sorted(detail.items())],
    )


def to_json(report: Report) -> bytes:
    return msgspec.json.encode(report)


def to_csv(report: Report) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for row in report.rows:
        w.writerow(["" if (v := getattr(row, c)) is None else v for c in CSV_COLUMNS])
    return out.getvalue()
