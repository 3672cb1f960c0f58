"""The decision's glue in C (``bidder/_decide.c``) against its Python twin (``decide.decide_py``).

Each comparison sends the same requests to two engines built alike, one deciding in C and one with the
twin, and compares the answers and everything the decision leaves behind: counters, reservations, the
fallback's history and the breaker.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidder import fx
from bidder.campaign import Campaign, parse_campaigns
from bidder.decide import MAX_ADMISSIONS, NO_BID, Decide, Outcome, decide, decide_py
from bidder.engine import Engine
from bidder.openrtb import BidRequest
from bidder.settings import EXAMPLE_CAMPAIGNS
from bidder.value import PriorModel, ValueModel
from tests.bidder.conftest import IAB, SAMPLES
from tests.bidder.test_impstep import a_campaign, engine, model_of, models, request

BANNER = IAB / "request-1-simple-banner.json"


def twins(camps: list[Campaign], model: str | ValueModel = "prior") -> tuple[Engine, Engine]:
    """An engine deciding in C and one deciding with the twin, alike down to their bid ids."""
    a, b = (engine(camps, model_of(model) if isinstance(model, str) else model) for _ in range(2))
    assert a._decide is decide
    b._decide = decide_py
    b.budget.prefix = b._bid_prefix = a._bid_prefix
    return a, b


def left(e: Engine) -> object:
    """What a decision leaves behind on its engine."""
    s = e.stats
    campaigns = {k: (c.bids, dict(c.no_bid)) for k, c in s.campaigns.items()}
    return (s.requests, s.bids, s.errors, s.invalid, dict(s.no_bid), dict(s.decisions), campaigns,
            e.budget.stats(), e.fallback.median(), str(e.breaker.state))


def same(a: Engine, b: Engine, body: bytes) -> Outcome:
    got, want = a.bid(body), b.bid(body)
    assert got == want
    assert type(got) is Outcome
    assert left(a) == left(b)
    return got


def small_budgets(cs: tuple[dict[str, Any], ...], poor: int) -> list[Campaign]:
    """The campaigns, those picked by the bits of ``poor`` with room for about one bid: they step aside."""
    out = [{**c, "budget": {"total": 0.004}} if poor >> i & 1 else c for i, c in enumerate(cs)]
    return parse_campaigns(json.dumps({"campaigns": out}).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # a loaded machine
@given(cs=st.integers(1, 6).flatmap(lambda n: st.tuples(*(a_campaign(i) for i in range(n)))),
       reqs=st.lists(request, min_size=1, max_size=4), model=models, poor=st.integers(0, 63),
       cur=st.sampled_from([None, ["USD"], ["EUR"], ["JPY", "USD"], ["XXX"]]), test=st.sampled_from([0, 0, 1]))
def test_the_c_decision_is_its_python_twins(cs: tuple[dict[str, Any], ...], reqs: list[dict[str, Any]], model: str,
                                            poor: int, cur: list[str] | None, test: int) -> None:
    a, b = twins(small_budgets(cs, poor), model)
    for r in reqs:
        imps = [{**imp, "id": str(k)} for k, imp in enumerate(r["imp"])]
        body = json.dumps({**r, "imp": imps, "test": test, **({"cur": cur} if cur else {})}).encode()
        same(a, b, body)
        same(a, b, body)  # again: budgets spent, campaigns stepping aside


def test_every_shared_sample_with_the_example_campaigns() -> None:
    a, b = twins(parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()))
    answered = {200: 0, 204: 0, 400: 0}
    for path in sorted(SAMPLES.rglob("*.json")):
        answered[same(a, b, path.read_bytes()).status] += 1
    assert answered[200] >= 4 and answered[204] and answered[400]  # each of the three answers is compared


def test_campaigns_step_aside_for_the_next_best_until_the_admissions_run_out() -> None:
    """Each campaign has room for one bid: each request's imp goes to the next best campaign, in C as in
    Python, until ``MAX_ADMISSIONS`` campaigns in a row have stepped aside: then the imp goes unbid, though
    the last campaign still has room."""
    n = MAX_ADMISSIONS + 1
    camps = parse_campaigns(json.dumps({"campaigns": [
        {"id": f"c{i}", "advertiser": "a.com", "budget": {"total": 0.004},
         "bid": {"max_cpm": 3.0 + i / 10, "value_per_conversion": 10.0, "conversion_rate": 1.0},
         "creatives": [{"id": "x", "w": 300, "h": 250, "adm": "x"}]} for i in range(n)]}).encode())
    a, b = twins(camps)
    body = b'{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}]}'
    won = [json.loads(same(a, b, body).body)["seatbid"][0]["bid"][0]["cid"] for _ in range(MAX_ADMISSIONS)]
    assert won == [f"c{i}" for i in reversed(range(1, n))]  # the highest bidder first, then the next
    assert same(a, b, body) == NO_BID and a.stats.no_bid["budget"] == 1
    assert a.stats.campaigns["c0"].bids == 0 and a.budget.stats()["campaign:c0:total"]["reserved"] == 0


def test_several_imps_in_another_currency_and_test_traffic() -> None:
    camps = parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes())
    a, b = twins(camps)
    req = json.loads(BANNER.read_bytes())
    req["imp"] = [{**req["imp"][0], "id": str(k)} for k in range(12)]  # more imps than the C stack holds
    for extra in ({"cur": ["EUR"]}, {"cur": ["JPY"], "test": 1}, {}):
        got = same(a, b, json.dumps({**req, **extra}).encode())
        assert got.status == 200
        bids = json.loads(got.body)["seatbid"][0]["bid"]
        assert {x["impid"] for x in bids} == {str(k) for k in range(12)}
        assert len({x["id"] for x in bids}) == 12
    held = sum(s["reserved"] for s in a.budget.stats().values())
    assert held > 0  # the EUR bids hold their cost; the JPY test bids hold nothing (compared above)


def test_a_bid_id_is_the_prefix_and_the_serial_in_hex() -> None:
    a, b = twins(parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()))
    body = BANNER.read_bytes()
    for e in (a, b):
        e._ids = iter([0xABCDEF0123])  # type: ignore[assignment]
        got = json.loads(e.bid(body).body)["seatbid"][0]["bid"][0]["id"]
        assert got == a._bid_prefix + "abcdef0123"
        assert e.bid(body) == NO_BID and e.stats.errors == 1  # serials ran out: an error of ours, a no-bid


def test_a_failing_part_is_an_error_and_a_no_bid_in_both() -> None:
    class Explains(PriorModel):
        def bind(self, lines: Any) -> Any:
            scorer = super().bind(lines)

            class Failing:
                def __getattr__(self, name: str) -> Any:
                    return getattr(scorer, name)

                def explain(self, line: int, ctx: Any) -> tuple[float, float]:
                    raise RuntimeError("explain failed")

            return Failing()

    a, b = twins(parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()), Explains())
    body = BANNER.read_bytes()
    assert same(a, b, body) == NO_BID
    assert a.stats.errors == 1 and a.stats.no_bid["error"] == 1 and a.stats.bids == 0


def test_refusals_say_what_was_wrong() -> None:
    a, _ = twins(parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()))
    req = msgspec.json.decode(BANNER.read_bytes(), type=BidRequest)
    args = (Outcome, NO_BID, fx.from_usd_micros, fx.held_micros, MAX_ADMISSIONS)
    with pytest.raises(TypeError, match="not initialised"):
        Decide.__new__(Decide)(a, req, "USD")
    with pytest.raises(TypeError, match="tuple type"):
        Decide(dict, NO_BID, *args[2:])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="admissions >= 1"):
        Decide(*args[:4], 0)
    with pytest.raises(TypeError, match="already initialised"):
        decide.__init__(*args)  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"takes \(engine, req, cur\)"):
        decide(a, req)  # type: ignore[call-arg]
    a._request_mask = lambda req, now, live: 1  # type: ignore[assignment,misc]
    with pytest.raises(TypeError, match="the request mask must return a pair"):
        decide(a, req, "USD")
