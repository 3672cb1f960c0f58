"""Over HTTP, concurrent bids and notices for a small budget never book more than the budget."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from tests.bidder.conftest import SECRET, campaign, sample
from tests.process import free_port, running

BANNER = sample("request-1-simple-banner.json")
BUDGET = 0.02  # USD: room for 8 bids reserving 2400 micros each


@pytest.mark.parametrize("interface", ["asgi", "rsgi"])
def test_concurrent_bids_and_notices_never_book_more_than_the_budget(tmp_path: Path, interface: str) -> None:
    camp = tmp_path / "campaigns.json"
    camp.write_text(json.dumps({"campaigns": [campaign(budget={"total": BUDGET})]}))
    port = free_port()
    env = {"RTB_NOTICE_SECRET": SECRET, "RTB_DATA_DIR": str(tmp_path / "data"), "RTB_CAMPAIGNS": str(camp)}
    with running(["bidder", "--interface", interface, "--bind", f"127.0.0.1:{port}"], env=env):
        base = f"http://127.0.0.1:{port}"

        async def storm() -> list[dict]:
            limits = httpx.Limits(max_connections=32)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
                answers = await asyncio.gather(*(client.post("/openrtb2/bid", content=BANNER) for _ in range(60)))
                bids = [r.json()["seatbid"][0]["bid"][0] for r in answers if r.status_code == 200]
                assert all(r.status_code in (200, 204) for r in answers)
                bills = [b["burl"].replace("${AUCTION_PRICE}", str(b["price"])).split("/", 3)[3] for b in bids]
                # every billing notice twice, concurrently: duplicates must book nothing
                done = await asyncio.gather(*(client.get("/" + u) for u in bills + bills))
                assert all(r.status_code == 200 for r in done)
                return bids

        bids = asyncio.run(storm())
        status = httpx.get(base + "/status").json()
    spend = status["campaigns"]["c1"]["spend"]
    assert 0 < len(bids) <= 8
    assert sum(b["price"] for b in bids) / 1000 <= BUDGET + 1e-9
    assert spend == pytest.approx(sum(b["price"] for b in bids) / 1000)
    assert spend <= BUDGET
    assert status["no_bid"]["budget"] >= 60 - len(bids) - 1
