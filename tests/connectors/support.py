"""Helpers shared by the connector tests."""

from __future__ import annotations

from typing import Any

from connectors import Auction, BidDecision, Connector, new_connector, usd
from connectors.base import ConnectorEvent
from connectors.fake import FakePlatform
from shield import FakeClock

CREDENTIALS: dict[str, dict[str, str]] = {
    "google_ads": {"api_key": "dev-token", "customer_id": "123-456-7890", "access_token": "ya29.token"},
    "meta": {"access_token": "EAAB-token", "business_id": "1122334455"},
    "tradedesk": {"api_key": "ttd-key", "partner_id": "partner1"},
    "tiktok": {"access_token": "tt-token", "advertiser_id": "7000000001"},
}
PLATFORMS = tuple(CREDENTIALS)


def decision(bid: float, ltv: float | None = None, campaign: str = "c1", **kw: Any) -> BidDecision:
    """A decision in USD, valid for every platform (the auction is ignored where not needed)."""
    auction = Auction(request_id="req", imp_id="1", adomain=["brand.example"])
    ltv_usd = 2.5 * bid if ltv is None else ltv
    return BidDecision(customer_id="cust", campaign_id=campaign, ltv_micros=usd(ltv_usd), bid_micros=usd(bid),
                       auction=auction, **kw)


def smart(platform: str, clock: FakeClock, fake: FakePlatform | None = None, **config: Any) -> Connector:
    """A smart connector on a fake platform with test credentials and no environment."""
    fake = fake or FakePlatform(platform, clock)
    return new_connector(f"{platform}_smart", mock=True, clock=clock, client=fake.client(), env={},
                         **{**CREDENTIALS[platform], **config})


class Recorder:
    """An event sink that keeps everything (budget alerts, breaker changes, rate-limit warnings)."""

    def __init__(self) -> None:
        self.events: list[ConnectorEvent] = []

    def emit(self, event: ConnectorEvent) -> None:
        self.events.append(event)
