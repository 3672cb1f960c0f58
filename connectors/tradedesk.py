"""The Trade Desk: our decision as an OpenRTB 2.5 bid response, built from the bidder's OpenRTB types.

The bid carries ``nurl`` / ``burl`` / ``lurl`` notice URLs (with the ``${AUCTION_PRICE}`` and
``${AUCTION_LOSS}`` macros the exchange fills in), ``adomain`` for the exchange's brand-safety checks (so
it is required), and the LTV signal in ``bid.ext``. Price is the CPM: ``max_cpc_micros`` if set, else
``bid_micros``. It is posted with the partner's ``TTD-Auth`` key to the partner's bid endpoint, which
answers 2xx, optionally ``{"status": "accepted" | "rejected", "reason": ...}``.
"""

from __future__ import annotations

from urllib.parse import quote

from bidder.openrtb import Bid, BidResponse, SeatBid

from .errors import BadDecision, PlatformError, Throttled
from .model import BidDecision
from .translate import Usage, json_object
from .transport import PlatformRequest, PlatformResponse

PLATFORM = "tradedesk"
BASE_URL = "https://api.thetradedesk.com"
BID_PATH = "/v3/openrtb/bids"
THROTTLE_RETRY_DEFAULT_S = 60.0


class TradeDesk:
    platform = PLATFORM

    def __init__(self, partner_id: str, api_key: str, notice_url: str = "http://127.0.0.1:8080") -> None:
        self.partner_id = partner_id
        self.notice_url = notice_url.rstrip("/")
        self.headers = {"ttd-auth": api_key, "x-openrtb-version": "2.5"}

    def ping(self) -> PlatformRequest:
        return PlatformRequest("GET", f"/v3/partner/{quote(self.partner_id)}", self.headers)

    def bid_response(self, decision: BidDecision) -> BidResponse:
        a = decision.auction
        if a is None or not a.adomain:
            raise BadDecision(PLATFORM, "an OpenRTB bid needs the auction (request and imp ids) and adomain")
        if decision.cap_micros <= 0:
            raise BadDecision(PLATFORM, f"price must be > 0, got {decision.cap_micros} micros")
        notice = f"{self.notice_url}/notice/{{}}?bid={quote(decision.bid_id)}&imp={quote(a.imp_id)}"
        bid = Bid(
            id=decision.bid_id,
            impid=a.imp_id,
            price=decision.cap_micros / 1e6,
            adm=a.adm or None,
            nurl=notice.format("win") + "&price=${AUCTION_PRICE}",
            burl=notice.format("bill") + "&price=${AUCTION_PRICE}",
            lurl=notice.format("loss") + "&reason=${AUCTION_LOSS}",
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
