"""The response writer in C (``bidder/_writer.c``) against its Python twin (``response.WriterPy``)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidder._native import Writer
from bidder.campaign import parse_campaigns
from bidder.index import Index
from bidder.notices import Signer, url_safe
from bidder.response import Parts, WriterPy, parts
from bidder.settings import EXAMPLE_CAMPAIGNS

SECRET = b"response-secret-" + b"x" * 32
SIGNER = Signer(SECRET, "https://bid.example")
_index = Index(parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()), "rtb")
# The example campaigns, and one whose ids, seat, notice base and model version all need escaping.
_odd = parse_campaigns(json.dumps({"campaigns": [{
    "id": 'c "1"/é\n', "advertiser": "brand.com", "seat": "seat\t\"β\"", "budget": {"total": 10.0},
    "bid": {"max_cpm": 5.0, "target_roas": 1.0, "value_per_conversion": 10.0, "conversion_rate": 0.001},
    "creatives": [{"id": "cr &1=", "format": "banner", "w": 300, "h": 250, "adm": "<a href=\"x\">\u2028</a>"}],
}]}).encode())
PARTS = {
    "examples": parts(_index, "rtb", "prior-1", "https://bid.example"),
    "odd": parts(Index(_odd, "rtb"), "rtb", 'v"1\\', 'https://bid.example/a b"/'),
}

ids = st.text(alphabet="0123456789abcdef", min_size=1, max_size=16)
any_float = st.floats(allow_nan=True, allow_infinity=True)
price = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, 0.001, 2.5, 2.537, 1234.567891])


@st.composite
def bid_args(draw: st.DrawFn, p: Parts) -> tuple[object, ...]:
    return (draw(ids), draw(st.text(max_size=40)), draw(st.integers(0, len(p.lines) - 1)), draw(price),
            draw(st.sampled_from(["USD", "EUR"])), str(draw(st.integers(0, 2**40))), draw(st.sampled_from("01")),
            draw(st.none() | st.text(max_size=20)), draw(st.integers(0, 10**12)), draw(any_float),
            draw(any_float), draw(st.sampled_from(["ai", "fallback"])))


@pytest.mark.parametrize("name", PARTS)
@given(data=st.data())
def test_a_c_bid_is_its_python_twins_and_its_notices_verify(name: str, data: st.DataObject) -> None:
    p = PARTS[name]
    args = data.draw(bid_args(p))
    got = Writer(SIGNER.hmac, *p).bid(*args)  # type: ignore[arg-type]
    assert got == WriterPy(SECRET, p).bid(*args)  # type: ignore[arg-type]

    bid = json.loads(got)
    bid_id, imp_id, _, bid_price, cur, expiry, test, deal = args[:8]
    assert (bid["id"], bid["impid"], bid["price"], bid.get("dealid")) == (bid_id, imp_id, bid_price, deal)
    for kind in ("nurl", "burl", "lurl"):
        query = urlsplit(bid[kind]).query
        assert query.isascii()  # a URI: anything else in an id is percent-encoded
        n = SIGNER.read(kind[0], query)
        assert (n.bid_id, n.imp_id, n.bid_price, n.currency, str(n.expiry), n.test) == (
            bid_id, imp_id, bid_price, cur, expiry, test == "1")


def test_long_fields_take_the_heap_buffer_and_are_written_whole() -> None:
    p = PARTS["examples"]
    args = ("ab12", "i" * 3000 + "\"é", 0, 2.5, "USD", "99", "0", "d" * 2000, 2_500_000, 0.01, 12.0, "ai")
    got = Writer(SIGNER.hmac, *p).bid(*args)
    assert got == WriterPy(SECRET, p).bid(*args)
    assert json.loads(got)["impid"] == args[1]


@pytest.mark.parametrize("name", PARTS)
@given(data=st.data())
def test_a_c_response_is_its_python_twins(name: str, data: st.DataObject) -> None:
    # Bids of campaigns sharing a seat go in one seatbid, seats and bids in the order they came; past
    # 16 bids and 4 KiB the C code takes its buffers from the heap.
    p = PARTS[name]
    bids = data.draw(st.lists(st.tuples(st.integers(0, len(p.seats) - 1), st.sampled_from(
        [b'{"id":"a"}', b'{"id":"b","x":"' + b"y" * 300 + b'"}'])), min_size=1, max_size=40))
    request_id, cur = data.draw(st.text()), data.draw(st.sampled_from(["USD", "EUR"]))
    got = Writer(SIGNER.hmac, *p).response(request_id, bids, cur)
    assert got == WriterPy(SECRET, p).response(request_id, bids, cur)
    doc = json.loads(got)
    assert (doc["id"], doc["cur"]) == (request_id, cur)
    assert sum(len(sb["bid"]) for sb in doc["seatbid"]) == len(bids)
    assert len({sb["seat"] for sb in doc["seatbid"]}) == len(doc["seatbid"])


def test_the_c_writer_refuses_what_python_refuses() -> None:
    w = Writer(SIGNER.hmac, *PARTS["examples"])
    ok = ("b1", "1", 0, 2.5, "USD", "99", "0", None, 1, 0.1, 1.0, "ai")

    def bid(**changes: object) -> bytes:
        names = ("bid_id", "imp_id", "line", "price", "cur", "expiry", "test", "deal", "value_micros", "p", "ltv",
                 "source")
        return w.bid(*(changes.get(k, v) for k, v in zip(names, ok, strict=True)))  # type: ignore[arg-type]

    assert json.loads(bid(price=3, p=1))["price"] == 3.0  # ints are numbers, as float() takes them
    with pytest.raises(UnicodeEncodeError):
        bid(imp_id="lone \ud800 surrogate")
    with pytest.raises(TypeError, match="bid: imp_id must be str, not int"):
        bid(imp_id=1)
    with pytest.raises(TypeError, match="bid: deal \\(or None\\) must be str, not bytes"):
        bid(deal=b"d")
    with pytest.raises(TypeError, match="bid: price must be a real number, not str"):
        bid(price="2.5")
    with pytest.raises(ValueError, match="price must be finite, got inf"):
        bid(price=float("inf"))
    with pytest.raises(ValueError, match="price must be finite"):
        WriterPy(SECRET, PARTS["examples"]).bid(*ok[:3], float("nan"), *ok[4:])  # type: ignore[arg-type]
    with pytest.raises(IndexError, match="bid: line 99999 is out of range"):
        bid(line=99_999)
    with pytest.raises(TypeError, match="bid: value_micros must be int, not float"):
        bid(value_micros=1.0)
    with pytest.raises(TypeError, match="takes 12 arguments"):
        w.bid("b1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="bids must be a non-empty list"):
        w.response("r", [], "USD")
    with pytest.raises(TypeError, match=r"bids\[0\] must be a \(campaign, bytes\) tuple"):
        w.response("r", [(0, "text")], "USD")  # type: ignore[list-item]
    with pytest.raises(IndexError, match="response: campaign -1 is out of range"):
        w.response("r", [(-1, b"{}")], "USD")
    with pytest.raises(TypeError, match=r"lines\[0\] must be a tuple of 3 bytes"):
        Writer(SIGNER.hmac, (("a", b"b", b"c"),), (), b"", b"", b"", b"")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"seats\[0\] must be bytes, not str"):
        Writer(SIGNER.hmac, (), ("rtb",), b"", b"", b"", b"")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not initialised"):
        Writer.__new__(Writer).bid(*ok)  # type: ignore[arg-type]


def test_ids_are_percent_encoded_as_ascii_in_notice_urls() -> None:
    # Before, an id of non-ASCII letters or digits ("é", "٣") went into the URL as it was: not a URI.
    assert [url_safe(v) for v in ("1", "imp-1.a_b~", "é", "٣", "a b")] == ["1", "imp-1.a_b~", "%C3%A9", "%D9%A3",
                                                                          "a%20b"]
