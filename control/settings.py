"""The control plane's configuration: one frozen Struct, read from ``RTB_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

_ENV = {
    "RTB_DATA_DIR": "data_dir",
    "RTB_BIDDER_URL": "bidder_url",
    "RTB_ADMIN_KEY": "admin_key",
    "RTB_CONTROL_RATE": "rate",
    "RTB_CONTROL_BURST": "burst",
    "RTB_CONTROL_EVENTS_INTERVAL": "events_interval",
    "RTB_CONTROL_RULES_INTERVAL": "rules_interval",
}


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    data_dir: str = "./.data"
    bidder_url: str = "http://127.0.0.1:8080"
    # A bootstrap admin key (e.g. from `rtb up`); registered at start-up, never stored in plain text.
    admin_key: str = ""
    rate: float = 50.0  # requests per second per API key, on average
    burst: int = 100
    events_interval: float = 1.0  # seconds between pulls of the bidder's events
    rules_interval: float = 30.0  # seconds between rule-schedule checks

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {field: env[var] for var, field in _ENV.items() if env.get(var)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            field = str(exc).rpartition("$.")[2].rstrip("`")
            var = next((k for k, v in _ENV.items() if v == field), field)
            raise ValueError(f"control settings: {var}: {exc}") from exc
