"""Signed notice URLs: booking once, refusing tampering and bad prices, surviving restarts."""

from __future__ import annotations

import gc
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidder._native import Hmac
from bidder.notices import Signer, query_py, sig_py
from tests.bidder.conftest import campaign, campaigns, sample


def bid_once(bidder, body: bytes | None = None) -> dict:
    status, out = bidder.engine.bid(body or sample("request-1-simple-banner.json"))
    assert status == 200
    return json.loads(out)["seatbid"][0]["bid"][0]


def hit(bidder, url: str, **macros: str) -> int:
    for k, v in macros.items():
        url = url.replace("${" + k + "}", v)
    parts = urlsplit(url)
    kind = parts.path.rsplit("/", 1)[-1]
    return bidder.notice(kind, parts.query)[0]


def test_billing_books_clearing_price_over_1000_once(make_bidder) -> None:
    b = make_bidder()
    bid = bid_once(b)
    assert hit(b, bid["burl"], AUCTION_PRICE="2.5") == 200
    assert hit(b, bid["burl"], AUCTION_PRICE="2.5") == 200  # duplicate: counted, not booked
    cs = b.stats.campaigns[bid["cid"]]
    assert cs.spend == 2500  # 2.5 CPM / 1000 = $0.0025 = 2500 micros
    assert cs.billed == 1
    assert b.stats.notices[("bill", "duplicate")] == 1
    assert json.loads(b.status()[2])["campaigns"][bid["cid"]]["spend"] == 0.0025


def test_win_and_loss_are_counted(make_bidder) -> None:
    b = make_bidder()
    bid = bid_once(b)
    assert hit(b, bid["nurl"], AUCTION_PRICE="1.0") == 200
    bid2 = bid_once(b)
    assert hit(b, bid2["lurl"], AUCTION_PRICE="", AUCTION_LOSS="102") == 200
    cs = b.stats.campaigns[bid["cid"]]
    assert (cs.wins, cs.losses, cs.spend) == (1, 1, 0)


def test_tampered_notice_is_rejected(make_bidder) -> None:
    b = make_bidder()
    bid = bid_once(b)
    forged = bid["burl"].replace("bp=", "bp=9")  # raise our own bid price to allow a bigger clearing price
    assert hit(b, forged, AUCTION_PRICE="50") == 400
    other = bid["burl"].replace(f"c={bid['cid']}", "c=another-campaign")
    assert hit(b, other, AUCTION_PRICE="1") == 400
    assert b.stats.notices[("bill", "bad_signature")] == 2
    assert b.stats.campaigns[bid["cid"]].spend == 0


def test_a_signature_that_is_not_ascii_is_a_bad_signature(make_bidder) -> None:
    # hmac.compare_digest refuses non-ASCII str with a TypeError: that must be a 400, not a 500.
    b = make_bidder()
    bid = bid_once(b)
    s = bid["burl"].split("&s=", 1)[1].split("&", 1)[0]
    assert hit(b, bid["burl"].replace(f"&s={s}", "&s=%C3%A9" + s[1:]), AUCTION_PRICE="1") == 400
    assert b.stats.notices[("bill", "bad_signature")] == 1
    assert b.stats.campaigns[bid["cid"]].billed == 0


def test_signature_from_another_secret_is_rejected(make_bidder) -> None:
    b = make_bidder()
    nurl = Signer(b"someone-else" * 4, "https://bid.example").urls("b1", "1", "c", "r", "1.0", "USD", 2**40, False)[1]
    assert hit(b, nurl, AUCTION_PRICE="0.5") == 400


def test_price_above_the_bid_is_rejected(make_bidder) -> None:
    b = make_bidder()
    bid = bid_once(b)
    assert hit(b, bid["burl"], AUCTION_PRICE=str(bid["price"] + 0.01)) == 400
    assert b.stats.notices[("bill", "above_bid")] == 1
    assert hit(b, bid["burl"], AUCTION_PRICE=str(bid["price"])) == 200


def test_non_numeric_prices_are_rejected_and_audit_books_nothing(make_bidder) -> None:
    b = make_bidder()
    bid = bid_once(b)
    assert hit(b, bid["burl"]) == 400  # ${AUCTION_PRICE} never substituted
    for bad in ("abc", "nan", "inf", "-1"):
        assert hit(b, bid["burl"], AUCTION_PRICE=bad) == 400
    assert hit(b, bid["burl"], AUCTION_PRICE="AUDIT") == 200
    cs = b.stats.campaigns[bid["cid"]]
    assert (cs.audits, cs.billed, cs.spend) == (1, 0, 0)
    assert b.stats.notices[("bill", "bad_price")] == 5


def test_late_billing_after_expiry_is_still_booked(make_bidder, wall) -> None:
    b = make_bidder()
    bid = bid_once(b)
    wall.t += b.settings.bid_ttl + 3600  # an hour after the bid expired
    assert hit(b, bid["burl"], AUCTION_PRICE="1.0") == 200
    assert b.stats.campaigns[bid["cid"]].spend == 1000


def test_each_bid_expires_bid_ttl_after_its_own_second(make_bidder, wall) -> None:
    b = make_bidder()
    expiries = []
    for step in (0.0, 0.4, 0.7, 5.0):  # within one second, then into later ones
        wall.t += step
        bid = bid_once(b)
        expiries.append(int(parse_qs(urlsplit(bid["burl"]).query)["x"][0]))
        assert expiries[-1] == int(wall.t) + b.settings.bid_ttl
    assert len(set(expiries)) > 1


def test_notice_older_than_retention_is_refused(make_bidder, wall) -> None:
    b = make_bidder()
    bid = bid_once(b)
    wall.t += b.settings.bid_ttl + b.settings.notice_retention + 1
    assert hit(b, bid["burl"], AUCTION_PRICE="1.0") == 410
    assert b.stats.campaigns[bid["cid"]].spend == 0


def test_test_traffic_is_counted_but_never_booked(make_bidder) -> None:
    b = make_bidder()
    r = json.loads(sample("request-1-simple-banner.json"))
    r["test"] = 1
    bid = bid_once(b, json.dumps(r).encode())
    assert hit(b, bid["burl"], AUCTION_PRICE="1.0") == 200
    cs = b.stats.campaigns[bid["cid"]]
    assert (cs.billed, cs.spend) == (1, 0)


def test_spend_and_duplicates_survive_a_restart(make_bidder) -> None:
    b = make_bidder()
    bid = bid_once(b)
    assert hit(b, bid["burl"], AUCTION_PRICE="2.0") == 200
    b.close()
    again = make_bidder()
    assert again.stats.campaigns[bid["cid"]].spend == 2000
    assert hit(again, bid["burl"], AUCTION_PRICE="2.0") == 200
    assert again.stats.campaigns[bid["cid"]].spend == 2000
    assert again.stats.notices[("bill", "duplicate")] == 1


def test_billing_exhausts_a_total_budget(make_bidder) -> None:
    b = make_bidder(campaigns(campaign(budget={"total": 0.004})))  # 4000 micros
    bid = bid_once(b)
    assert hit(b, bid["burl"], AUCTION_PRICE="2.4") == 200  # 2400 booked; next bid at 2.4 would pass 4000
    status, _ = b.engine.bid(sample("request-1-simple-banner.json"))
    assert status == 204


def test_win_notice_serves_markup_for_nurl_creatives(make_bidder) -> None:
    b = make_bidder()
    status, out = b.engine.bid(sample("request-5-pmp-direct-deal.json"))
    bid = json.loads(out)["seatbid"][0]["bid"][0]
    assert "adm" not in bid
    url = urlsplit(bid["nurl"].replace("${AUCTION_PRICE}", "3.0"))
    status, ctype, body = b.notice("win", url.query)
    assert status == 200 and body.startswith(b"<a href")


def test_events_feed_pages_through_notices(make_bidder) -> None:
    b = make_bidder()
    for _ in range(3):
        hit(b, bid_once(b)["burl"], AUCTION_PRICE="1.0")
    _, _, body = b.events("after=0&limit=2")
    page = json.loads(body)
    assert [e["seq"] for e in page["events"]] == [1, 2] and page["next"] == 2
    page2 = json.loads(b.events(f"after={page['next']}")[2])
    assert [e["kind"] for e in page2["events"]] == ["bill"] and page2["next"] == 3
    assert page2["events"][0]["cost"] == 1000


def test_signature_is_hmac_sha256_of_the_signed_fields() -> None:
    import base64
    import hmac

    for secret in (b"short", b"k" * 64, b"long" * 40):
        nurl = Signer(secret, "https://x").urls("b1", "imp 1", "c", "r", "2.5", "USD", 99, True)[0]
        fields = "\x1f".join(["b1", "imp 1", "c", "r", "2.5", "USD", "99", "1"]).encode()
        want = base64.urlsafe_b64encode(hmac.digest(secret, fields, "sha256")[:16]).rstrip(b"=").decode()
        assert f"&s={want}&" in nurl


@given(secret=st.binary(max_size=150), message=st.text())
def test_the_c_signature_is_its_python_twins(secret: bytes, message: str) -> None:
    # Keys shorter than, equal to and longer than SHA-256's 64-byte block (hashed first), any text.
    assert Signer(secret, "https://x").sig(message) == sig_py(secret, message)


@given(secret=st.binary(min_size=1, max_size=80), fields=st.lists(st.text(), min_size=9, max_size=9))
def test_the_c_query_is_its_python_twins(secret: bytes, fields: list[str]) -> None:
    # Long fields too: past the C code's stack buffer it takes one from the heap.
    fields[0] = fields[0] * 60 + "x" * 600
    assert Signer(secret, "https://x").query(*fields) == query_py(secret, *fields)


def test_the_c_signer_refuses_what_python_refuses() -> None:
    signer = Signer(b"k" * 32, "https://x")
    with pytest.raises(UnicodeEncodeError):
        signer.sig("lone \ud800 surrogate")
    with pytest.raises(UnicodeEncodeError):
        signer.query("b", "\ud800", "i", "c", "r", "1.0", "USD", "9", "0")
    with pytest.raises(TypeError, match="argument 6 must be str, not float"):
        signer.query("b", "1", "1", "c", "r", 1.0, "USD", "9", "0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="takes 9 arguments"):
        signer.query("b", "1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="must be str, not bytes"):
        signer.sig(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no key"):
        Hmac.__new__(Hmac).sig("x")


def test_booked_notices_add_nothing_for_the_garbage_collector_to_walk(make_bidder) -> None:
    # The bidder keeps the bid ids of its wins and bills for the whole retention, and its latest events:
    # if they were tracked, every full collection would walk them all, pausing bidding for longer and longer.
    b = make_bidder()
    bid = bid_once(b)
    assert hit(b, bid["nurl"], AUCTION_PRICE="1.0") == 200
    assert hit(b, bid["burl"], AUCTION_PRICE="1.0") == 200
    keys = (bid["id"], ("win", bid["id"]), ("bill", bid["id"]))
    assert not [o for o in gc.get_objects() if type(o) is dict and any(k in o for k in keys)]
    events = b.ledger.since(0, 10)
    assert [e.kind for e in events] == ["win", "bill"]
    assert not any(gc.is_tracked(e) for e in events)
