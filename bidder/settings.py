"""The bidder's configuration: one frozen Struct, read from ``RTB_*`` environment variables.

CLI flags are applied over the environment by the CLI. An ``RTB_*`` variable that nothing in the
product reads is refused with its name: a typo in a deployment must not silently fall back to a
default (``RTB_NOTCE_SECRET`` would otherwise sign notices with a throw-away secret).
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CAMPAIGNS = REPO / "examples" / "campaigns.json"

# Variables other parts of the product read (control plane, scripts); the bidder accepts and ignores them.
OTHER_KEYS = {"RTB_ADMIN_KEY", "RTB_BIDDER_URL", "RTB_CONTROL_BIND", "RTB_CONTROL_RATE", "RTB_CONTROL_BURST",
              "RTB_CONTROL_EVENTS_INTERVAL", "RTB_CONTROL_RULES_INTERVAL",
              "RTB_SHARED"}  # the sample data the tests and benchmarks read (bench/shared.py)


class SettingsError(ValueError):
    pass


def split_bind(bind: str, name: str) -> tuple[str, int]:
    """``IP:PORT`` (``[IPv6]:PORT``) as (IP, port). Granian listens on an address, not a host name: a
    name would pass here and fail only once it had started, as "invalid IP address syntax"."""
    host, _, port = bind.rpartition(":")
    try:
        ip = str(ipaddress.ip_address(host[1:-1] if host.startswith("[") and host.endswith("]") else host))
        if port.isdigit() and 0 < int(port) < 65536:
            return ip, int(port)
    except ValueError:
        pass
    raise SettingsError(f"{name} must be IP:PORT, an address and not a host name, e.g. 127.0.0.1:8080 or "
                        f"[::1]:8080; got {bind!r}")


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    campaigns: str = str(EXAMPLE_CAMPAIGNS)
    bind: str = "127.0.0.1:8080"
    workers: int = 1
    interface: Literal["asgi", "rsgi"] = "rsgi"
    scheduling: Literal["batch", "normal"] = "batch"  # the kernel's policy for the server's threads
    public_url: str = ""  # base of notice URLs; default http://<bind>
    data_dir: str = ".data"
    notice_secret: str = ""  # without it, a random secret kept in the data directory
    seat: str = "rtb"
    shade: float = 0.8  # first-price bids are shaded to this fraction of the value
    bid_ttl: int = 600  # seconds a bid's reservation is held without a billing or loss notice
    notice_retention: int = 7 * 86400  # seconds after a bid in which its notices are accepted
    tmax_margin_ms: int = 10  # network allowance: tmax below this means no time to answer
    max_body: int = 256 * 1024  # bytes, for both the wire body and its decompressed form
    gzip_min: int = 256  # responses shorter than this are not worth compressing
    fx: str = ""  # "EUR=0.92,GBP=0.79": overrides of the static rate table
    platform_budgets: str = ""  # "meta=400,tiktok=250": USD per 10 minutes, over the defaults
    model_budget_ms: float = 5.0  # a model call slower than this counts as bad for the breaker
    control_url: str = ""  # control plane to pull campaigns from; empty: campaigns from the file
    control_key: str = ""
    model: str = ""  # CTR model artefact; empty: the campaigns' configured priors
    ltv_model: str = ""
    users: str = ""  # user-value table for the LTV model

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SettingsError(f"workers must be >= 1, got {self.workers}")
        if not 0 < self.shade <= 1:
            raise SettingsError(f"shade must be in (0, 1], got {self.shade}")
        split_bind(self.bind, "bind (--bind, RTB_BIND)")

    @property
    def host(self) -> str:
        return split_bind(self.bind, "bind")[0]

    @property
    def port(self) -> int:
        return split_bind(self.bind, "bind")[1]

    @property
    def notice_base(self) -> str:
        return (self.public_url or f"http://{self.bind}").rstrip("/")


FIELDS = set(Settings.__struct_fields__)


def parse_amounts(spec: str, setting: str, example: str) -> dict[str, float]:
    """``"a=1.5,b=2"`` -> {"a": 1.5, "b": 2.0}; every amount must be a finite number > 0. The error
    names the setting, the item it could not read and what was expected."""
    out: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, eq, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = math.nan
        if not eq or not name.strip() or not (math.isfinite(amount) and amount > 0):
            raise SettingsError(f"{setting}: cannot read {item!r}; expected {example}")
        out[name.strip()] = amount
    return out


def from_env(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    unknown = []
    for key, value in env.items():
        if not key.startswith("RTB_") or key in OTHER_KEYS:
            continue
        name = key[4:].lower()
        if name in FIELDS:
            values[name] = value
        else:
            unknown.append(key)
    if unknown:
        raise SettingsError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: "
                            + ", ".join(sorted("RTB_" + f.upper() for f in FIELDS)))
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"setting {exc}") from exc


def to_env(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` in a worker process."""
    return {f"RTB_{f.upper()}": str(getattr(settings, f)) for f in FIELDS}
