from __future__ import annotations

import msgspec
import pytest

from bidder.campaign import parse_campaigns

pytestmark = pytest.mark.anyio

SPEC = {
    "business_goal": "Increase online sales of running shoes",
    "monthly_budget": 3000,
    "target_audience": {"countries": ["USA", "CAN"], "device_types": [1, 4], "interests": ["running"]},
    "products": [{"name": "Trail Runner 2", "url": "https://shoes.example/trail", "price": 120,
                  "description": "A light trail shoe"}],
    "platforms": ["openrtb", "meta"],
    "optimization_mode": "standard",
    "target_cpa": 25,
}


async def test_create_then_poll_until_active(h):
    r = await h.request("POST", "/campaigns", json=SPEC)
    assert r.status_code == 202
    created = r.json()
    assert created["status"] == "draft" and created["campaign_id"].startswith("cmp_")
    polled = await h.request("GET", f"/campaigns/{created['campaign_id']}")
    assert polled.json()["status"] == "draft"
    await h.control.planner.drain()
    done = (await h.request("GET", f"/campaigns/{created['campaign_id']}")).json()
    assert done["status"] == "active"
    plan = done["plan"]
    assert plan["objective"] == "sales" and plan["advertiser"] == "shoes.example"
    assert [p["platform"] for p in plan["platforms"]] == ["openrtb", "meta"]
    assert sum(p["monthly_budget"] for p in plan["platforms"]) == pytest.approx(3000)
    ad_set = plan["platforms"][0]["ad_sets"][0]
    assert ad_set["bid"]["value_per_conversion"] == 25
    assert ad_set["ads"][0]["headline"] and ad_set["ads"][0]["call_to_action"]


async def test_planned_campaign_reaches_bidder_in_its_own_format(h):
    c = await h.create_active(**SPEC)
    r = await h.request("GET", "/bidder/campaigns", scope="read")
    assert r.status_code == 200
    body = r.json()
    assert r.headers["etag"] == f'"{body["version"]}"'
    campaigns = parse_campaigns(msgspec.json.encode({"campaigns": body["campaigns"]}))
    assert {x.id.partition(".")[0] for x in campaigns} == {c["campaign_id"]}
    assert sum(x.budget.total for x in campaigns) == pytest.approx(3000)
    assert all(x.status == "active" and x.targeting.countries for x in campaigns)


async def test_bidder_campaigns_answers_304_until_a_change(h):
    c = await h.create_active(**SPEC)
    first = await h.request("GET", "/bidder/campaigns", scope="read")
    etag = first.headers["etag"]
    same = await h.request("GET", "/bidder/campaigns", scope="read", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b""
    await h.request("PATCH", f"/campaigns/{c['campaign_id']}", json={"status": "paused"})
    changed = await h.request("GET", "/bidder/campaigns", scope="read", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["version"] > first.json()["version"]
    assert {x["status"] for x in changed.json()["campaigns"]} == {"paused"}


async def test_campaign_without_advertiser_domain_fails_with_reason(h):
    r = await h.request("POST", "/campaigns", json={"business_goal": "brand awareness", "monthly_budget": 100})
    await h.control.planner.drain()
    failed = (await h.request("GET", f"/campaigns/{r.json()['campaign_id']}")).json()
    assert failed["status"] == "failed"
    assert "advertiser_domain" in failed["reason"]


async def test_list_filters_by_status_and_pages_with_a_cursor(h):
    ids = [(await h.create_active(name=f"c{i}"))["campaign_id"] for i in range(5)]
    await h.request("POST", "/campaigns", json={"business_goal": "x", "monthly_budget": 1})  # stays draft
    seen, cursor = [], None
    while True:
        params = {"status": "active", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await h.request("GET", "/campaigns", params=params)).json()
        seen += [c["campaign_id"] for c in page["campaigns"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_patch_budget_scales_the_plan_and_delete_archives(h):
    c = await h.create_active(**SPEC)
    cid = c["campaign_id"]
    r = await h.request("PATCH", f"/campaigns/{cid}", json={"monthly_budget": 6000})
    assert r.status_code == 200
    assert sum(p["monthly_budget"] for p in r.json()["plan"]["platforms"]) == pytest.approx(6000)
    r = await h.request("DELETE", f"/campaigns/{cid}")
    assert r.json()["status"] == "archived"
    snap = (await h.request("GET", "/bidder/campaigns")).json()
    assert snap["campaigns"] == []
    again = await h.request("PATCH", f"/campaigns/{cid}", json={"status": "active"})
    assert again.status_code == 409 and again.json()["error"]["type"] == "conflict"


async def test_campaigns_survive_a_restart(h):
    c = await h.create_active(**SPEC)
    draft = (await h.request("POST", "/campaigns", json=SPEC)).json()  # accepted, not yet planned
    version = (await h.request("GET", "/bidder/campaigns")).json()["version"]
    await h.reopen()
    assert (await h.request("GET", f"/campaigns/{c['campaign_id']}")).json() == c
    await h.control.planner.drain()  # the restarted planner picks the draft up
    assert (await h.request("GET", f"/campaigns/{draft['campaign_id']}")).json()["status"] == "active"
    assert (await h.request("GET", "/bidder/campaigns")).json()["version"] > version
