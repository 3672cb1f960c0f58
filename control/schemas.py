"""Request and response bodies of the campaign API; the OpenAPI document is generated from these.

Money here is USD decimals (the API's edge); the planner turns it into the bidder's campaign file,
which is USD too, and the bidder into micros.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from bidder.campaign import Campaign as BidderCampaign
from bidder.campaign import Platform
from control import reports

CampaignStatus = Literal["draft", "active", "paused", "failed", "archived"]
OptimizationMode = Literal["standard", "aggressive"]
Usd = Annotated[float, Meta(gt=0, le=1e9, description="US dollars")]
Text = Annotated[str, Meta(min_length=1, max_length=500)]
Country = Annotated[str, Meta(pattern="^[A-Z]{3}$", description="ISO 3166-1 alpha-3, as in OpenRTB")]
_STRICT = {"forbid_unknown_fields": True}


class Product(msgspec.Struct, **_STRICT):
    name: Text
    url: Annotated[str, Meta(max_length=2000)] = ""
    price: Annotated[float, Meta(ge=0, le=1e9)] = 0.0
    description: Annotated[str, Meta(max_length=1000)] = ""


class Audience(msgspec.Struct, **_STRICT):
    countries: list[Country] = []
    device_types: list[Annotated[int, Meta(ge=1, le=7)]] = []
    age_min: Annotated[int, Meta(ge=13, le=100)] | None = None
    age_max: Annotated[int, Meta(ge=13, le=100)] | None = None
    interests: list[Annotated[str, Meta(max_length=100)]] = []
    hours: list[Annotated[int, Meta(ge=0, le=23)]] = []


class CampaignCreate(msgspec.Struct, **_STRICT):
    business_goal: Annotated[Text, Meta(description="free text, e.g. 'increase online sales'")]
    monthly_budget: Usd
    name: Annotated[str, Meta(max_length=200)] = ""
    target_audience: Audience = msgspec.field(default_factory=Audience)
    products: list[Product] = []
    platforms: Annotated[list[Platform], Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["openrtb"]
    )
    optimization_mode: OptimizationMode = "standard"
    target_cpa: Usd | None = None
    target_roas: Annotated[float, Meta(gt=0, le=1000)] | None = None
    advertiser_domain: Annotated[str, Meta(max_length=253)] = ""


class CampaignPatch(msgspec.Struct, **_STRICT):
    monthly_budget: Usd | None = None
    status: Literal["active", "paused"] | None = None
    target_audience: Audience | None = None
    name: Annotated[str, Meta(max_length=200)] | None = None


# --- the plan: Campaign / Ad set / Ad per platform --------------------------------------------------


class Ad(msgspec.Struct):
    id: str
    format: Literal["banner", "video", "native"]
    w: int
    h: int
    headline: str
    body: str
    call_to_action: str
    landing_url: str
    status: Literal["active", "paused"] = "active"


class BidPlan(msgspec.Struct):
    max_cpm: float
    target_roas: float
    value_per_conversion: float
    conversion_rate: float


class AdSet(msgspec.Struct):
    id: str  # also the bidder campaign id, so bidder events map back to the ad set
    name: str
    monthly_budget: float
    daily_budget: float
    audience: Audience
    bid: BidPlan
    ads: list[Ad]
    status: Literal["active", "paused"] = "active"


class PlatformPlan(msgspec.Struct):
    platform: Platform
    objective: str
    monthly_budget: float
    ad_sets: list[AdSet]


class Plan(msgspec.Struct):
    objective: str
    advertiser: str
    platforms: list[PlatformPlan]
    copy_source: str


class Campaign(msgspec.Struct):
    campaign_id: str
    status: CampaignStatus
    created_at: float
    updated_at: float
    request: CampaignCreate
    reason: str = ""
    plan: Plan | None = None


class CampaignList(msgspec.Struct):
    campaigns: list[Campaign]
    next_cursor: str | None = None


class BidderSnapshot(msgspec.Struct):
    version: int
    campaigns: list[BidderCampaign]


# --- events, optimisation, experiments, rules, webhooks, facade ----------------------------------------

Id = Annotated[str, Meta(min_length=1, max_length=200)]


class ConversionIn(msgspec.Struct, **_STRICT):
    campaign_id: Id
    value: Annotated[float, Meta(ge=0, le=1e9, description="revenue in USD")] = 0.0
    event: Literal["conversion", "click"] = "conversion"
    ad_set_id: Annotated[str, Meta(max_length=200)] = ""
    creative_id: Annotated[str, Meta(max_length=200)] = ""
    user_id: Annotated[str, Meta(max_length=200)] = ""
    request_id: Annotated[str, Meta(max_length=200)] = ""
    ts: Annotated[float, Meta(ge=0, le=1e11, description="unix seconds; default now")] | None = None


class BidResultIn(msgspec.Struct, **_STRICT):
    request_id: Id
    status: Literal["won", "lost"]
    win_price: Annotated[float, Meta(ge=0, le=1e6, description="clearing price, USD CPM")] = 0.0
    campaign_id: Annotated[str, Meta(max_length=200)] = ""


class Recorded(msgspec.Struct):
    status: str = "recorded"
    id: str = ""


class OptimizeIn(msgspec.Struct, **_STRICT):
    optimization_type: Literal["suggest", "auto"] = "suggest"


class OptimizeAction(msgspec.Struct):
    type: Literal["pause_variant", "shift_budget", "adjust_bid"]
    target: str
    reason: str
    expected_effect: str
    change_pct: float | None = None
    applied: bool = False


class OptimizeOut(msgspec.Struct):
    campaign_id: str
    optimization_type: str
    actions: list[OptimizeAction]
    message: str


class PortfolioIn(msgspec.Struct, **_STRICT):
    total_budget: Annotated[float, Meta(ge=0, le=1e9, description="USD per month")]
    max_step: Annotated[float, Meta(ge=0, le=1)] = 0.2
    dry_run: bool = False


class AllocationOut(msgspec.Struct):
    campaign_id: str
    before: float
    after: float
    change_pct: float | None
    score: float


class PortfolioOut(msgspec.Struct):
    total_budget: float
    allocations: list[AllocationOut]
    applied: bool
    message: str


class VariantIn(msgspec.Struct, **_STRICT):
    id: Id
    weight: Annotated[float, Meta(gt=0, le=1e6)] = 1.0
    creative_id: Annotated[str, Meta(max_length=200)] | None = None
    settings: dict[str, str | float | bool] = {}


class AbTestIn(msgspec.Struct, **_STRICT):
    variants: Annotated[list[VariantIn], Meta(min_length=2, max_length=20)]
    name: Annotated[str, Meta(max_length=200)] = ""
    campaign_id: Annotated[str, Meta(max_length=200)] = ""
    alpha: Annotated[float, Meta(gt=0, lt=1)] = 0.05
    min_sample: Annotated[int, Meta(ge=1, le=10**9)] = 1000


class AbTest(msgspec.Struct):
    test_id: str
    name: str
    campaign_id: str
    variants: list[VariantIn]
    alpha: float
    min_sample: int
    created_at: float
    concluded: bool = False
    winner: str | None = None


class Assignment(msgspec.Struct):
    test_id: str
    unit_id: str
    variant_id: str


class RuleIn(msgspec.Struct, **_STRICT):
    metric: Literal["roas", "cpa", "spend", "ctr", "win_rate"]
    operator: Literal[">", ">=", "<", "<=", "=="]
    threshold: Annotated[float, Meta(ge=-1e12, le=1e12)]
    window: Annotated[str, Meta(max_length=20, description="e.g. '1h', '24h', '7d'")]
    action: Literal["pause", "notify", "adjust_budget", "adjust_bid"]
    percent: Annotated[float, Meta(ge=-1e6, le=1e6)] | None = None
    campaign_id: Annotated[str, Meta(max_length=200)] | None = None
    every: Annotated[str, Meta(max_length=20)] = "5m"
    cooldown: Annotated[str, Meta(max_length=20)] | None = None
    enabled: bool = True


class RuleOut(msgspec.Struct):
    rule_id: str
    rule: RuleIn
    created_at: float
    firings: int = 0


class RuleList(msgspec.Struct):
    rules: list[RuleOut]


class WebhookIn(msgspec.Struct, **_STRICT):
    url: Annotated[str, Meta(min_length=8, max_length=2000, pattern="^https?://")]
    events: Annotated[list[str], Meta(min_length=1)]


class WebhookOut(msgspec.Struct):
    webhook_id: str
    url: str
    events: list[str]
    active: bool
    secret: str | None = None  # shown once, when created


class WebhookList(msgspec.Struct):
    webhooks: list[WebhookOut]


class ErasureOut(msgspec.Struct):
    user_id: str
    erased: dict[str, int]
    audit_id: int


class ExecuteIn(msgspec.Struct, **_STRICT):
    action: Literal["create_campaign", "optimize_budget", "manage_campaign", "create_ab_test",
                    "analyze_ab_test", "create_rule", "get_campaign_status"]
    parameters: dict[str, msgspec.Raw] = {}
    context: dict[str, str | int | float | bool | None] = {}


class ExecuteOut(msgspec.Struct):
    action: str
    result: msgspec.Raw
    status: str = "success"
    context: dict[str, str | int | float | bool | None] = {}


class Performance(reports.Metrics, frozen=True, kw_only=True):
    campaign_id: str
    status: str
    start_date: dt.date
    end_date: dt.date
    by_day: list[reports.DayMetrics]
    by_ad_set: list[reports.AdSetMetrics]
