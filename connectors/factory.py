"""``new_connector(kind, mock=False, **config)``: a ready connector of one of the eight kinds.

``<platform>`` is basic (translator and transport only), ``<platform>_smart`` adds the shield: a budget
manager, a rate limiter, a circuit breaker and a fallback pricer. Credentials and the budget come from
explicit arguments, else from ``<PREFIX>_<NAME>`` environment variables (``GOOGLE_ADS_API_KEY``,
``META_BUSINESS_ID``, ``TRADEDESK_BUDGET`` in USD, ...; ``TRADEDESK_NOTICE_SECRET`` falls back to the
bidder's ``RTB_NOTICE_SECRET``). ``mock=True`` talks to a ``FakePlatform`` and needs no credentials (fixed
test values stand in for them). Unknown options are refused with their names.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import msgspec

from shield import (
    DEFAULT_LIMITS,
    BudgetManager,
    CircuitBreaker,
    Clock,
    FakeClock,
    FallbackPricer,
    MonotonicClock,
    RateLimit,
    ShieldError,
    SlidingWindowLimiter,
)
from shield.keyed import platform_key

from .base import Connector, EventRelay, Shield, Sink
from .errors import ConfigError
from .fake import BASE_URLS, FakePlatform
from .google_ads import GoogleAds
from .meta import Meta
from .model import usd
from .tiktok import TikTok
from .tradedesk import TradeDesk
from .translate import Translator
from .transport import HttpxTransport


class Spec(msgspec.Struct, frozen=True):
    env: str  # prefix of the environment variables
    required: tuple[str, ...]
    optional: tuple[str, ...]
    budget_usd: float
    limit: RateLimit
    build: Callable[..., Translator]
    fallback_env: dict[str, str] = {}  # option -> environment variable read when <PREFIX>_<NAME> is unset
    wall: bool = False  # the translator takes the connector clock's wall time (``wall=clock.time``)


PLATFORMS: dict[str, Spec] = {
    "google_ads": Spec("GOOGLE_ADS", ("api_key", "customer_id"), ("access_token", "login_customer_id"),
                       500.0, DEFAULT_LIMITS["google_ads"],
                       lambda api_key, **kw: GoogleAds(developer_token=api_key, **kw)),
    "meta": Spec("META", ("access_token", "business_id"), (), 400.0, DEFAULT_LIMITS["meta"], Meta),
    "tradedesk": Spec("TRADEDESK", ("api_key", "partner_id", "notice_secret"), ("notice_url", "bid_ttl"), 600.0,
                      DEFAULT_LIMITS["tradedesk"], TradeDesk,
                      fallback_env={"notice_secret": "RTB_NOTICE_SECRET"}, wall=True),
    # TikTok limits by QPS per app and endpoint; 10 calls a second is a conservative assumption.
    "tiktok": Spec("TIKTOK", ("access_token", "advertiser_id"), (), 500.0, RateLimit(600, 60.0), TikTok),
}
KINDS = tuple(k for p in PLATFORMS for k in (p, f"{p}_smart"))

# Options every kind takes; the breaker ones matter only for the smart kinds.
COMMON = frozenset({
    "budget", "budget_window", "rate_limit", "rate_per_seconds", "timeout", "base_url", "client", "clock",
    "sink", "name", "fake", "failure_threshold", "slow_call_seconds", "reset_timeout", "env",
})
MOCK_ID = "1234567890"


def new_connector(kind: str, mock: bool = False, **config: Any) -> Connector:
    platform, smart, _ = kind.partition("_smart")
    spec = PLATFORMS.get(platform)
    if spec is None or kind not in KINDS:
        raise ConfigError(kind, f"unknown connector kind; known: {', '.join(KINDS)}")
    unknown = sorted(set(config) - COMMON - set(spec.required) - set(spec.optional))
    if unknown:
        raise ConfigError(kind, f"unknown option(s) {', '.join(unknown)}; this kind takes "
                                f"{', '.join(sorted(COMMON | set(spec.required) | set(spec.optional)))}")
    env: Mapping[str, str] = config.get("env", os.environ)

    def option(name: str) -> Any:
        if name in config:
            return config[name]
        value = env.get(f"{spec.env}_{name.upper()}")
        fallback = spec.fallback_env.get(name)
        return env.get(fallback) if fallback and not value else value

    creds: dict[str, str] = {}
    for name in spec.required + spec.optional:
        value = option(name)
        if value:
            creds[name] = str(value)
        elif name in spec.required:
            if not mock:
                fallback = spec.fallback_env.get(name)
                raise ConfigError(kind, f"missing {name}: pass {name}=... or set {spec.env}_{name.upper()}"
                                        + (f" (or {fallback})" if fallback else ""))
            creds[name] = MOCK_ID if name.endswith("_id") else "mock"
    clock: Clock = config.get("clock") or MonotonicClock()
    translator = spec.build(**creds, wall=clock.time) if spec.wall else spec.build(**creds)

    client: httpx.AsyncClient | None = config.get("client")
    owns = client is None
    if client is None:
        if mock:
            fake = config.get("fake") or FakePlatform(
                platform, clock if isinstance(clock, FakeClock) else None)
            client = fake.client()
        else:
            client = httpx.AsyncClient(base_url=config.get("base_url") or BASE_URLS[platform])
    transport = HttpxTransport(platform, client, float(config.get("timeout", 10.0)), owns_client=owns)
    name = config.get("name") or kind
    sink: Sink | None = config.get("sink")
    connector = Connector(translator, transport, clock, name=name, sink=sink, mock=mock)
    if smart:
        connector.shield = _shield(name, platform, spec, config, clock,
                                   _money(kind, option("budget"), spec.budget_usd),
                                   EventRelay(connector.stats, connector.sink))
    return connector


def _shield(name: str, platform: str, spec: Spec, config: dict[str, Any], clock: Clock, budget: int,
            relay: EventRelay) -> Shield:
    breaker_opts = {k: config[k] for k in ("failure_threshold", "slow_call_seconds", "reset_timeout")
                    if k in config}
    try:
        limit = RateLimit(int(config.get("rate_limit", spec.limit.calls)),
                          float(config.get("rate_per_seconds", spec.limit.per_seconds)))
        return Shield(
            budget=BudgetManager(budget, config.get("budget_window", 600.0), clock,
                                 key=platform_key(platform), sink=relay),
            limiter=SlidingWindowLimiter(limit, clock, name=name),
            breaker=CircuitBreaker(name, clock, relay, **breaker_opts),
            fallback=FallbackPricer(),
        )
    except (ShieldError, ValueError, TypeError) as exc:  # the shield's message names the setting
        raise ConfigError(name, str(exc)) from exc


def _money(kind: str, value: object, default_usd: float) -> int:
    if value is None or value == "":
        return usd(default_usd)
    try:
        amount = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(kind, f"budget must be a number of USD, got {value!r}") from None
    if not (math.isfinite(amount) and amount > 0):
        raise ConfigError(kind, f"budget must be a finite number of USD > 0, got {value!r}")
    return usd(amount)
