"""One generic runner over every platform's fixture folders (``fixtures/<platform>/{exemplary,supplemental}``).

A fixture is a list of ``calls``; each names the ``decision``, the HTTP exchanges it must cause (expected
request: method, path, header subset, JSON or form body; the fake platform's scripted response) and what
``place_bid`` must give: ``{"placed": ...}`` or ``{"error": "<class>", "code": ..., "retry_after": ...}``.
``spend_micros`` is what the budget must have booked at the end: a failed call never books anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import msgspec
import pytest

import connectors
from connectors import BidDecision, BidResult, ConnectorError
from connectors.fake import FakePlatform, Reply
from shield import FakeClock

from .support import smart

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(FIXTURES.glob("*/*/*.json"))

pytestmark = pytest.mark.anyio


def test_every_platform_has_exemplary_and_supplemental_fixtures() -> None:
    for platform in ("google_ads", "meta", "tradedesk", "tiktok"):
        for folder in ("exemplary", "supplemental"):
            assert list((FIXTURES / platform / folder).glob("*.json")), f"{platform}/{folder} is empty"


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.stem}")
async def test_fixture(path: Path) -> None:
    fx = json.loads(path.read_text())
    platform = path.parent.parent.name
    clock = FakeClock()
    fake = FakePlatform(platform, clock)
    conn = smart(platform, clock, fake, **fx.get("config", {}))
    for i, call in enumerate(fx["calls"]):
        where = f"{path.name} call {i}"
        clock.advance(call.get("advance", 0.0))
        fake.push(*(msgspec.convert(x["response"], Reply) for x in call["http"]))
        seen = len(fake.requests)
        outcome: BidResult | ConnectorError
        try:
            outcome = await conn.place_bid(msgspec.convert(call["decision"], BidDecision))
        except ConnectorError as exc:
            outcome = exc
        sent = fake.requests[seen:]
        assert len(sent) == len(call["http"]), f"{where}: {len(sent)} requests sent, expected {len(call['http'])}"
        for got, want in zip(sent, (x["request"] for x in call["http"]), strict=True):
            _check_request(got, want, where)
        _check_outcome(outcome, call["expect"], where)
        assert not fake.script, f"{where}: scripted responses left unused"
    stats = await conn.get_budget_stats()
    assert stats["spend"] == fx["spend_micros"], f"{path.name}: booked {stats['spend']}"
    assert stats["reserved"] == 0, f"{path.name}: a reservation was left behind"
    await conn.aclose()


def _check_request(got: httpx.Request, want: dict[str, Any], where: str) -> None:
    assert got.method == want["method"], where
    assert got.url.path == want["path"], where
    for name, value in want.get("headers", {}).items():
        assert got.headers.get(name) == value, f"{where}: header {name}"
    if "json" in want:
        assert json.loads(got.content) == want["json"], f"{where}: JSON body"
    if "form" in want:
        assert dict(parse_qsl(got.content.decode())) == want["form"], f"{where}: form body"


def _check_outcome(outcome: BidResult | ConnectorError, expect: dict[str, Any], where: str) -> None:
    if "error" in expect:
        assert isinstance(outcome, getattr(connectors, expect["error"])), f"{where}: got {outcome!r}"
        for attr in ("code", "status"):
            if attr in expect:
                assert getattr(outcome, attr) == expect[attr], f"{where}: {attr} of {outcome}"
        if "retry_after" in expect:
            assert outcome.retry_after == pytest.approx(expect["retry_after"]), where
        assert str(outcome).startswith(outcome.platform + ": "), "messages name the platform"
        return
    assert isinstance(outcome, BidResult), f"{where}: got {outcome!r}"
    for key, value in expect.items():
        assert getattr(outcome, key) == value, f"{where}: {key}"
