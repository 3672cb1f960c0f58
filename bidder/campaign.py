"""The campaign file: what an operator configures, validated on load.

A campaign file is a JSON object ``{"campaigns": [...]}`` (a bare list is accepted too). Money in the
file is in the account currency (USD) as decimal numbers; inside the bidder it becomes integer micros.
Every error names the campaign and the field, e.g. ``campaign 'c7': bid.max_cpm must be > 0``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import msgspec

PLATFORMS = ("openrtb", "tradedesk", "google_ads", "meta", "tiktok", "amazon", "x", "linkedin")
Platform = Literal["openrtb", "tradedesk", "google_ads", "meta", "tiktok", "amazon", "x", "linkedin"]
Status = Literal["active", "paused", "archived"]
Format = Literal["banner", "video", "audio", "native"]
Pacing = Literal["even", "asap"]


class CampaignError(ValueError):
    """A campaign file or campaign that cannot be used; the message says which and where."""


class Budget(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    total: float
    daily: float | None = None
    window: float | None = None  # cap per sliding 10 minutes, against bursts
    pacing: Pacing = "even"


class BidSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    max_cpm: float
    target_roas: float = 1.0
    value_per_conversion: float = 0.0
    # A single rate, or rates by context: keys are a format ("video"), an OpenRTB device type
    # ("4"), or both ("video/4"); "default" is the fallback. The most specific key wins.
    conversion_rate: float | dict[str, float] = 0.0


class Targeting(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    countries: list[str] = []
    regions: list[str] = []
    device_types: list[int] = []
    os: list[str] = []
    domains: list[str] = []
    blocked_domains: list[str] = []
    bundles: list[str] = []
    categories: list[str] = []
    deal_ids: list[str] = []
    hours: list[int] = []


class Creative(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: str
    format: Format = "banner"
    w: int = 0
    h: int = 0
    adm: str = ""
    cat: list[str] = []
    attr: list[int] = []
    mimes: list[str] = []
    duration: int = 0
    nurl_markup: bool = False  # serve the markup from the win notice instead of inline ``adm``


class Campaign(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: str
    advertiser: str
    budget: Budget
    bid: BidSettings
    creatives: list[Creative]
    platform: Platform = "openrtb"
    status: Status = "active"
    seat: str = ""
    bundle: str = ""  # the app this campaign advertises (app-install ads): bid.bundle, blocked by bapp
    targeting: Targeting = Targeting()


class _RawFile(msgspec.Struct, forbid_unknown_fields=True):
    campaigns: list[msgspec.Raw]


class _Named(msgspec.Struct):
    id: str = "?"


def _check(c: Campaign) -> None:
    def bad(field: str, why: str) -> CampaignError:
        return CampaignError(f"campaign {c.id!r}: {field} {why}")

    if not c.id:
        raise CampaignError("campaign with an empty id")
    if not c.advertiser or "." not in c.advertiser:
        raise bad("advertiser", "must be the advertiser's domain (used as adomain), e.g. 'brand.com'")
    for field, value in (("budget.total", c.budget.total), ("bid.max_cpm", c.bid.max_cpm)):
        if not (math.isfinite(value) and value > 0):
            raise bad(field, f"must be a finite number > 0, got {value!r}")
    for field, cap in (("budget.daily", c.budget.daily), ("budget.window", c.budget.window)):
        if cap is not None and not (math.isfinite(cap) and 0 < cap):
            raise bad(field, f"must be a finite number > 0, got {cap!r}")
    if not (math.isfinite(c.bid.target_roas) and c.bid.target_roas > 0):
        raise bad("bid.target_roas", f"must be > 0, got {c.bid.target_roas!r}")
    if not (math.isfinite(c.bid.value_per_conversion) and c.bid.value_per_conversion >= 0):
        raise bad("bid.value_per_conversion", f"must be >= 0, got {c.bid.value_per_conversion!r}")
    rates = c.bid.conversion_rate
    for key, rate in rates.items() if isinstance(rates, dict) else (("", rates),):
        where = f"bid.conversion_rate[{key!r}]" if key else "bid.conversion_rate"
        if not (math.isfinite(rate) and 0 <= rate <= 1):
            raise bad(where, f"must be a probability in [0, 1], got {rate!r}")
    for h in c.targeting.hours:
        if not 0 <= h <= 23:
            raise bad("targeting.hours", f"must hold hours 0-23, got {h}")
    if not c.creatives:
        raise bad("creatives", "must hold at least one creative")
    seen: set[str] = set()
    for i, cr in enumerate(c.creatives):
        where = f"creatives[{i}]"
        if not cr.id:
            raise bad(f"{where}.id", "must not be empty")
        if cr.id in seen:
            raise bad(f"{where}.id", f"repeats creative id {cr.id!r}")
        seen.add(cr.id)
        if cr.format == "banner" and (cr.w <= 0 or cr.h <= 0):
            raise bad(f"{where}.w/h", "a banner needs its size in pixels")
        if cr.format in ("video", "audio") and not cr.mimes:
            raise bad(f"{where}.mimes", f"a {cr.format} creative needs its MIME types")
        if not cr.adm and not cr.nurl_markup:
            raise bad(f"{where}.adm", "must hold the markup (or set nurl_markup)")


def _decode_one(i: int, raw: msgspec.Raw) -> Campaign:
    try:
        return msgspec.json.decode(raw, type=Campaign)
    except msgspec.ValidationError as exc:
        try:
            name = msgspec.json.decode(raw, type=_Named).id
        except msgspec.ValidationError:
            name = "?"
        # msgspec says ``at `$.bid.max_cpm` ``; the campaign's name makes it findable in a large file.
        raise CampaignError(f"campaign {name!r} (campaigns[{i}]): {exc}") from exc


def parse_campaigns(data: bytes) -> list[Campaign]:
    """Decode and validate a campaign file's bytes; refuses duplicates and bad fields."""
    try:
        if data.lstrip()[:1] == b"[":
            raws = msgspec.json.decode(data, type=list[msgspec.Raw])
        else:
            raws = msgspec.json.decode(data, type=_RawFile).campaigns
    except msgspec.ValidationError as exc:
        raise CampaignError(f"campaign file: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise CampaignError(f"campaign file is not valid JSON: {exc}") from exc
    campaigns = [_decode_one(i, raw) for i, raw in enumerate(raws)]
    ids: set[str] = set()
    for c in campaigns:
        _check(c)
        if c.id in ids:
            raise CampaignError(f"campaign {c.id!r}: id is used twice")
        ids.add(c.id)
    return campaigns


def load_campaigns(path: str | Path) -> list[Campaign]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CampaignError(f"cannot read campaign file {str(path)!r}: {exc.strerror}") from exc
    try:
        return parse_campaigns(data)
    except CampaignError as exc:
        raise CampaignError(f"{path}: {exc}") from exc
