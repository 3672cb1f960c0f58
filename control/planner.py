"""From a business goal, a budget and an audience to the bidder's campaigns.

``build_plan`` is pure: one Campaign / Ad set / Ad hierarchy per platform, the budget split by
platform and ad set, bid settings from the objective and targets, and ad copy from a
``CopyGenerator``. Each ad set becomes one bidder campaign (its id is the ad set id), so bidder
events come back per ad set. ``Planner`` runs plans in the background; ``drain()`` runs what is
pending to completion, which is how tests (and the run loop) drive it.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlparse

import msgspec

from bidder.campaign import BidSettings, Budget, CampaignError, Creative, Targeting, parse_campaigns
from bidder.campaign import Campaign as BidderCampaign
from control.schemas import Ad, AdSet, Audience, BidPlan, CampaignCreate, Plan, PlatformPlan

log = logging.getLogger("control.planner")


class PlanError(ValueError):
    """The request cannot be turned into bidder campaigns; the message is the campaign's failure reason."""


class CopyBrief(msgspec.Struct, frozen=True):
    objective: str
    business_goal: str
    product: str
    description: str
    platform: str
    interests: tuple[str, ...] = ()


class AdCopy(msgspec.Struct, frozen=True):
    headline: str
    body: str
    call_to_action: str


class CopyGenerator(Protocol):
    """Writes ``n`` distinct pieces of ad copy for a brief. An LLM client plugs in here."""

    name: str

    async def generate(self, brief: CopyBrief, n: int) -> list[AdCopy]: ...


_TEMPLATES: dict[str, list[tuple[str, str, str]]] = {
    "sales": [
        ("{product}: made for you", "{description}Order today and see the difference.", "Shop now"),
        ("Get {product} today", "{description}Fast delivery, easy returns.", "Buy now"),
        ("Why people choose {product}", "{description}Join thousands of happy customers.", "Learn more"),
    ],
    "leads": [
        ("Curious about {product}?", "{description}Tell us what you need; we reply within a day.",
         "Get a quote"),
        ("{product}, explained", "{description}Sign up for a free consultation.", "Sign up"),
        ("Talk to a {product} expert", "{description}No obligation, no spam.", "Contact us"),
    ],
    "app_installs": [
        ("{product} in your pocket", "{description}Free to install.", "Install"),
        ("Try {product} now", "{description}Set up in under a minute.", "Get the app"),
    ],
    "traffic": [
        ("Discover {product}", "{description}See what's new.", "Visit site"),
        ("{product}: take a look", "{description}Everything in one place.", "Learn more"),
    ],
    "awareness": [
        ("Meet {product}", "{description}", "Learn more"),
        ("{product} is here", "{description}Made with care.", "Discover"),
    ],
}


class TemplateCopy:
    """Deterministic copy from per-objective templates; the fallback for any other generator."""

    name = "template"

    async def generate(self, brief: CopyBrief, n: int) -> list[AdCopy]:
        templates = _TEMPLATES.get(brief.objective, _TEMPLATES["awareness"])
        description = brief.description.strip()
        if description and description[-1] not in ".!?":
            description += "."
        fill = {"product": brief.product, "description": f"{description} " if description else ""}
        return [
            AdCopy(h.format(**fill)[:90], b.format(**fill).strip()[:300], cta)
            for h, b, cta in (templates[i % len(templates)] for i in range(n))
        ]


class FallbackCopy:
    """Ask ``primary``; when it fails or answers short, the template generator writes the copy."""

    def __init__(self, primary: CopyGenerator, fallback: CopyGenerator | None = None) -> None:
        self.primary = primary
        self.fallback = fallback or TemplateCopy()
        self.name = primary.name
        self.last_source = primary.name

    async def generate(self, brief: CopyBrief, n: int) -> list[AdCopy]:
        try:
            copies = await self.primary.generate(brief, n)
            if len(copies) >= n and all(c.headline and c.call_to_action for c in copies):
                self.last_source = self.primary.name
                return copies[:n]
            log.warning("copy generator %s answered %d of %d ads; using templates", self.primary.name,
                        len(copies), n)
        except Exception:
            log.exception("copy generator %s failed; using templates", self.primary.name)
        self.last_source = self.fallback.name
        return await self.fallback.generate(brief, n)


# --- planning ---------------------------------------------------------------------------------------

_OBJECTIVE_WORDS = [
    ("app_installs", ("install", "app download", "mobile app")),
    ("leads", ("lead", "sign up", "signup", "register", "subscri", "quote", "demo")),
    ("sales", ("sale", "sell", "purchase", "revenue", "roas", "order", "shop", "ecommerce", "conversion")),
    ("traffic", ("traffic", "visit", "click")),
    ("awareness", ("awareness", "brand", "reach", "launch")),
]
# Base CPM (USD) and prior conversion rate per impression, per objective.
_BID_BASE = {
    "sales": (5.0, 0.0005), "leads": (4.0, 0.001), "app_installs": (4.0, 0.001),
    "traffic": (3.0, 0.002), "awareness": (2.0, 0.0002),
}
_DEFAULT_VALUE = {"sales": 50.0, "leads": 20.0, "app_installs": 5.0, "traffic": 1.0, "awareness": 1.0}
# How much of the budget each platform draws, relative to the others, per objective.
_PLATFORM_WEIGHT = {
    "sales": {"google_ads": 1.5, "amazon": 1.5, "meta": 1.3},
    "leads": {"linkedin": 1.5, "google_ads": 1.3, "meta": 1.2},
    "app_installs": {"tiktok": 1.5, "meta": 1.3},
    "traffic": {"google_ads": 1.3},
    "awareness": {"tiktok": 1.4, "meta": 1.3, "x": 1.1},
}
_WIDE = {"openrtb", "tradedesk", "google_ads"}  # platforms selling display inventory incl. leaderboards


def objective_of(goal: str, has_products: bool) -> str:
    text = goal.lower()
    for objective, words in _OBJECTIVE_WORDS:
        if any(w in text for w in words):
            return objective
    return "sales" if has_products else "traffic"


def advertiser_of(spec: CampaignCreate) -> str:
    domain = spec.advertiser_domain.strip().lower()
    if not domain:
        for p in spec.products:
            host = urlparse(p.url if "://" in p.url else f"https://{p.url}").hostname or ""
            if "." in host:
                domain = host.removeprefix("www.")
                break
    if "." not in domain:
        raise PlanError(
            "no advertiser domain: set advertiser_domain (e.g. 'brand.com') or give a product url"
        )
    return domain


def _usd(x: float) -> float:
    return round(x, 6)


def _split(total: float, weights: list[float]) -> list[float]:
    s = sum(weights)
    return [_usd(total * w / s) for w in weights]


async def build_plan(campaign_id: str, spec: CampaignCreate, copy: CopyGenerator) -> Plan:
    objective = objective_of(spec.business_goal, bool(spec.products))
    advertiser = advertiser_of(spec)
    weights = [_PLATFORM_WEIGHT[objective].get(p, 1.0) for p in spec.platforms]
    platforms = list(dict.fromkeys(spec.platforms))
    budgets = _split(spec.monthly_budget, [weights[spec.platforms.index(p)] for p in platforms])

    base_cpm, rate = _BID_BASE[objective]
    if spec.optimization_mode == "aggressive":
        base_cpm *= 1.5
    prices = [p.price for p in spec.products if p.price > 0]
    value = spec.target_cpa or (sum(prices) / len(prices) if prices else _DEFAULT_VALUE[objective])
    bid = BidPlan(max_cpm=base_cpm, target_roas=spec.target_roas or 1.0, value_per_conversion=value,
                  conversion_rate=rate)

    aud = spec.target_audience
    segments: list[tuple[str, Audience, float]] = [("core", aud, 1.0)]
    broad = Audience(countries=aud.countries)
    if broad != aud:  # something to widen: a smaller prospecting ad set on the wider audience
        segments = [("core", aud, 0.7), ("broad", broad, 0.3)]

    products = spec.products[:3] or None
    plans: list[PlatformPlan] = []
    for platform, budget in zip(platforms, budgets, strict=True):
        sizes = [(300, 250), (728, 90)] if platform in _WIDE else [(300, 250), (320, 50)]
        ad_sets: list[AdSet] = []
        for seg, seg_audience, share in segments:
            ads: list[Ad] = []
            for pi, product in enumerate(products or [None]):
                brief = CopyBrief(
                    objective=objective, business_goal=spec.business_goal,
                    product=product.name if product else (spec.name or advertiser),
                    description=product.description if product else "",
                    platform=platform, interests=tuple(seg_audience.interests),
                )
                copies = await copy.generate(brief, len(sizes))
                landing = (product.url if product and product.url else f"https://{advertiser}/")
                for (w, h), c in zip(sizes, copies, strict=False):
                    ads.append(Ad(f"p{pi}-{w}x{h}", "banner", w, h, c.headline, c.body, c.call_to_action,
                                  landing))
            seg_budget = _usd(budget * share)
            ad_sets.append(AdSet(
                id=f"{campaign_id}.{platform}.{seg}", name=f"{spec.name or objective} / {platform} / {seg}",
                monthly_budget=seg_budget, daily_budget=_usd(seg_budget / 30), audience=seg_audience,
                bid=bid, ads=ads,
            ))
        plans.append(PlatformPlan(platform, objective, budget, ad_sets))
    source = copy.last_source if isinstance(copy, FallbackCopy) else copy.name
    plan = Plan(objective=objective, advertiser=advertiser, platforms=plans, copy_source=source)
    to_bidder(plan, "active")  # fail here, with the bidder's own message, rather than in the bidder
    return plan


def _markup(ad: Ad) -> str:
    e = html.escape
    return (
        f'<a href="{e(ad.landing_url)}" target="_blank"><div class="rtb-ad" style="width:{ad.w}px;'
        f'height:{ad.h}px"><b>{e(ad.headline)}</b><p>{e(ad.body)}</p><span>{e(ad.call_to_action)}</span>'
        "</div></a>"
    )


def to_bidder(plan: Plan, status: str) -> list[BidderCampaign]:
    """The bidder campaigns of a plan, validated by the bidder's own parser.

    ``status`` is the control-plane campaign's; a paused campaign pauses all its ad sets.
    """
    out: list[dict[str, object]] = []
    for pp in plan.platforms:
        for s in pp.ad_sets:
            ads = [a for a in s.ads if a.status == "active"]
            paused = status != "active" or s.status != "active" or not ads
            out.append(msgspec.to_builtins(BidderCampaign(
                id=s.id, advertiser=plan.advertiser, platform=pp.platform,
                status="paused" if paused else "active",
                budget=Budget(total=s.monthly_budget, daily=s.daily_budget),
                bid=BidSettings(max_cpm=s.bid.max_cpm, target_roas=s.bid.target_roas,
                                value_per_conversion=s.bid.value_per_conversion,
                                conversion_rate=s.bid.conversion_rate),
                targeting=Targeting(countries=s.audience.countries, device_types=s.audience.device_types,
                                    hours=s.audience.hours),
                creatives=[Creative(id=a.id, format="banner", w=a.w, h=a.h, adm=_markup(a))
                           for a in (ads or s.ads)],
            )))
    try:
        return parse_campaigns(msgspec.json.encode({"campaigns": out}))
    except CampaignError as exc:
        raise PlanError(f"the plan does not make valid bidder campaigns: {exc}") from exc


# --- the background worker --------------------------------------------------------------------------

class PlanSink(Protocol):
    """Where planning results go (the campaign store)."""

    def pending_drafts(self) -> list[str]: ...
    def spec_of(self, campaign_id: str) -> CampaignCreate | None: ...
    def planned(self, campaign_id: str, plan: Plan) -> None: ...
    def plan_failed(self, campaign_id: str, reason: str) -> None: ...


class Planner:
    def __init__(self, sink: PlanSink, copy: CopyGenerator | None = None,
                 on_done: Callable[[str], None] | None = None) -> None:
        self.sink = sink
        self.copy: CopyGenerator = copy if copy is not None else TemplateCopy()
        self.on_done = on_done
        self._pending: list[str] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def submit(self, campaign_id: str) -> None:
        self._pending.append(campaign_id)
        self._wake.set()

    def resume(self) -> None:
        """After a restart: drafts that were accepted but never planned are planned now."""
        for cid in self.sink.pending_drafts():
            if cid not in self._pending:
                self.submit(cid)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def drain(self) -> None:
        async with self._lock:
            while self._pending:
                cid = self._pending.pop(0)
                await self._plan_one(cid)

    async def _plan_one(self, campaign_id: str) -> None:
        spec = self.sink.spec_of(campaign_id)
        if spec is None:  # deleted or already planned meanwhile
            return
        try:
            plan = await build_plan(campaign_id, spec, self.copy)
        except PlanError as exc:
            self.sink.plan_failed(campaign_id, str(exc))
        except Exception as exc:  # a bug must fail one campaign, not the worker
            log.exception("planning %s failed", campaign_id)
            self.sink.plan_failed(campaign_id, f"internal planner error: {type(exc).__name__}: {exc}")
        else:
            self.sink.planned(campaign_id, plan)
        if self.on_done:
            self.on_done(campaign_id)

    async def run(self) -> None:
        self._wake = asyncio.Event()  # bound to this run's event loop
        while True:
            await self.drain()
            await self._wake.wait()
            self._wake.clear()
