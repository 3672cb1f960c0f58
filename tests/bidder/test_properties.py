"""Properties: whatever arrives, the decision never raises, never prices below a floor or non-finite."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bidder.campaign import parse_campaigns
from bidder.service import Bidder
from bidder.settings import EXAMPLE_CAMPAIGNS, from_env
from tests.bidder.conftest import IAB, SECRET, Wall

SEEDS = [json.loads(p.read_bytes()) for p in sorted(IAB.glob("*request*.json"))]
BANNER = (IAB / "request-1-simple-banner.json").read_bytes()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=10,
)
FIELDS = ["id", "imp", "at", "cur", "bcat", "badv", "wseat", "bseat", "tmax", "test", "site", "app", "device",
          "user", "regs", "source", "bidfloor", "bidfloorcur", "banner", "video", "pmp", "w", "h", "format",
          "deals", "private_auction", "country", "devicetype", "mimes", "domain", "bundle", "cat"]


def _mutate(doc: Any, path: list[int], key: str, value: Any) -> Any:
    """Replace or add ``key`` somewhere in ``doc``, following ``path`` to pick nested objects."""
    doc = copy.deepcopy(doc)
    node = doc
    for step in path:
        kids = [v for v in (node.values() if isinstance(node, dict) else node) if isinstance(v, dict | list)]
        if not kids:
            break
        node = kids[step % len(kids)]
    if isinstance(node, dict):
        node[key] = value
    elif isinstance(node, list) and node:
        node[0] = value
    return doc


@pytest.fixture(scope="module")
def bidder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bidder]:
    s = from_env({}, data_dir=str(tmp_path_factory.mktemp("prop")), notice_secret=SECRET)
    b = Bidder(s, parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()), clock=Wall())
    b.warm_up()
    yield b
    b.close()


def check(b: Bidder, raw: bytes) -> None:
    status, body = b.engine.bid(raw)
    assert status in (200, 204, 400)
    if status != 200:
        assert body == b""
        return
    resp = json.loads(body)
    if "nbr" in resp:
        return
    req = json.loads(raw)
    imps = {i["id"]: i for i in req["imp"]}
    for seat in resp["seatbid"]:
        for bid in seat["bid"]:
            assert math.isfinite(bid["price"]) and bid["price"] > 0
            imp = imps[bid["impid"]]
            src = imp
            if bid.get("dealid"):
                src = next(d for d in imp["pmp"]["deals"] if d["id"] == bid["dealid"])
            floor = src.get("bidfloor", 0)
            cur = src.get("bidfloorcur", "USD")
            if isinstance(floor, int | float) and floor > 0 and cur == resp["cur"]:
                assert bid["price"] >= floor


@settings(max_examples=300, deadline=None)
@given(seed=st.sampled_from(SEEDS), path=st.lists(st.integers(0, 5), max_size=4),
       key=st.sampled_from(FIELDS), value=json_values)
def test_mutated_requests_never_break_the_decision(bidder: Bidder, seed, path, key, value) -> None:
    b = bidder
    check(b, json.dumps(_mutate(seed, path, key, value)).encode())
    assert b.stats.errors == 0


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_never_break_the_decision(bidder: Bidder, raw: bytes) -> None:
    b = bidder
    check(b, raw)
    assert b.stats.errors == 0


@settings(max_examples=200, deadline=None)
@given(floor=st.floats(min_value=0, max_value=20), cur=st.sampled_from(["USD", "EUR", "GBP", "JPY"]),
       at=st.sampled_from([1, 2]), deal_floor=st.floats(min_value=0, max_value=20))
def test_prices_respect_floors_in_every_currency(bidder: Bidder, floor, cur, at, deal_floor) -> None:
    b = bidder
    for seed in SEEDS:
        r = copy.deepcopy(seed)
        r["at"] = at
        r["cur"] = [cur]
        for imp in r["imp"]:
            imp["bidfloor"] = floor
            imp["bidfloorcur"] = cur
            for d in (imp.get("pmp") or {}).get("deals") or []:
                d["bidfloor"] = deal_floor
                d["bidfloorcur"] = cur
        check(b, json.dumps(r).encode())
    assert b.stats.errors == 0


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["win", "bill", "loss"]),
       field=st.sampled_from(["b", "i", "c", "r", "bp", "cu", "x", "t", "s", "p", "l"]),
       value=st.text(max_size=30), drop=st.booleans())
def test_tampered_notices_are_refused_never_raised(bidder: Bidder, kind: str, field: str, value: str,
                                                   drop: bool) -> None:
    # Any parameter of a real notice changed to any text, or removed: an answer (booked, refused or
    # stale), never an exception, which the server would turn into a 500.
    status, body = bidder.engine.bid(BANNER)
    assert status == 200
    url = json.loads(body)["seatbid"][0]["bid"][0][{"win": "nurl", "bill": "burl", "loss": "lurl"}[kind]]
    params = dict(parse_qsl(urlsplit(url).query.replace("${AUCTION_PRICE}", "1").replace("${AUCTION_LOSS}", "2")))
    if drop:
        params.pop(field, None)
    else:
        params[field] = value
    assert bidder.notice(kind, urlencode(params))[0] in (200, 400, 410)
