"""Performance reports: metrics per day and per ad set, zero-safe ratios, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control.reports import (
    CSV_COLUMNS,
    PerfRow,
    ReportError,
    build,
    metrics,
    parse_date,
    to_csv,
    to_json,
)

USD = 1_000_000
D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
ROWS = [
    PerfRow(D1, "c1", "as1", spend_micros=10 * USD, impressions=1000, clicks=20, conversions=2,
            revenue_micros=30 * USD, bids=4000, wins=1000),
    PerfRow(D1, "c1", "as2", spend_micros=5 * USD, impressions=500, clicks=5, conversions=0,
            revenue_micros=0, bids=1000, wins=500),
    PerfRow(D3, "c1", "as1", spend_micros=2_500_000, impressions=250, clicks=3, conversions=1,
            revenue_micros=7_500_000, bids=500, wins=250),
    PerfRow(D2, "c2", "x", spend_micros=99 * USD, impressions=9),
]


def test_metrics_compute_the_issue_fields() -> None:
    m = metrics(ROWS[:2])
    assert (m.total_spend, m.impressions, m.clicks) == (15.0, 1500, 25)
    assert (m.total_conversions, m.revenue) == (2, 30.0)
    assert m.roas == 2.0 and m.cpa == 7.5 and m.win_rate == 0.3
    assert m.ctr == pytest.approx(25 / 1500)


def test_zero_denominators_give_null_not_an_error() -> None:
    m = metrics([PerfRow(D1, "c1")])
    assert (m.roas, m.cpa, m.win_rate, m.ctr) == (None, None, None, None)
    body = json.loads(to_json(build([PerfRow(D1, "c1")], D1, D1)))
    assert body["totals"]["roas"] is None and body["totals"]["cpa"] is None


def test_money_is_exact_to_the_micro() -> None:
    m = metrics([PerfRow(D1, "c1", spend_micros=1), PerfRow(D1, "c1", spend_micros=2)])
    assert m.total_spend == 0.000003


def test_report_groups_per_day_with_every_day_of_the_range() -> None:
    r = build(ROWS, D1, D3, campaign_id="c1")
    assert [d.date for d in r.by_day] == [D1, D2, D3]
    assert [d.total_spend for d in r.by_day] == [15.0, 0.0, 2.5]
    assert r.by_day[1].roas is None  # an empty day, not a crash


def test_report_groups_per_ad_set() -> None:
    r = build(ROWS, D1, D3, campaign_id="c1")
    assert [(a.ad_set_id, a.total_spend, a.total_conversions) for a in r.by_ad_set] == [
        ("as1", 12.5, 3), ("as2", 5.0, 0)]
    assert r.by_ad_set[0].cpa == pytest.approx(12.5 / 3)
    assert r.by_ad_set[1].cpa is None


def test_report_keeps_only_the_range_and_the_campaign() -> None:
    assert build(ROWS, D2, D3, campaign_id="c1").totals.total_spend == 2.5
    everything = build(ROWS, D1, D3)
    assert everything.totals.total_spend == 116.5
    assert {a.campaign_id for a in everything.by_ad_set} == {"c1", "c2"}


def test_rows_for_the_same_key_are_summed() -> None:
    r = build([PerfRow(D1, "c1", "a", clicks=1), PerfRow(D1, "c1", "a", clicks=2)], D1, D1)
    assert [row.clicks for row in r.rows] == [3]


def test_csv_has_one_row_per_day_campaign_and_ad_set() -> None:
    text = to_csv(build(ROWS, D1, D3))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["date"], r["campaign_id"], r["ad_set_id"]) for r in rows] == [
        ("2026-03-01", "c1", "as1"), ("2026-03-01", "c1", "as2"), ("2026-03-02", "c2", "x"),
        ("2026-03-03", "c1", "as1")]
    assert rows[1]["cpa"] == "" and rows[1]["roas"] == "0.0"  # undefined is empty, zero is zero
    assert rows[0]["total_spend"] == "10.0"


def test_json_carries_range_totals_days_and_ad_sets() -> None:
    body = json.loads(to_json(build(ROWS, D1, D3, campaign_id="c1")))
    assert body["start_date"] == "2026-03-01" and body["end_date"] == "2026-03-03"
    assert body["totals"]["total_spend"] == 17.5
    assert body["by_day"][0]["date"] == "2026-03-01"
    assert set(body["totals"]) >= {"total_spend", "impressions", "clicks", "total_conversions", "revenue",
                                   "roas", "cpa", "win_rate"}


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ReportError, match="before start_date") as err:
        build(ROWS, D3, D1)
    assert err.value.field == "end_date"


def test_ranges_beyond_the_limit_are_refused() -> None:
    with pytest.raises(ReportError, match="at most 3660"):
        build([], date(2000, 1, 1), date(2026, 1, 1))


@pytest.mark.parametrize("text", ["2026-13-01", "yesterday", "", "01/03/2026"])
def test_bad_dates_name_the_parameter(text: str) -> None:
    with pytest.raises(ReportError, match="start_date must be a date") as err:
        parse_date(text, "start_date")
    assert err.value.field == "start_date"


row = st.builds(PerfRow, st.sampled_from([D1, D2, D3]), st.sampled_from(["c1", "c2"]),
                st.sampled_from(["a", "b"]), *(st.integers(0, 10**12) for _ in range(7)))


@given(st.lists(row, max_size=30))
def test_days_and_ad_sets_add_up_to_the_totals(rows: list[PerfRow]) -> None:
    r = build(rows, D1, D3)
    for parts in (r.by_day, r.by_ad_set, r.rows):
        assert sum(p.impressions for p in parts) == r.totals.impressions
        assert sum(round(p.total_spend * USD) for p in parts) == sum(x.spend_micros for x in rows)
