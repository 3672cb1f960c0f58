"""The Trade Desk: our decision as an OpenRTB 2.5 bid response, built from the bidder's OpenRTB types.

The bid carries ``nurl`` / ``burl`` / ``lurl`` notice URLs, ``adomain`` for the exchange's brand-safety
checks (so it is required), and the LTV signal in ``bid.ext``. The notice URLs are the bidder's own signed
ones (``bidder.notices.Signer``), so its ``/notice/*`` endpoints book them: signed with ``notice_secret``,
which must be the bidder's ``RTB_NOTICE_SECRET`` (there is no unsigned mode), expiring ``bid_ttl`` seconds
after the injected wall clock's now, with the ``${AUCTION_PRICE}`` / ``${AUCTION_LOSS}`` macros the
exchange fills in. Price is the CPM: ``max_cpc_micros`` if set, else
``bid_micros``. It is posted with the partner's ``TTD-Auth`` key to the partner's bid endpoint, which
answers 2xx, optionally ``{"status": "accepted" | "rejected", "reason": ...}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import quote

from bidder.notices import Signer, url_safe
from bidder.openrtb import Bid, BidResponse, SeatBid

from .errors import BadDecision, ConfigError, PlatformError, Throttled
from .model import BidDecision
from .translate import Usage, json_object
from .transport import PlatformRequest, PlatformResponse

PLATFORM = "tradedesk"
BASE_URL = "https://api.thetradedesk.com"
BID_PATH = "/v3/openrtb/bids"
THROTTLE_RETRY_DEFAULT_S = 60.0
DEFAULT_BID_TTL_S = 600


class TradeDesk:
    platform = PLATFORM

    def __init__(
        self, partner_id: str, api_key: str, notice_secret: str | bytes, notice_url: str = "http://127.0.0.1:8080",
        bid_ttl: int | str = DEFAULT_BID_TTL_S, wall: Callable[[], float] = time.time,
    ) -> None:
        if not notice_secret:
            raise ConfigError(PLATFORM, "notice_secret is empty: notice URLs must be signed with the bidder's "
                                        "RTB_NOTICE_SECRET")
        self.bid_ttl = int(bid_ttl) if str(bid_ttl).isdigit() else 0
        if self.bid_ttl <= 0:
            raise ConfigError(PLATFORM, f"bid_ttl must be a whole number of seconds > 0, got {bid_ttl!r}")
        self.partner_id = partner_id
        secret = notice_secret.encode() if isinstance(notice_secret, str) else notice_secret
        self.signer = Signer(secret, notice_url)
        self.wall = wall
        self.headers = {"ttd-auth": api_key, "x-openrtb-version": "2.5"}

    def ping(self) -> PlatformRequest:
        return PlatformRequest("GET", f"/v3/partner/{quote(self.partner_id)}", self.headers)

    def bid_response(self, decision: BidDecision) -> BidResponse:
        a = decision.auction
        if a is None or not a.adomain:
            raise BadDecision(PLATFORM, "an OpenRTB bid needs the auction (request and imp ids) and adomain")
        if decision.cap_micros <= 0:
            raise BadDecision(PLATFORM, f"price must be > 0, got {decision.cap_micros} micros")
        if url_safe(decision.bid_id) != decision.bid_id:
            # The signer puts the bid id in the URL as it is; the bidder's own ids are always URL-safe.
            raise BadDecision(PLATFORM, f"bid_id {decision.bid_id!r} must be URL-safe (letters, digits, . _ ~ -)")
        price = decision.cap_micros / 1e6
        # The bidder refuses a clearing price above the signed bid price, so sign exactly the bid's price.
        nurl, burl, lurl = self.signer.urls(decision.bid_id, a.imp_id, decision.campaign_id, a.crid, repr(price),
                                            "USD", int(self.wall()) + self.bid_ttl, False)
        bid = Bid(
            id=decision.bid_id,
            impid=a.imp_id,
            price=price,
            adm=a.adm or None,
            nurl=nurl,
            burl=burl,
            lurl=lurl,
            adomain=list(a.adomain),
            cid=decision.campaign_id,
            crid=a.crid or None,
            w=a.w or None,
            h=a.h or None,
            ext={"ltv": decision.ltv_micros / 1e6, "customer_id": decision.customer_id,
                 "explanation": decision.explanation},
        )
        return BidResponse(id=a.request_id, bidid=decision.bid_id, cur="USD",
                           seatbid=[SeatBid(bid=[bid], seat=self.partner_id)])

    def requests(self, decision: BidDecision) -> list[PlatformRequest]:
        return [PlatformRequest("POST", BID_PATH, self.headers, json=self.bid_response(decision))]

    def check(self, response: PlatformResponse) -> None:
        if response.status == 429:
            retry = response.headers.get("retry-after", "")
            delay = float(retry) if retry.replace(".", "", 1).isdigit() else THROTTLE_RETRY_DEFAULT_S
            raise Throttled(PLATFORM, 429, delay)
        if response.status >= 400:
            message = response.body[:200].decode("utf-8", "replace") or "no body"
            raise PlatformError(PLATFORM, response.status, message, response.status)

    def parse(self, response: PlatformResponse) -> str:
        self.check(response)
        if not response.body.strip():
            return ""
        body = json_object(PLATFORM, response)
        if body.get("status", "accepted") != "accepted":
            raise PlatformError(PLATFORM, str(body.get("reason") or body.get("status")),
                                "bid not accepted", response.status)
        return str(body.get("id", ""))

    def usage(self, response: PlatformResponse) -> Usage | None:
        return None
