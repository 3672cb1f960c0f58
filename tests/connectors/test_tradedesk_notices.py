"""Trade Desk notice URLs are the bidder's signed ones: the bidder books them and refuses tampered ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from bidder.notices import Signer
from bidder.service import Bidder
from bidder.settings import from_env
from connectors import Auction, BadDecision, BidDecision, ConfigError, Connector, new_connector, usd
from connectors.fake import FakePlatform
from connectors.tradedesk import TradeDesk
from shield import FakeClock

from .support import decision

SECRET = "td-notice-secret-" + "x" * 32
PUBLIC_URL = "https://bid.example"
CREDENTIALS = {"TRADEDESK_API_KEY": "ttd-key", "TRADEDESK_PARTNER_ID": "partner1"}

pytestmark = pytest.mark.anyio


@pytest.fixture
def bidder(tmp_path: Path, clock: FakeClock) -> Iterator[Bidder]:
    b = Bidder(from_env({}, data_dir=str(tmp_path / "data"), notice_secret=SECRET, public_url=PUBLIC_URL),
               campaigns=[], clock=clock)
    yield b
    b.close()


def tradedesk(clock: FakeClock, fake: FakePlatform, env: dict[str, str], **config: Any) -> Connector:
    return new_connector("tradedesk", env={**CREDENTIALS, **env}, clock=clock, client=fake.client(), **config)


async def placed_bid(conn: Connector, fake: FakePlatform, d: BidDecision) -> dict[str, Any]:
    assert (await conn.place_bid(d)).placed
    bid: dict[str, Any] = json.loads(fake.requests[-1].content)["seatbid"][0]["bid"][0]
    return bid


def notice(bidder: Bidder, url: str) -> int:
    parts = urlsplit(url)
    status, _, _ = bidder.notice(parts.path.rsplit("/", 1)[1], parts.query)
    return status


def trade_desk_decision() -> BidDecision:
    auction = Auction(request_id="req-1", imp_id="imp 1", adomain=["shoes.example"], crid="cr/9")
    return BidDecision(customer_id="cust-9", campaign_id="cmp 7", ltv_micros=usd(41), bid_micros=usd(150),
                       max_cpc_micros=usd(4.5), bid_id="bid-1", auction=auction)


async def test_bidder_books_the_trade_desk_burl_and_refuses_a_tampered_one(
    clock: FakeClock, bidder: Bidder
) -> None:
    fake = FakePlatform("tradedesk", clock)
    async with tradedesk(clock, fake, {"RTB_NOTICE_SECRET": SECRET}, notice_url=PUBLIC_URL) as conn:
        bid = await placed_bid(conn, fake, trade_desk_decision())
    burl = bid["burl"].replace("${AUCTION_PRICE}", repr(bid["price"]))
    assert burl.startswith(f"{PUBLIC_URL}/notice/bill?")
    for tampered in (burl.replace("bp=4.5", "bp=45.0"), burl.replace("c=cmp%207", "c=cmp%208"),
                     burl.replace("&s=", "&s=A")):
        assert tampered != burl
        assert notice(bidder, tampered) == 400, tampered
    assert bidder.stats.notices[("bill", "bad_signature")] == 3
    assert notice(bidder, burl) == 200
    assert bidder.stats.notices[("bill", "ok")] == 1
    assert bidder.stats.campaigns["cmp 7"].spend == 4500  # $4.50 CPM is $0.0045 an impression


async def test_notice_urls_expire_bid_ttl_after_the_injected_wall_clock(clock: FakeClock) -> None:
    clock.advance(1234.5)
    fake = FakePlatform("tradedesk", clock)
    async with tradedesk(clock, fake, {"TRADEDESK_NOTICE_SECRET": SECRET, "TRADEDESK_BID_TTL": "90"}) as conn:
        bid = await placed_bid(conn, fake, decision(3, bid_id="b-1"))
    for kind, field in (("win", "nurl"), ("bill", "burl"), ("loss", "lurl")):
        read = Signer(SECRET.encode(), "").read(kind, urlsplit(bid[field]).query)
        assert read.expiry == int(clock.time()) + 90
        assert (read.bid_id, read.bid_price, read.currency, read.test) == ("b-1", 3.0, "USD", False)


async def test_trade_desk_notice_secret_wins_over_the_bidder_one(clock: FakeClock) -> None:
    fake = FakePlatform("tradedesk", clock)
    env = {"TRADEDESK_NOTICE_SECRET": SECRET, "RTB_NOTICE_SECRET": "the-bidders-own-secret"}
    async with tradedesk(clock, fake, env) as conn:
        bid = await placed_bid(conn, fake, decision(3))
    notice = Signer(SECRET.encode(), "").read("bill", urlsplit(bid["burl"]).query)  # raises NoticeError if not
    assert notice.bid_id == bid["id"]


def test_a_bid_id_that_is_not_url_safe_is_a_bad_decision() -> None:
    d = msgspec.structs.replace(decision(3), bid_id="a&b=c")
    with pytest.raises(BadDecision, match="bid_id 'a&b=c' must be URL-safe"):
        TradeDesk("s", "k", SECRET).requests(d)


def test_trade_desk_refuses_an_empty_notice_secret() -> None:
    with pytest.raises(ConfigError, match="notice_secret is empty"):
        TradeDesk("s", "k", "")

