"""Control-plane latencies in-process (ASGI, no sockets), against the issue's targets.

Run: python3 -m pytest bench/bench_control.py --benchmark-only -p no:cacheprovider
Targets (issue 5): campaign creation accepted < 100 ms and planned < 10 s; optimisation < 5 s;
status < 50 ms. ``test_health`` is the cheapest round trip through the same stack, the baseline the
others read against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from control.app import create_app
from control.auth import KeyStore
from control.service import Control
from control.settings import Settings

SPEC = {
    "business_goal": "increase online sales", "monthly_budget": 9000,
    "target_audience": {"countries": ["USA", "GBR"], "interests": ["running"]},
    "products": [{"name": f"Shoe {i}", "url": f"https://shoes.example/{i}", "price": 90} for i in range(3)],
    "platforms": ["openrtb", "google_ads", "meta", "tiktok"],
}


class Env:
    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.control = Control(Settings(data_dir=str(data_dir), rate=1e9, burst=10**9))
        key = KeyStore(self.control.db).create("admin")
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(control=self.control)),
                                      base_url="http://control", headers={"Authorization": f"Bearer {key}"})

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        r: httpx.Response = self.run(self.http.request(method, path, **kw))
        assert r.status_code < 400, r.text
        return r

    def active(self) -> str:
        cid = str(self.call("POST", "/api/v1/campaigns", json=SPEC).json()["campaign_id"])
        self.run(self.control.planner.drain())
        return cid


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.run(e.http.aclose())
    e.run(e.control.close())
    e.loop.close()


def test_health(benchmark: Any, env: Env) -> None:
    benchmark(env.call, "GET", "/health")


def test_create_campaign_accepted(benchmark: Any, env: Env) -> None:
    benchmark(env.call, "POST", "/api/v1/campaigns", json=SPEC)


def test_create_and_plan_campaign(benchmark: Any, env: Env) -> None:
    benchmark(env.active)


def test_campaign_status(benchmark: Any, env: Env) -> None:
    cid = env.active()
    benchmark(env.call, "GET", f"/api/v1/campaigns/{cid}")


def test_bidder_snapshot_unchanged_304(benchmark: Any, env: Env) -> None:
    for _ in range(20):
        env.active()
    etag = env.call("GET", "/api/v1/bidder/campaigns").headers["etag"]
    benchmark(env.call, "GET", "/api/v1/bidder/campaigns", headers={"If-None-Match": etag})


def test_bidder_snapshot_build(benchmark: Any, env: Env) -> None:
    """What the first bidder poll after a change costs: 20 campaigns, 160 bidder campaigns, encoded."""
    for _ in range(20):
        env.active()
    benchmark(env.control.store.snapshot)


def test_optimize_with_30k_events(benchmark: Any, env: Env) -> None:
    cid = env.active()
    ad_sets = [s["id"] for p in env.call("GET", f"/api/v1/campaigns/{cid}").json()["plan"]["platforms"]
               for s in p["ad_sets"]]
    rows = [(i, env.control.clock.now(), "bill", ad_sets[i % len(ad_sets)], f"b{i}", "1", "p0-300x250", 5.0,
             f"u{i % 500}", "{}") for i in range(30_000)]
    env.control.db.many("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    benchmark(env.call, "POST", f"/api/v1/campaigns/{cid}/optimize", json={"optimization_type": "suggest"})
