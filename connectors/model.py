"""What a connector takes (our decision) and gives back (what happened). Money in integer micros."""

from __future__ import annotations

from typing import Literal

import msgspec

Source = Literal["ai", "fallback"]


def usd(amount: float) -> int:
    """USD to micros, rounded to the nearest micro (binary floats like 0.29 are not exact)."""
    return round(amount * 1_000_000)


class Auction(msgspec.Struct, frozen=True):
    """The OpenRTB auction a Trade Desk bid answers; other platforms ignore it."""

    request_id: str
    imp_id: str
    adomain: list[str] = []
    crid: str = ""
    adm: str = ""
    w: int = 0
    h: int = 0


class BidDecision(msgspec.Struct, frozen=True):
    """The bidder's LTV-driven decision for one platform campaign.

    ``bid_micros`` is the amount this decision commits on the platform and the amount the shield books
    (Google: the campaign budget; Meta and TikTok: the daily budget; Trade Desk: the bid's cost).
    ``max_cpc_micros`` is the per-result cap (Google CPC ceiling, Meta bid cap, TikTok bid); 0 means
    "the same as ``bid_micros``". ``bid_id`` keys the budget reservation; empty means "make one up".
    ``budget_id`` names the platform's budget object where it is not the campaign itself (Google
    campaign budgets); empty means ``campaign_id``.
    """

    customer_id: str
    campaign_id: str
    ltv_micros: int
    bid_micros: int
    explanation: dict[str, object] = {}
    max_cpc_micros: int = 0
    bid_id: str = ""
    budget_id: str = ""
    auction: Auction | None = None

    @property
    def cap_micros(self) -> int:
        return self.max_cpc_micros or self.bid_micros


class BidResult(msgspec.Struct, frozen=True):
    """The outcome of ``place_bid``. ``placed`` is False only for fallback decisions, which are computed
    while the platform's breaker is open and therefore not sent (and not booked)."""

    platform: str
    customer_id: str
    campaign_id: str
    bid_id: str
    ltv_micros: int
    bid_micros: int
    explanation: dict[str, object]
    source: Source
    placed: bool
    platform_ref: str = ""  # what the platform calls the thing we changed (resource name, bid id, ...)
    latency_s: float = 0.0

    @property
    def bid_usd(self) -> float:
        return self.bid_micros / 1e6

    @property
    def ltv_usd(self) -> float:
        return self.ltv_micros / 1e6
