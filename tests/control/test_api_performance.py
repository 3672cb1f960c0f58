"""Bidder events and conversions in; performance, reports and the events pull out."""

from __future__ import annotations

import csv
import io

import pytest
from fake_bidder import FakeBidder

pytestmark = pytest.mark.anyio
DAY = 86400.0


@pytest.fixture
async def hb(make_harness):
    bidder = FakeBidder()
    h = make_harness(bidder_client=bidder.client())
    h.bidder = bidder
    yield h
    await h.http.aclose()


async def test_performance_counts_bidder_events_and_conversions(hb, clock):
    c = await hb.create_active(target_audience={"countries": ["USA"], "interests": ["shoes"]})
    core, broad = (s["id"] for s in c["plan"]["platforms"][0]["ad_sets"])
    t0 = clock.now()
    hb.bidder.add("win", core, 2.0, t0, bid_id="x1")
    hb.bidder.add("bill", core, 2.0, t0 + 1, bid_id="x1")
    hb.bidder.add("win", core, 4.0, t0 + 60, bid_id="x2")  # no bill: the win counts as the impression
    hb.bidder.add("loss", broad, 1.0, t0, bid_id="x3")
    hb.bidder.bids = {core: 10, broad: 5}
    assert await hb.control.puller.pull_once() == 4
    for value in (30.0, 50.0):
        r = await hb.request("POST", "/events/conversions", json={"campaign_id": core, "value": value})
        assert r.status_code == 201
    await hb.request("POST", "/events/conversions", json={"campaign_id": c["campaign_id"], "event": "click"})
    clock.advance(DAY)

    p = (await hb.request("GET", f"/campaigns/{c['campaign_id']}/performance")).json()
    assert p["impressions"] == 2
    assert p["total_spend"] == pytest.approx((2.0 + 4.0) / 1000)
    assert p["total_conversions"] == 2 and p["revenue"] == pytest.approx(80.0) and p["clicks"] == 1
    assert p["roas"] == pytest.approx(80.0 / 0.006)
    assert p["cpa"] == pytest.approx(0.003)
    assert p["win_rate"] == pytest.approx(2 / 15)
    assert [d["impressions"] for d in p["by_day"]] == [2, 0]
    assert {a["ad_set_id"]: a["impressions"] for a in p["by_ad_set"]}[core] == 2


async def test_pull_tolerates_the_bidder_being_down_and_resumes_at_its_cursor(hb):
    hb.bidder.add("win", "cmp_x.openrtb.core", 1.0)
    assert await hb.control.puller.pull_once() == 1
    hb.bidder.up = False
    hb.bidder.add("win", "cmp_x.openrtb.core", 1.0)
    assert await hb.control.puller.pull_once() == 0
    hb.bidder.up = True
    assert await hb.control.puller.pull_once() == 1
    assert await hb.control.puller.pull_once() == 0
    assert hb.control.puller.cursor == 2
    metrics = (await hb.http.get("/metrics")).text
    assert 'platform_api_calls_total{platform="bidder",status="error"}' in metrics


async def test_pulled_events_and_cursor_survive_a_restart(hb):
    for _ in range(3):
        hb.bidder.add("bill", "cmp_x.openrtb.core", 1.0)
    await hb.control.puller.pull_once()
    bidder = hb.bidder
    hb.kwargs["bidder_client"] = bidder.client()
    await hb.reopen()
    assert hb.control.puller.cursor == 3
    bidder.calls.clear()
    await hb.control.puller.pull_once()
    assert hb.control.db.one("SELECT COUNT(*) AS n FROM events")["n"] == 3


async def test_bid_results_count_as_bids_and_wins(hb, clock):
    c = await hb.create_active()
    aset = c["plan"]["platforms"][0]["ad_sets"][0]["id"]
    for i, status in enumerate(["won", "lost", "lost", "won"]):
        r = await hb.request("POST", "/bidding/bid-result",
                             json={"request_id": f"r{i}", "status": status, "win_price": 3.0, "campaign_id": aset})
        assert r.status_code == 201
    p = (await hb.request("GET", f"/campaigns/{c['campaign_id']}/performance")).json()
    assert p["win_rate"] == pytest.approx(0.5)
    assert p["impressions"] == 2 and p["total_spend"] == pytest.approx(0.006)


async def test_report_as_csv_and_json(hb, clock):
    c = await hb.create_active()
    aset = c["plan"]["platforms"][0]["ad_sets"][0]["id"]
    hb.bidder.add("bill", aset, 5.0, clock.now())
    await hb.control.puller.pull_once()
    params = {"start_date": "2026-01-01", "end_date": "2026-01-02"}
    js = (await hb.request("GET", "/reports/performance", params=params)).json()
    assert js["totals"]["impressions"] == 1 and len(js["by_day"]) == 2
    r = await hb.request("GET", "/reports/performance", params={**params, "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert rows[0]["ad_set_id"] == aset and rows[0]["total_spend"] == "0.005"
    bad = await hb.request("GET", "/reports/performance", params={"start_date": "2026-02-01",
                                                                    "end_date": "2026-01-01"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "end_date"
    bad = await hb.request("GET", "/reports/performance", params={"start_date": "yesterday",
                                                                    "end_date": "2026-01-01"})
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "start_date"
