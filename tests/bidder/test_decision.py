"""The decision: targeting, request blocks, deals, floors and currency, auction type, validation."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.bidder.conftest import campaign, campaigns, sample_json

BANNER = sample_json("request-1-simple-banner.json")  # at=1, floor 0.03 USD, 300x250 on www.foobar.com


def req(**changes: Any) -> dict[str, Any]:
    r = copy.deepcopy(BANNER)
    r.update(changes)
    return r


def run(bidder, r: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    status, body = bidder.engine.bid(json.dumps(r).encode())
    return status, (json.loads(body) if body else None)


def bids(resp: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [b for s in (resp or {}).get("seatbid", []) for b in s["bid"]]


def only(make_bidder, *items: dict[str, Any]):
    return make_bidder(campaigns(*items))


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"imp":[{"id":"1","banner":{"w":300,"h":250}}]}',  # no id
        b'{"id":"r"}',  # no imp
        b'{"id":"r","imp":[]}',
        b'{"id":"r","imp":[{"id":"1"},{"id":"1"}]}',  # duplicate imp ids
        b'{"id":"r","imp":[{"id":"1"}],"site":{},"app":{}}',
        b'{"id":"r","imp":[{"id":"1","bidfloor":"0.5"}]}',  # wrong type
        b'{"id":7,"imp":[{"id":"1"}]}',
        b'{"id":"r","imp":[{"id":"1","banner":{"w":300.5,"h":250}}]}',
    ],
)
def test_malformed_requests_get_400_with_no_body(make_bidder, body: bytes) -> None:
    b = make_bidder()
    assert b.engine.bid(body) == (400, b"")
    assert b.stats.invalid == 1


def test_integral_floats_are_integers_as_json_schema_says(make_bidder) -> None:
    b = only(make_bidder, campaign())
    r = req()
    r["imp"][0]["banner"] = {"w": 300.0, "h": 250.0}
    assert run(b, r)[0] == 200


def test_unknown_fields_are_ignored(make_bidder) -> None:
    b = only(make_bidder, campaign())
    r = req(somefuturefield={"x": [1, 2]})
    r["imp"][0]["newthing"] = 3
    assert run(b, r)[0] == 200


# --- targeting -------------------------------------------------------------------------------------


def with_device(r: dict[str, Any], **device: Any) -> dict[str, Any]:
    r["device"] = device
    return r


@pytest.mark.parametrize(
    ("targeting", "device", "bids_"),
    [
        ({"countries": ["USA"]}, {"geo": {"country": "USA"}}, True),
        ({"countries": ["USA"]}, {"geo": {"country": "GBR"}}, False),
        ({"countries": ["USA"]}, {}, False),  # unknown geo does not match a geo-targeted campaign
        ({"regions": ["CA"]}, {"geo": {"country": "USA", "region": "ca"}}, True),
        ({"regions": ["CA"]}, {"geo": {"country": "USA", "region": "NY"}}, False),
        ({"device_types": [4, 5]}, {"devicetype": 4}, True),
        ({"device_types": [4, 5]}, {"devicetype": 2}, False),
        ({"os": ["iOS"]}, {"os": "ios"}, True),
        ({"os": ["iOS"]}, {"os": "Android"}, False),
        ({}, {}, True),
    ],
)
def test_device_and_geo_targeting(make_bidder, targeting, device, bids_) -> None:
    b = only(make_bidder, campaign(targeting=targeting))
    assert (run(b, with_device(req(), **device))[0] == 200) is bids_


@pytest.mark.parametrize(
    ("targeting", "bids_"),
    [
        ({"domains": ["foobar.com"]}, True),  # www.foobar.com is under foobar.com
        ({"domains": ["other.com"]}, False),
        ({"blocked_domains": ["foobar.com"]}, False),
        ({"blocked_domains": ["other.com"]}, True),
        ({"bundles": ["com.some.app"]}, False),  # an app-only campaign does not buy sites
        ({"categories": ["IAB3"]}, True),  # the site is IAB3-1, a child of IAB3
        ({"categories": ["IAB3-1"]}, True),
        ({"categories": ["IAB7"]}, False),
        ({"hours": [14]}, True),  # the injected clock says 14:30 UTC
        ({"hours": [9, 10]}, False),
    ],
)
def test_site_targeting(make_bidder, targeting, bids_) -> None:
    b = only(make_bidder, campaign(targeting=targeting))
    assert (run(b, req())[0] == 200) is bids_


def test_hours_use_the_users_local_time(make_bidder) -> None:
    b = only(make_bidder, campaign(targeting={"hours": [16]}))
    assert run(b, with_device(req(), geo={"utcoffset": 120}))[0] == 200
    assert run(b, with_device(req(), geo={"utcoffset": 0}))[0] == 204


def test_app_targeting_by_bundle_and_block(make_bidder) -> None:
    app = sample_json("request-3-mobile.json")
    b = only(make_bidder, campaign(targeting={"bundles": ["12345"]},
                                   creatives=[{"id": "x", "w": 728, "h": 90, "adm": "a"}]))
    assert run(b, app)[0] == 200
    b2 = only(make_bidder, campaign(targeting={"blocked_domains": ["12345"]},
                                    creatives=[{"id": "x", "w": 728, "h": 90, "adm": "a"}]))
    assert run(b2, app)[0] == 204


def test_only_offered_sizes_and_formats_are_bid(make_bidder) -> None:
    b = only(make_bidder, campaign(creatives=[{"id": "big", "w": 728, "h": 90, "adm": "a"}]))
    assert run(b, req())[0] == 204  # the imp offers 300x250 only
    r = req()
    r["imp"][0]["banner"]["format"] = [{"w": 728, "h": 90}]
    status, resp = run(b, r)
    assert status == 200 and (bids(resp)[0]["w"], bids(resp)[0]["h"]) == (728, 90)


def test_video_needs_matching_mime_and_duration(make_bidder) -> None:
    video = sample_json("request-4-video.json")  # mp4 among mimes, 5-30 s
    ok = {"id": "v", "format": "video", "mimes": ["video/mp4"], "duration": 30, "adm": "<VAST/>"}
    long = dict(ok, id="l", duration=60)
    webm = dict(ok, id="w", mimes=["video/webm"])
    assert run(only(make_bidder, campaign(creatives=[ok])), video)[0] == 200
    assert run(only(make_bidder, campaign(creatives=[long])), video)[0] == 204
    assert run(only(make_bidder, campaign(creatives=[webm])), video)[0] == 204
    _, resp = run(only(make_bidder, campaign(creatives=[ok])), video)
    assert bids(resp)[0]["mtype"] == 2


# --- request blocks --------------------------------------------------------------------------------


def test_bcat_blocks_a_creative_category_and_its_children(make_bidder) -> None:
    b = only(make_bidder, campaign(creatives=[{"id": "c", "w": 300, "h": 250, "cat": ["IAB25-3"], "adm": "a"}]))
    assert run(b, req(bcat=["IAB25"]))[0] == 204
    assert run(b, req(bcat=["IAB25-3"]))[0] == 204
    assert run(b, req(bcat=["IAB26"]))[0] == 200


def test_badv_blocks_the_advertiser(make_bidder) -> None:
    b = only(make_bidder, campaign(advertiser="Brand.com"))
    assert run(b, req(badv=["brand.com"]))[0] == 204
    assert run(b, req(badv=["other.com"]))[0] == 200


def test_bapp_blocks_campaigns_advertising_that_app(make_bidder) -> None:
    b = only(make_bidder, campaign(bundle="com.game.install"))
    assert run(b, req(bapp=["com.game.install"]))[0] == 204
    status, resp = run(b, req(bapp=["com.other"]))
    assert status == 200 and bids(resp)[0]["bundle"] == "com.game.install"


def test_battr_blocks_creative_attributes(make_bidder) -> None:
    b = only(make_bidder, campaign(creatives=[{"id": "c", "w": 300, "h": 250, "attr": [13], "adm": "a"}]))
    r = req()
    r["imp"][0]["banner"]["battr"] = [13]
    assert run(b, r)[0] == 204
    r["imp"][0]["banner"]["battr"] = [1]
    assert run(b, r)[0] == 200


def test_wseat_and_bseat(make_bidder) -> None:
    b = only(make_bidder, campaign(seat="seatA"))
    assert run(b, req(wseat=["seatA"]))[0] == 200
    assert run(b, req(wseat=["seatB"]))[0] == 204
    assert run(b, req(bseat=["seatA"]))[0] == 204
    _, resp = run(b, req())
    assert resp["seatbid"][0]["seat"] == "seatA"


# --- deals -----------------------------------------------------------------------------------------


def test_private_auction_takes_deal_bids_only(make_bidder) -> None:
    pmp = sample_json("request-5-pmp-direct-deal.json")  # private; deal AB-Agency1-0001 floor 2.5, wseat Agency1
    open_only = campaign(id="open", bid={"max_cpm": 9.0, "value_per_conversion": 100.0, "conversion_rate": 0.1})
    assert run(only(make_bidder, open_only), pmp)[0] == 204
    deal = campaign(id="deal", seat="Agency1", targeting={"deal_ids": ["AB-Agency1-0001"]},
                    bid={"max_cpm": 9.0, "value_per_conversion": 100.0, "conversion_rate": 0.1})
    status, resp = run(only(make_bidder, open_only, deal), pmp)
    assert status == 200
    (bid,) = bids(resp)
    assert bid["dealid"] == "AB-Agency1-0001" and bid["cid"] == "deal" and bid["price"] >= 2.5


def test_deal_wseat_excludes_other_seats(make_bidder) -> None:
    pmp = sample_json("request-5-pmp-direct-deal.json")
    deal = campaign(seat="Agency9", targeting={"deal_ids": ["AB-Agency1-0001"]},
                    bid={"max_cpm": 9.0, "value_per_conversion": 100.0, "conversion_rate": 0.1})
    assert run(only(make_bidder, deal), pmp)[0] == 204


def test_deal_floor_does_not_inherit_the_imp_currency(make_bidder) -> None:
    r = req()
    r["imp"][0]["bidfloorcur"] = "JPY"
    r["imp"][0]["bidfloor"] = 100.0
    r["imp"][0]["pmp"] = {"private_auction": 1, "deals": [{"id": "d1", "bidfloor": 3.0}]}  # 3.0 USD
    deal = campaign(targeting={"deal_ids": ["d1"]}, bid={"max_cpm": 3.5, "value_per_conversion": 100.0,
                                                         "conversion_rate": 0.1})
    status, resp = run(only(make_bidder, deal), r)
    assert status == 200 and bids(resp)[0]["price"] >= 3.0
    cheap = campaign(targeting={"deal_ids": ["d1"]}, bid={"max_cpm": 2.9, "value_per_conversion": 100.0,
                                                          "conversion_rate": 0.1})
    assert run(only(make_bidder, cheap), r)[0] == 204  # 2.9 USD < 3.0 USD, though far above 100 JPY


# --- floors, currency, auction type ------------------------------------------------------------------


def test_floor_above_value_means_no_bid(make_bidder) -> None:
    b = only(make_bidder, campaign())  # value: 0.0003 * 10 * 1000 = 3.0 CPM
    r = req()
    r["imp"][0]["bidfloor"] = 3.01
    assert run(b, r)[0] == 204
    assert b.stats.no_bid["below_floor"] == 1


def test_first_price_is_shaded_but_never_below_the_floor(make_bidder) -> None:
    b = only(make_bidder, campaign())  # value 3.0, shade 0.8 -> 2.4
    _, resp = run(b, req(at=1))
    assert bids(resp)[0]["price"] == pytest.approx(2.4)
    r = req(at=1)
    r["imp"][0]["bidfloor"] = 2.9
    _, resp = run(b, r)
    assert bids(resp)[0]["price"] == pytest.approx(2.9)


def test_second_price_bids_the_value_capped_at_max_cpm(make_bidder) -> None:
    _, resp = run(only(make_bidder, campaign()), req(at=2))
    assert bids(resp)[0]["price"] == pytest.approx(3.0)
    capped = campaign(bid={"max_cpm": 1.5, "value_per_conversion": 10.0, "conversion_rate": 0.0003})
    _, resp = run(only(make_bidder, capped), req(at=2))
    assert bids(resp)[0]["price"] == pytest.approx(1.5)


def test_target_roas_divides_the_value(make_bidder) -> None:
    c = campaign(bid={"max_cpm": 9.0, "target_roas": 2.0, "value_per_conversion": 10.0, "conversion_rate": 0.0003})
    _, resp = run(only(make_bidder, c), req(at=2))
    assert bids(resp)[0]["price"] == pytest.approx(1.5)


def test_floor_in_another_currency_is_converted(make_bidder) -> None:
    b = only(make_bidder, campaign())  # 3.0 USD value
    r = req(at=2)
    r["imp"][0].update(bidfloor=2.7, bidfloorcur="EUR")  # 2.7 EUR = 2.93 USD < 3.0
    assert run(b, r)[0] == 200
    r["imp"][0].update(bidfloor=2.8)  # 3.04 USD > 3.0
    assert run(b, r)[0] == 204


def test_response_currency_follows_the_request(make_bidder) -> None:
    b = only(make_bidder, campaign())
    r = req(at=2, cur=["EUR"])
    r["imp"][0].update(bidfloor=2.0, bidfloorcur="EUR")
    status, resp = run(b, r)
    assert status == 200 and resp["cur"] == "EUR"
    assert bids(resp)[0]["price"] == pytest.approx(3.0 * 0.92, abs=1e-5)
    assert bids(resp)[0]["price"] >= 2.0
    assert run(b, req(cur=["XXX"]))[0] == 204
    assert b.stats.no_bid["currency"] == 1
    _, resp = run(b, req())
    assert resp["cur"] == "USD"


def test_unknown_floor_currency_means_no_bid(make_bidder) -> None:
    b = only(make_bidder, campaign())
    r = req()
    r["imp"][0]["bidfloorcur"] = "XXX"
    assert run(b, r)[0] == 204


def test_tmax_too_short_is_a_no_bid_with_reason_15(make_bidder) -> None:
    b = only(make_bidder, campaign())
    status, resp = run(b, req(tmax=5))
    assert status == 200 and resp == {"id": BANNER["id"], "nbr": 15}
    assert run(b, req(tmax=300))[0] == 200


def test_each_imp_is_decided_and_bid_ids_are_unique(make_bidder) -> None:
    r = req()
    r["imp"] = [dict(r["imp"][0], id=str(i)) for i in range(3)]
    status, resp = run(only(make_bidder, campaign()), r)
    assert status == 200
    got = bids(resp)
    assert sorted(b["impid"] for b in got) == ["0", "1", "2"]
    assert len({b["id"] for b in got}) == 3


def test_bid_carries_the_fields_exchanges_need(make_bidder) -> None:
    _, resp = run(only(make_bidder, campaign()), req())
    (bid,) = bids(resp)
    assert bid["adomain"] == ["brand.com"] and bid["cid"] == "c1" and bid["crid"] == "cr1"
    assert (bid["w"], bid["h"], bid["mtype"]) == (300, 250, 1)
    assert bid["adm"] == "<b>ad</b>"
    assert bid["ext"]["rtb"]["model"] == "prior-1" and bid["ext"]["rtb"]["source"] == "ai"


def test_user_id_reaches_the_model_only_with_consent(make_bidder) -> None:
    b = only(make_bidder, campaign())
    idx = b.engine.index
    gdpr_no_consent = req(regs={"gdpr": 1}, user={"id": "u1"})
    assert b.engine._request_mask(b.engine._decoder.decode(json.dumps(gdpr_no_consent)), 0.0, idx.live)[1].user_id == ""
    consent_25 = req(regs={"ext": {"gdpr": 1}}, user={"id": "u1", "ext": {"consent": "CO-abc"}})
    assert b.engine._request_mask(b.engine._decoder.decode(json.dumps(consent_25)), 0.0, idx.live)[1].user_id == "u1"
    opted_out = req(regs={"us_privacy": "1YYN"}, user={"id": "u1"})
    assert b.engine._request_mask(b.engine._decoder.decode(json.dumps(opted_out)), 0.0, idx.live)[1].user_id == ""


def test_budget_exhausted_campaign_stops_bidding(make_bidder) -> None:
    b = only(make_bidder, campaign(budget={"total": 0.001}))  # 1000 micros; one impression at 3 CPM costs 3000
    assert run(b, req(at=2))[0] == 204
    assert b.stats.no_bid["budget"] == 1


def test_test_requests_bid_without_reserving(make_bidder) -> None:
    b = only(make_bidder, campaign(budget={"total": 0.001}))
    assert run(b, req(at=2, test=1))[0] == 200
