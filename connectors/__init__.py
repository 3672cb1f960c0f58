"""Platform connectors: the bidder's LTV-driven decisions as Google Ads, Meta, TikTok and Trade Desk calls.

Each platform has a translator (``google_ads``, ``meta``, ``tiktok``, ``tradedesk``: builds the platform's
requests from a ``BidDecision`` and reads its answers, no I/O) behind one shared ``Connector`` (``base``)
that runs the shield's safety pipeline over a ``Transport`` (``transport``). ``new_connector`` (``factory``)
builds any of the eight kinds; ``fake`` holds fake platforms for mock mode and tests; ``stats`` the
counters and a Prometheus collector. The error tree is drawn in ``errors``.
"""

from .base import Connector, RateLimitWarning
from .errors import (
    BadDecision,
    BreakerOpen,
    BudgetVeto,
    ConfigError,
    ConnectorError,
    MalformedResponse,
    PlatformError,
    PlatformTimeout,
    RateLimited,
    Throttled,
)
from .factory import KINDS, new_connector
from .model import Auction, BidDecision, BidResult, usd
from .stats import ConnectorCollector

__all__ = [
    "KINDS",
    "Auction",
    "BadDecision",
    "BidDecision",
    "BidResult",
    "BreakerOpen",
    "BudgetVeto",
    "ConfigError",
    "Connector",
    "ConnectorCollector",
    "ConnectorError",
    "MalformedResponse",
    "PlatformError",
    "PlatformTimeout",
    "RateLimitWarning",
    "RateLimited",
    "Throttled",
    "new_connector",
    "usd",
]
