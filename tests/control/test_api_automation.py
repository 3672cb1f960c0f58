"""Optimisation, portfolio, A/B tests, rules, webhooks, the /execute facade and GDPR, through HTTP."""

from __future__ import annotations

import httpx
import msgspec
import pytest
from fake_bidder import FakeBidder

from control import webhooks
from control.schemas import ConversionIn

pytestmark = pytest.mark.anyio


class Receiver:
    """A webhook endpoint: answers from ``statuses`` in turn (then 200) and keeps what it got."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.got: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.got.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def ha(make_harness):
    bidder, receiver = FakeBidder(), Receiver()
    h = make_harness(bidder_client=bidder.client(),
                     webhook_client=httpx.AsyncClient(transport=httpx.MockTransport(receiver)))
    h.bidder, h.receiver = bidder, receiver
    yield h
    await h.http.aclose()


def serve(h, ad_set: str, n: int, cpm: float, creative: str = "p0-300x250", user: str = "") -> None:
    for _ in range(n):
        h.bidder.add("bill", ad_set, cpm, h.clock.now(), creative_id=creative, **({"user_id": user} if user else {}))


def convert(h, campaign: str, n: int, value: float = 0.0, creative: str = "", user: str = "") -> None:
    for _ in range(n):
        h.control.record_conversion(ConversionIn(campaign, value, creative_id=creative, user_id=user))


async def test_optimize_suggests_pausing_a_weak_ad_set_and_auto_applies_it(ha):
    c = await ha.create_active(target_roas=2.0, target_audience={"countries": ["USA"], "interests": ["x"]})
    cid = c["campaign_id"]
    core, broad = (s["id"] for s in c["plan"]["platforms"][0]["ad_sets"])
    serve(ha, core, 1500, 20.0)
    serve(ha, broad, 1500, 20.0)
    await ha.control.puller.pull_once()
    convert(ha, core, 3, 50.0)
    convert(ha, broad, 1, 10.0)

    r = await ha.request("POST", f"/campaigns/{cid}/optimize", json={"optimization_type": "suggest"})
    assert r.status_code == 200
    out = r.json()
    pause = [a for a in out["actions"] if a["type"] == "pause_variant"]
    assert [a["target"] for a in pause] == [broad]
    assert pause[0]["reason"] == "roas:0.33" and not pause[0]["applied"]
    assert out["message"]
    snap = (await ha.request("GET", "/bidder/campaigns")).json()
    assert {x["id"]: x["status"] for x in snap["campaigns"]}[broad] == "active"

    r = await ha.request("POST", f"/campaigns/{cid}/optimize", json={"optimization_type": "auto"})
    assert all(a["applied"] for a in r.json()["actions"])
    snap = (await ha.request("GET", "/bidder/campaigns")).json()
    assert {x["id"]: x["status"] for x in snap["campaigns"]}[broad] == "paused"


async def test_portfolio_moves_budget_towards_the_better_campaign_within_bounds(ha):
    good, poor = await ha.create_active(name="good"), await ha.create_active(name="poor")
    for c, revenue in ((good, 400.0), (poor, 20.0)):
        serve(ha, c["plan"]["platforms"][0]["ad_sets"][0]["id"], 1000, 100.0)
        convert(ha, c["campaign_id"], 1, revenue)
    await ha.control.puller.pull_once()
    r = await ha.request("POST", "/portfolio/optimize", json={"total_budget": 6000, "max_step": 0.2})
    out = r.json()
    after = {a["campaign_id"]: a["after"] for a in out["allocations"]}
    assert out["applied"] and sum(after.values()) == pytest.approx(6000)
    assert after[good["campaign_id"]] == pytest.approx(3600) and after[poor["campaign_id"]] == pytest.approx(2400)
    got = (await ha.request("GET", f"/campaigns/{good['campaign_id']}")).json()
    assert got["request"]["monthly_budget"] == pytest.approx(3600)


async def test_ab_test_names_a_winner_only_when_significant_and_tells_webhooks(ha):
    hook = (await ha.request("POST", "/webhooks", json={"url": "https://hooks.example/in",
                                                        "events": ["ab_test.concluded"]})).json()
    c = await ha.create_active()
    aset = c["plan"]["platforms"][0]["ad_sets"][0]["id"]
    body = {"campaign_id": c["campaign_id"], "min_sample": 1000, "variants": [
        {"id": "A", "creative_id": "p0-300x250"}, {"id": "B", "creative_id": "p0-728x90"}]}
    test = (await ha.request("POST", "/ab-tests", json=body)).json()
    serve(ha, aset, 2000, 1.0, "p0-300x250")
    serve(ha, aset, 2000, 1.0, "p0-728x90")
    await ha.control.puller.pull_once()
    convert(ha, c["campaign_id"], 100, creative="p0-300x250")
    convert(ha, c["campaign_id"], 101, creative="p0-728x90")
    flat = (await ha.request("GET", f"/ab-tests/{test['test_id']}/analysis")).json()
    assert flat["winner"] is None and not flat["significant"]
    convert(ha, c["campaign_id"], 59, creative="p0-728x90")
    a = (await ha.request("GET", f"/ab-tests/{test['test_id']}/analysis")).json()
    assert a["significant"] and a["sample_reached"] and a["winner"] == "B"
    assert a["p_value"] < 0.05 and a["variants"][1]["lift"] == pytest.approx(0.6)
    await ha.control.notifier.drain()
    sent = ha.receiver.got
    assert len(sent) == 1 and msgspec.json.decode(sent[0].content)["type"] == "ab_test.concluded"
    webhooks.verify(hook["secret"], sent[0].headers, sent[0].content, now=ha.clock.now())


async def test_ab_assignment_is_stable_per_user(ha):
    body = {"variants": [{"id": "A"}, {"id": "B"}]}
    tid = (await ha.request("POST", "/ab-tests", json=body)).json()["test_id"]
    got = [(await ha.request("GET", f"/ab-tests/{tid}/assignment", params={"unit_id": f"u{i}"})).json()
           for i in (1, 2, 1)]
    assert got[0]["variant_id"] == got[2]["variant_id"]
    r = await ha.request("POST", "/ab-tests", json={"variants": [{"id": "A"}, {"id": "A"}]})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "$.variants[1].id"


async def test_rule_fires_on_schedule_pauses_and_is_recorded(ha):
    await ha.request("POST", "/webhooks", json={"url": "https://hooks.example/r", "events": ["*"]})
    c = await ha.create_active()
    serve(ha, c["plan"]["platforms"][0]["ad_sets"][0]["id"], 1000, 20.0)  # 20 USD
    await ha.control.puller.pull_once()
    rule = {"metric": "spend", "operator": ">", "threshold": 10, "window": "1h", "action": "pause",
            "campaign_id": c["campaign_id"], "every": "5m"}
    r = await ha.request("POST", "/rules", json=rule)
    assert r.status_code == 201
    rid = r.json()["rule_id"]
    ha.clock.advance(1)
    fired = await ha.control.rules_tick()
    assert [f.campaign_id for f in fired] == [c["campaign_id"]]
    assert await ha.control.rules_tick() == []  # not due again until 5 minutes pass
    assert (await ha.request("GET", f"/campaigns/{c['campaign_id']}")).json()["status"] == "paused"
    firings = (await ha.request("GET", f"/rules/{rid}/firings")).json()["firings"]
    assert len(firings) == 1 and firings[0]["value"] == pytest.approx(20.0)
    assert (await ha.request("GET", "/rules")).json()["rules"][0]["firings"] == 1
    await ha.control.notifier.drain()
    kinds = [msgspec.json.decode(x.content)["type"] for x in ha.receiver.got]
    assert kinds == ["campaign.status_changed", "campaign.status_changed", "rule.fired"]
    assert "campaign_automation_active_rules 1.0" in (await ha.http.get("/metrics")).text


async def test_rule_with_a_bad_window_is_refused_with_its_field(ha):
    rule = {"metric": "roas", "operator": "<", "threshold": 1, "window": "soon", "action": "notify"}
    r = await ha.request("POST", "/rules", json=rule)
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "$.window"


async def test_webhook_delivery_retries_with_backoff_and_logs_attempts(ha):
    ha.receiver.statuses = [503, 500]
    hook = (await ha.request("POST", "/webhooks", json={"url": "https://hooks.example/x",
                                                        "events": ["campaign.status_changed"]})).json()
    assert hook["secret"].startswith("whsec_")
    await ha.create_active()
    await ha.control.notifier.drain()
    assert ha.slept == [1.0, 2.0]
    log = (await ha.request("GET", f"/webhooks/{hook['webhook_id']}/deliveries")).json()["deliveries"]
    assert [d["outcome"] for d in reversed(log)] == ["retry", "retry", "delivered"]
    listed = (await ha.request("GET", "/webhooks")).json()["webhooks"]
    assert listed[0]["secret"] is None
    bad = await ha.request("POST", "/webhooks", json={"url": "https://h.example", "events": ["nope"]})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "$.events[0]"


async def test_webhook_outbox_survives_a_restart(ha):
    await ha.request("POST", "/webhooks", json={"url": "https://hooks.example/x", "events": ["*"]})
    await ha.create_active()
    assert ha.control.notifier.pending == 1  # draft -> active
    receiver = ha.receiver
    ha.kwargs["webhook_client"] = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    await ha.reopen()
    await ha.control.notifier.drain()
    assert len(receiver.got) == 1 and ha.control.notifier.pending == 0


async def test_execute_maps_actions_onto_the_same_services(ha):
    params = {"business_goal": "sales", "monthly_budget": 500, "advertiser_domain": "x.example"}
    r = await ha.request("POST", "/execute", json={"action": "create_campaign", "parameters": params,
                                                  "context": {"caller": "agent-7"}})
    assert r.status_code == 200
    out = r.json()
    assert out["status"] == "success" and out["context"] == {"caller": "agent-7"}
    cid = out["result"]["campaign_id"]
    await ha.control.planner.drain()
    r = await ha.request("POST", "/execute", scope="read",
                         json={"action": "get_campaign_status", "parameters": {"campaign_id": cid}})
    assert r.json()["result"]["status"] == "active"
    r = await ha.request("POST", "/execute", json={"action": "manage_campaign",
                                                  "parameters": {"campaign_id": cid, "operation": "pause"}})
    assert r.json()["result"]["status"] == "paused"
    r = await ha.request("POST", "/execute", scope="read", json={"action": "create_campaign", "parameters": params})
    assert r.status_code == 403
    r = await ha.request("POST", "/execute", json={"action": "create_campaign",
                                                  "parameters": {**params, "monthly_budget": -1}})
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "$.parameters.monthly_budget"


async def test_account_export_and_user_erasure(ha):
    c = await ha.create_active()
    aset = c["plan"]["platforms"][0]["ad_sets"][0]["id"]
    serve(ha, aset, 2, 1.0, user="u-1")
    serve(ha, aset, 1, 1.0, user="u-2")
    await ha.control.puller.pull_once()
    convert(ha, c["campaign_id"], 2, 9.0, user="u-1")
    export = (await ha.request("GET", "/account/export")).json()
    assert [x["campaign_id"] for x in export["campaigns"]] == [c["campaign_id"]]
    assert sum(e["user_id"] == "u-1" for e in export["bidder_events"]) == 2
    assert all("hash" not in k for k in export["api_keys"])

    r = await ha.request("DELETE", "/users/u-1")
    assert r.json()["erased"] == {"conversions": 2, "bidder_events": 2}
    export = (await ha.request("GET", "/account/export")).json()
    assert "u-1" not in msgspec.json.encode(export).decode()
    audit = [x for x in export["log"] if x["kind"] == "audit"]
    assert audit[0]["body"]["action"] == "user.erased" and audit[0]["body"]["erased"]["conversions"] == 2
