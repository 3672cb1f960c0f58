"""A change in the control plane reaches a bidder on its next poll (every 250 ms, so within 1 s)."""

from __future__ import annotations

import httpx
import pytest

from bidder.campaign import parse_campaigns
from bidder.service import Bidder
from bidder.settings import EXAMPLE_CAMPAIGNS, from_env
from bidder.upkeep import POLL_SECONDS, Upkeep

pytestmark = pytest.mark.anyio

SPEC = {"business_goal": "Increase online sales", "monthly_budget": 3000, "advertiser_domain": "shop.example",
        "target_audience": {"countries": ["USA"]}, "platforms": ["openrtb"], "target_cpa": 25}


def bidder_for(h, tmp_path) -> tuple[Bidder, Upkeep]:
    settings = from_env({}, data_dir=str(tmp_path / "bidder"), notice_secret="s" * 40,
                        control_url="http://control", control_key=h.keys["read"])
    b = Bidder(settings, parse_campaigns(EXAMPLE_CAMPAIGNS.read_bytes()))
    return b, Upkeep(b, httpx.ASGITransport(app=h.app))


def ids(b: Bidder) -> set[str]:
    return {c.id for c in b.engine.index.campaigns}


async def test_each_change_is_live_after_the_next_poll(h, tmp_path) -> None:
    assert POLL_SECONDS * 4 <= 1.0
    b, up = bidder_for(h, tmp_path)
    examples = ids(b)
    await up.pull_campaigns()
    assert ids(b) == examples  # nothing managed yet: the file's campaigns keep bidding

    created = await h.create_active(**SPEC)
    assert await up.pull_campaigns() is True
    managed = ids(b) - examples
    assert managed and all(i.startswith(created["campaign_id"]) for i in managed)

    r = await h.request("PATCH", f"/campaigns/{created['campaign_id']}", json={"status": "paused"})
    assert r.status_code == 200, r.text
    assert await up.pull_campaigns() is True
    assert ids(b) == examples  # paused: known to the bidder, not bid

    assert await up.pull_campaigns() is False  # unchanged: 304
    await up.aclose()
    b.close()
