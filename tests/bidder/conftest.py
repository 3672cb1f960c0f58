from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import shared
from bidder.campaign import Campaign, parse_campaigns
from bidder.service import Bidder
from bidder.settings import EXAMPLE_CAMPAIGNS, from_env
from shield import FakeClock

SHARED = shared.OPENRTB
SAMPLES = SHARED / "samples"
IAB = SAMPLES / "iab-2.6-spec"
SECRET = "test-secret-" + "x" * 32
# 2026-11-18 14:30 UTC, a Wednesday: inside every example campaign's hours.
NOW = 1_795_012_200.0


class Wall(FakeClock):
    """The injected clock; ``t`` is its wall time, and setting it moves both readings."""

    def __init__(self, t: float = NOW) -> None:
        super().__init__(monotonic=10_000.0, wall=t)

    @property
    def t(self) -> float:
        return self.time()

    @t.setter
    def t(self, value: float) -> None:
        self.advance(value - self.time())


def sample(name: str) -> bytes:
    return (IAB / name).read_bytes()


def sample_json(name: str) -> dict[str, Any]:
    return json.loads(sample(name))


def campaign(**overrides: Any) -> dict[str, Any]:
    """A minimal valid campaign as JSON-able data; overrides replace top-level keys."""
    c: dict[str, Any] = {
        "id": "c1",
        "advertiser": "brand.com",
        "budget": {"total": 1000.0},
        "bid": {"max_cpm": 5.0, "target_roas": 1.0, "value_per_conversion": 10.0, "conversion_rate": 0.0003},
        "creatives": [{"id": "cr1", "format": "banner", "w": 300, "h": 250, "adm": "<b>ad</b>"}],
    }
    c.update(overrides)
    return c


def campaigns(*items: dict[str, Any]) -> list[Campaign]:
    return parse_campaigns(json.dumps({"campaigns": list(items)}).encode())


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def make_bidder(tmp_path: Path, wall: Wall) -> Callable[..., Bidder]:
    made: list[Bidder] = []

    def make(items: list[Campaign] | None = None, **settings: Any) -> Bidder:
        s = from_env({}, data_dir=str(tmp_path / "data"), notice_secret=SECRET,
                     public_url="https://bid.example", **settings)
        b = Bidder(s, campaigns=items if items is not None else parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()),
                   clock=wall)
        b.warm_up()
        made.append(b)
        return b

    yield make  # type: ignore[misc]
    for b in made:
        b.close()
