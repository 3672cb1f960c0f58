"""The pure translators: request shapes and response reading, no transport involved."""

from __future__ import annotations

import json

import jsonschema
import msgspec
import pytest

from bench import shared
from bidder.openrtb import BidResponse
from connectors import BadDecision, MalformedResponse, Throttled, usd
from connectors.google_ads import GoogleAds
from connectors.meta import Meta
from connectors.tiktok import TikTok
from connectors.tradedesk import TradeDesk
from connectors.transport import PlatformResponse

from .support import decision

SCHEMA = shared.STRICT_RESPONSE_SCHEMA


def response(status: int = 200, body: object = None, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> PlatformResponse:
    return PlatformResponse(status, headers or {}, raw if raw is not None else msgspec.json.encode(body))


def test_google_target_roas_is_ltv_over_bid_and_money_travels_as_micro_strings() -> None:
    reqs = GoogleAds("1", "t").requests(decision(40, ltv=130, max_cpc_micros=usd(1.75)))
    update = reqs[0].json["operations"][0]["update"]  # type: ignore[index]
    assert update["targetRoas"] == {"targetRoas": 3.25, "cpcBidCeilingMicros": "1750000"}
    budget = reqs[1].json["operations"][0]["update"]  # type: ignore[index]
    assert budget["amountMicros"] == "40000000"
    assert [r.url.rsplit("/", 1)[-1] for r in reqs] == ["campaigns:mutate", "campaignBudgets:mutate"]


def test_google_refuses_an_explanation_too_long_for_a_custom_parameter() -> None:
    with pytest.raises(BadDecision, match="at most 250"):
        GoogleAds("1", "t").requests(decision(10, explanation={"why": "x" * 300}))


def test_google_quota_error_without_delay_waits_the_default_30_seconds() -> None:
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota"}}
    with pytest.raises(Throttled) as exc:
        GoogleAds("1", "t").check(response(429, body))
    assert exc.value.retry_after == 30.0


def test_meta_rounds_cents_down_so_caps_never_exceed_the_decision() -> None:
    form = Meta("b", "t").requests(decision(10.999, max_cpc_micros=usd(0.019)))[0].form
    assert form is not None and (form["bid_amount"], form["daily_budget"]) == ("1", "1099")


def test_meta_usage_is_the_highest_reading_across_headers() -> None:
    headers = {
        "x-app-usage": json.dumps({"call_count": 12, "total_cputime": 3, "total_time": 4}),
        "x-ad-account-usage": json.dumps({"acc_id_util_pct": 40.5, "reset_time_duration": 30}),
        "x-business-use-case-usage": json.dumps({"9": [{"type": "ads_management", "call_count": 2,
                                                        "total_time": 77, "estimated_time_to_regain_access": 2}]}),
    }
    usage = Meta("b", "t").usage(response(200, {"success": True}, headers=headers))
    assert usage is not None and (usage.pct, usage.retry_after) == (77.0, 120.0)


def test_tiktok_sends_currency_units() -> None:
    bid, budget = TikTok("adv", "t").requests(decision(12.345, max_cpc_micros=usd(0.5)))
    assert bid.json == {"advertiser_id": "adv", "adgroup_id": "c1", "bid_price": 0.5}
    assert budget.json == {"advertiser_id": "adv", "budget": [{"adgroup_id": "c1", "budget": 12.34}]}


def test_tradedesk_bid_response_is_valid_openrtb() -> None:
    built = TradeDesk("seat-1", "key", "secret").bid_response(decision(3, bid_id="b-1"))
    assert isinstance(built, BidResponse)
    doc = json.loads(msgspec.json.encode(built))
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_bytes())).validate(doc)
    bid = doc["seatbid"][0]["bid"][0]
    assert bid["price"] == 3.0 and bid["adomain"] == ["brand.example"]
    assert "${AUCTION_PRICE}" in bid["nurl"] and "${AUCTION_PRICE}" in bid["burl"]
    assert "${AUCTION_LOSS}" in bid["lurl"]
    assert bid["ext"]["ltv"] == 7.5


def test_tradedesk_needs_the_auction() -> None:
    d = msgspec.structs.replace(decision(3), auction=None)
    with pytest.raises(BadDecision, match="needs the auction"):
        TradeDesk("s", "k", "secret").requests(d)


@pytest.mark.parametrize("translator",
                         [GoogleAds("1", "t"), Meta("b", "t"), TikTok("a", "t"), TradeDesk("s", "k", "secret")],
                         ids=lambda t: t.platform)
@pytest.mark.parametrize("raw", [b"", b"null", b"\xff\xfe", b'{"error": "flat string"}', b"[]"])
def test_unreadable_error_bodies_are_malformed_responses(translator: object, raw: bytes) -> None:
    resp = response(500, raw=raw)
    with pytest.raises(Exception) as exc:
        translator.parse(resp)  # type: ignore[attr-defined]
    assert exc.type.__module__ == "connectors.errors", f"{exc.type.__name__}: not a connector error"
    if translator.platform != "tradedesk":  # type: ignore[attr-defined]
        assert isinstance(exc.value, MalformedResponse)
