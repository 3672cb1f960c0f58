"""The request-level mask in C (``bidder/_targeting.c``) against its Python twin (``targeting.request_mask_py``)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bidder._native import RequestMask
from bidder.campaign import parse_campaigns
from bidder.index import Index
from bidder.openrtb import BidRequest, privacy
from bidder.settings import EXAMPLE_CAMPAIGNS
from bidder.targeting import request_mask_py, tables
from bidder.value import Context
from tests.bidder.conftest import IAB

# Small pools, so that campaigns and requests meet; mixed case and non-ASCII text on purpose.
COUNTRIES = ["USA", "gbr", "De", "ÅLA"]
REGIONS = ["CA", "ny"]
OS = ["iOS", "android", "İOS"]
DOMAINS = ["foobar.com", "www.foobar.com", "News.co.uk", "é.fr"]
BUNDLES = ["com.a", "COM.B"]
CATS = ["IAB3", "IAB3-1", "iab12", "IAB12-2"]
SEATS = ["s1", "S2"]
ADVERTISERS = ["brand.com", "Other.com"]


def some(pool: list[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(pool), max_size=2, unique=True)


def seldom(pool: list[Any]) -> st.SearchStrategy[list[Any]]:
    """A targeting list, mostly empty: with nine of them, campaigns must still match requests often."""
    return st.sampled_from([[], [], [], [], [], []]) | some(pool)


@st.composite
def a_campaign(draw: st.DrawFn, i: int) -> dict[str, Any]:
    return {
        "id": f"c{i}", "advertiser": draw(st.sampled_from(ADVERTISERS)), "seat": draw(st.sampled_from(["", *SEATS])),
        "bundle": draw(st.sampled_from(["", *BUNDLES])),
        "budget": {"total": 100.0},
        "bid": {"max_cpm": 5.0, "value_per_conversion": 10.0, "conversion_rate": 0.001},
        "targeting": {
            "countries": draw(seldom(COUNTRIES)), "regions": draw(seldom(REGIONS)),
            "device_types": draw(seldom([1, 2, 4])), "os": draw(seldom(OS)), "domains": draw(seldom(DOMAINS)),
            "blocked_domains": draw(seldom(DOMAINS)), "bundles": draw(seldom(BUNDLES)),
            "categories": draw(seldom(CATS)), "hours": draw(seldom(list(range(0, 24, 3)))),
        },
        "creatives": [{"id": f"cr{k}", "w": 300, "h": 250, "adm": "x", "cat": draw(some(CATS)), "attr": []}
                      for k in range(draw(st.integers(1, 2)))],
    }


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def optional(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


text = st.sampled_from(["", "x"]) | st.text(max_size=6)
inventory = st.fixed_dictionaries({}, optional={
    "domain": maybe(st.sampled_from(DOMAINS) | text), "bundle": maybe(st.sampled_from(BUNDLES) | text),
    "cat": maybe(some(CATS)), "sectioncat": maybe(some(CATS)), "pagecat": maybe(some(CATS)),
    "publisher": maybe(st.fixed_dictionaries({}, optional={"id": maybe(text),
                                                           "domain": maybe(st.sampled_from(DOMAINS) | text)})),
})
offsets = st.integers(-900, 900) | st.integers(-(2**63), 2**63 - 1)
geo = st.fixed_dictionaries({}, optional={
    "country": maybe(st.sampled_from(COUNTRIES) | text), "region": maybe(st.sampled_from(REGIONS) | text),
    "utcoffset": maybe(offsets),
})
user = st.fixed_dictionaries({}, optional={
    "id": maybe(text), "buyeruid": maybe(text), "geo": maybe(geo), "consent": maybe(text),
    "eids": maybe(st.lists(st.fixed_dictionaries({"source": text, "uids": st.lists(
        st.fixed_dictionaries({"id": text}), max_size=2)}), max_size=2)),
    "ext": maybe(st.fixed_dictionaries({}, optional={"consent": text})),
})
request = st.fixed_dictionaries({"id": st.just("r"), "imp": st.just([{"id": "1"}])}, optional={
    "site": inventory, "app": inventory,
    "device": st.fixed_dictionaries({}, optional={
        "devicetype": maybe(st.sampled_from([0, 1, 2, 4, 7, 2**40])), "os": maybe(st.sampled_from(OS) | text),
        "geo": maybe(geo)}),
    "user": user,
    "regs": st.fixed_dictionaries({}, optional={"gdpr": maybe(st.integers(0, 1)), "us_privacy": maybe(
        st.sampled_from(["1YNN", "1YYN", "1---"])), "ext": st.fixed_dictionaries({}, optional={
            "gdpr": st.integers(0, 1)})}),
    "bcat": some(CATS + ["iab3-1"]), "badv": some(ADVERTISERS + ["BRAND.COM"]), "bapp": some(BUNDLES + ["Com.A"]),
    "wseat": some(SEATS + ["rtb"]), "bseat": some(SEATS + ["rtb"]),
})
# Wall clock times, and the far ones that take CPython's float floor division instead of integers.
times = st.floats(1.6e9, 2.2e9) | st.floats(-1e17, 1e17) | st.sampled_from([0.0, -0.5, 2.0**52, -(2.0**52) - 1.5])


def answers(idx: Index, mask: RequestMask, req: BidRequest, now: float, live: int) -> tuple[object, object, object]:
    """The C mask's answer, its answer again (from the memos), and the twin's."""
    return mask.of(req, now, live), mask.of(req, now, live), request_mask_py(idx, req, now, live)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])  # a loaded machine is slow
@given(cs=st.lists(st.integers(0, 10**6), min_size=1, max_size=6).flatmap(
    lambda seeds: st.tuples(*(a_campaign(i) for i in range(len(seeds))))),
       r=request, now=times, keep=st.integers(min_value=0))
def test_the_c_mask_is_its_python_twins(cs: tuple[dict[str, Any], ...], r: dict[str, Any], now: float,
                                         keep: int) -> None:
    idx = Index(parse_campaigns(json.dumps({"campaigns": list(cs)}).encode()), "rtb")
    mask = RequestMask(idx, tables(idx), Context, privacy)
    req = msgspec.json.decode(json.dumps(r), type=BidRequest)
    for live in (idx.live, idx.live & keep):
        got, again, want = answers(idx, mask, req, now, live)
        assert got == again == want


def test_the_example_campaigns_on_every_iab_request() -> None:
    idx = Index(parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()), "rtb")
    mask = RequestMask(idx, tables(idx), Context, privacy)
    for path in sorted(IAB.glob("*request*.json")):
        req = msgspec.json.decode(path.read_bytes(), type=BidRequest)
        got, again, want = answers(idx, mask, req, 1_795_012_200.0, idx.live)
        assert got == again == want


def test_wider_than_the_stack_buffer() -> None:
    """More than 16,384 lines: the buffers come from the heap."""
    camps = [{"id": f"c{i}", "advertiser": "a.com", "budget": {"total": 1.0}, "bid": {"max_cpm": 1.0},
              "targeting": {"countries": ["USA"] if i % 3 else []},
              "creatives": [{"id": "x", "w": 300, "h": 250, "adm": "x"}] * 1} for i in range(17_000)]
    idx = Index(parse_campaigns(json.dumps({"campaigns": camps}).encode()), "rtb")
    mask = RequestMask(idx, tables(idx), Context, privacy)
    for country in ("USA", "GBR"):
        req = msgspec.json.decode(json.dumps({"id": "r", "imp": [{"id": "1"}], "device": {"geo": {
            "country": country}}}), type=BidRequest)
        m, _ = mask.of(req, 0.0, idx.live)
        assert m == request_mask_py(idx, req, 0.0, idx.live)[0]
        assert bin(m).count("1") == (17_000 if country == "USA" else 5_667)


def test_refusals_say_what_was_wrong() -> None:
    idx = Index(parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()), "rtb")
    t = tables(idx)
    with pytest.raises(ValueError, match="never initialised"):
        RequestMask.__new__(RequestMask).of(None, 0.0, 0)
    with pytest.raises(ValueError, match="tables must have 13 fields"):
        RequestMask(idx, t[:5], Context, privacy)
    with pytest.raises(ValueError, match="not a row number"):
        RequestMask(idx, t._replace(no_inventory=10**6), Context, privacy)
    with pytest.raises(ValueError, match="seat holds"):
        RequestMask(idx, t._replace(seat={"x": -1}), Context, privacy)
    with pytest.raises(ValueError, match="whole rows"):
        RequestMask(idx, t._replace(words=t.words + b"\0"), Context, privacy)
    mask = RequestMask(idx, t, Context, privacy)
    with pytest.raises(TypeError, match="already initialised"):
        mask.__init__(idx, t, Context, privacy)  # type: ignore[misc]
    req = msgspec.json.decode(b'{"id":"r","imp":[{"id":"1"}]}', type=BidRequest)
    with pytest.raises(TypeError, match="live must be an int"):
        mask.of(req, 0.0, "all")
    with pytest.raises(OverflowError):
        mask.of(req, 0.0, 1 << (64 * t.nwords))  # a bit past the last line
