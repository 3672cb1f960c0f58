"""TikTok Marketing API (v1.3): an ad group's bid, then its budget.

Two calls, budget last (only it lets TikTok spend): ``/adgroup/update/`` with ``bid_price`` and
``/adgroup/budget/update/``, both JSON with ``advertiser_id`` and amounts in currency units. TikTok answers
HTTP 200 even for errors; ``code`` in the body says what happened (0 = OK, 40100 = too many requests).
"""

from __future__ import annotations

from .errors import BadDecision, PlatformError, Throttled
from .model import BidDecision
from .translate import Usage, cents, field, json_object
from .transport import PlatformRequest, PlatformResponse

PLATFORM = "tiktok"
BASE_URL = "https://business-api.tiktok.com"
PREFIX = "/open_api/v1.3"
THROTTLE_CODES = frozenset({40100})
THROTTLE_RETRY_S = 60.0  # TikTok names no delay; its limits are per minute


class TikTok:
    platform = PLATFORM

    def __init__(self, advertiser_id: str, access_token: str) -> None:
        self.advertiser_id = advertiser_id
        self.headers = {"access-token": access_token}

    def ping(self) -> PlatformRequest:
        return PlatformRequest("GET", f"{PREFIX}/advertiser/info/", self.headers,
                               params={"advertiser_ids": f'["{self.advertiser_id}"]'})

    def requests(self, decision: BidDecision) -> list[PlatformRequest]:
        bid, budget = cents(decision.cap_micros), cents(decision.bid_micros)
        if bid < 1 or budget < 1:
            raise BadDecision(PLATFORM, "bid_price and budget must be at least 0.01")
        group = decision.campaign_id
        return [
            PlatformRequest("POST", f"{PREFIX}/adgroup/update/", self.headers, json={
                "advertiser_id": self.advertiser_id, "adgroup_id": group, "bid_price": bid / 100,
            }),
            PlatformRequest("POST", f"{PREFIX}/adgroup/budget/update/", self.headers, json={
                "advertiser_id": self.advertiser_id,
                "budget": [{"adgroup_id": group, "budget": budget / 100}],
            }),
        ]

    def check(self, response: PlatformResponse) -> None:
        body = json_object(PLATFORM, response)
        code = field(PLATFORM, body, "code", int, response.status)
        if code == 0 and response.status < 400:
            return
        message = str(body.get("message", "no message"))
        if code in THROTTLE_CODES or response.status == 429:
            raise Throttled(PLATFORM, code, THROTTLE_RETRY_S, message)
        raise PlatformError(PLATFORM, code, message, response.status)

    def parse(self, response: PlatformResponse) -> str:
        self.check(response)
        body = json_object(PLATFORM, response)
        data = body.get("data")
        if isinstance(data, dict) and isinstance(data.get("adgroup_id"), str):
            return str(data["adgroup_id"])
        return str(field(PLATFORM, body, "request_id", str, response.status))

    def usage(self, response: PlatformResponse) -> Usage | None:
        return None
