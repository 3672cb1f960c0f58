"""Every public request sample gets 200, 204 or (for the genuinely malformed) 400; never 5xx."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.bidder.conftest import SAMPLES, SHARED

# Request samples that are not acceptable OpenRTB, and why (the lenient 2.6 schema agrees on each).
MALFORMED = {
    "xrtb/appnexus.json": "`source` is a string (a log path), not an object",
    "xrtb/bad-cappture.json": "`imp[0].secure` is an empty string, not 0/1",
    "xrtb/bad-w-and-h.json": "`banner.w` and `banner.h` are strings",
    "xrtb/msie.json": "`imp[0].secure` is the string \"1\"",
}


def _request_samples() -> list[Path]:
    """Files shaped like a whole BidRequest (an ``imp`` list at the top); responses and single-object
    fragments in the sample folders are not requests."""
    out = []
    for p in sorted(SAMPLES.rglob("*.json")):
        try:
            data = json.loads(p.read_bytes())
        except ValueError:
            continue
        if isinstance(data, dict) and "imp" in data:
            out.append(p)
    return out


REQUESTS = _request_samples()
STRICT = jsonschema.Draft202012Validator(
    json.loads((SHARED / "schema" / "openrtb26-BidResponse-strict.schema.json").read_bytes())
)
LENIENT = jsonschema.Draft202012Validator(
    json.loads((SHARED / "schema" / "openrtb26-BidRequest-lenient.schema.json").read_bytes())
)


def test_the_sample_set_is_the_one_we_expect() -> None:
    assert len(REQUESTS) >= 50
    names = {str(p.relative_to(SAMPLES)) for p in REQUESTS}
    assert set(MALFORMED) <= names


# Break the lenient schema only in fields a bidder does not read, or in media objects it then does
# not bid on; answered as receivers should (ignoring what they do not use), never 400.
TOLERATED = {
    "google/REQUEST__FULL__NOROOT_OBJECT.json": "proto-style `companionad`; a native imp without `request`",
    "xrtb/badimage.json": "`banner.mimes` holds numbers (banner mimes are not read)",
    "xrtb/fyberDisplay640x480.json": "video without `mimes` (no video bid), `protocol` as a list",
    "xrtb/fyberMobileInApp.json": "video without `mimes` (no video bid), `protocol` as a list",
    "xrtb/fyberVideoPvtMkt.json": "video without `mimes` (no video bid)",
    "xrtb/nexageNativeAppWall.json": "native without `request` (no native bid)",
    "xrtb/nexageNativeContentStreamWithVideo.json": "native without `request` (no native bid)",
    "xrtb/smaatoRichMedia.json": "`user.keywords` as a list (not read)",
}


def test_malformed_list_agrees_with_the_lenient_schema() -> None:
    for p in REQUESTS:
        name = str(p.relative_to(SAMPLES))
        valid = LENIENT.is_valid(json.loads(p.read_bytes()))
        assert valid == (name not in MALFORMED.keys() | TOLERATED.keys()), name


def _offered(imp: dict) -> set[tuple[str, int, int]]:
    out = set()
    if "banner" in imp:
        b = imp["banner"]
        for f in b.get("format") or []:
            out.add(("banner", f["w"], f["h"]))
        if b.get("w") and b.get("h"):
            out.add(("banner", int(b["w"]), int(b["h"])))
    for kind in ("video", "audio", "native"):
        if kind in imp:
            out.add((kind, 0, 0))
    return out


MTYPE = {1: "banner", 2: "video", 3: "audio", 4: "native"}


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: str(p.relative_to(SAMPLES)))
def test_sample_is_answered_correctly(make_bidder, path: Path) -> None:
    bidder = make_bidder()
    name = str(path.relative_to(SAMPLES))
    raw = path.read_bytes()
    status, body = bidder.engine.bid(raw)
    if name in MALFORMED:
        assert (status, body) == (400, b"")
        return
    assert status in (200, 204), name
    assert bidder.stats.errors == 0
    if status == 204:
        assert body == b""
        return
    req = json.loads(raw)
    resp = json.loads(body)
    STRICT.validate(resp)
    assert resp["id"] == req["id"]
    wanted = req.get("cur") or ["USD"]
    assert resp["cur"] in (["USD"] if "USD" in wanted else wanted)
    imps = {i["id"]: i for i in req["imp"]}
    bid_ids = set()
    for seat in resp["seatbid"]:
        for bid in seat["bid"]:
            assert bid["id"] not in bid_ids
            bid_ids.add(bid["id"])
            imp = imps[bid["impid"]]
            kind = MTYPE[bid["mtype"]]
            offered = _offered(imp)
            if kind == "banner":
                assert ("banner", bid["w"], bid["h"]) in offered
            else:
                assert (kind, 0, 0) in offered
            deal = None
            if bid.get("dealid"):
                deal = next(d for d in imp["pmp"]["deals"] if d["id"] == bid["dealid"])
            elif imp.get("pmp", {}).get("private_auction") == 1:
                pytest.fail("open-auction bid on a private-auction imp")
            floor = (deal or imp).get("bidfloor", 0)
            floor_cur = (deal or imp).get("bidfloorcur", "USD")  # a deal does not inherit the imp's
            if floor_cur == resp["cur"]:
                assert bid["price"] >= floor
            assert bid["price"] > 0
            assert set(bid["adomain"]).isdisjoint(req.get("badv") or [])
            for c in bid.get("cat") or []:
                assert c not in (req.get("bcat") or []) and c.split("-")[0] not in (req.get("bcat") or [])
            assert bid["nurl"].startswith("https://bid.example/notice/win?")
            assert bid["burl"].startswith("https://bid.example/notice/bill?")
            assert bid["lurl"].startswith("https://bid.example/notice/loss?")
            assert ("adm" in bid) or ("nurl" in bid)


def test_iab_examples_all_get_a_bid_from_the_example_campaigns(make_bidder) -> None:
    bidder = make_bidder()
    for name in ("request-1-simple-banner.json", "request-2-expandable-creative.json",
                 "request-3-mobile.json", "request-4-video.json", "request-5-pmp-direct-deal.json"):
        status, _ = bidder.engine.bid((SAMPLES / "iab-2.6-spec" / name).read_bytes())
        assert status == 200, name


def test_the_readmes_example_request_is_the_iab_banner_and_gets_a_bid(make_bidder) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "bid-request.json"
    assert example.read_bytes() == (SAMPLES / "iab-2.6-spec" / "request-1-simple-banner.json").read_bytes()
    status, _ = make_bidder().engine.bid(example.read_bytes())
    assert status == 200


def test_written_responses_are_the_documented_bid_response(make_bidder) -> None:
    """The pre-encoded writer emits exactly what ``bidder.openrtb.BidResponse`` describes."""
    import msgspec

    from bidder.openrtb import BidResponse

    bidder = make_bidder()
    for name in ("request-1-simple-banner.json", "request-4-video.json", "request-5-pmp-direct-deal.json"):
        status, body = bidder.engine.bid((SAMPLES / "iab-2.6-spec" / name).read_bytes())
        typed = msgspec.json.decode(body, type=BidResponse)
        assert json.loads(msgspec.json.encode(typed)) == json.loads(body)
