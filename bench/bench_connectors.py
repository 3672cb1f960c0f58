"""Connector overheads: translator alone, the safety pipeline with and without the shield, and httpx.

Run: python3 -m pytest bench/bench_connectors.py --benchmark-only -p no:cacheprovider
Pipeline benchmarks time a batch of ``BATCH`` place_bid calls on one event loop; divide by BATCH for
the per-decision figure. The in-memory transport isolates our code from HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from connectors import Auction, BidDecision, Connector, new_connector, usd
from connectors.fake import FakePlatform
from connectors.tradedesk import TradeDesk
from connectors.transport import PlatformRequest, PlatformResponse
from shield import FakeClock

BATCH = 1000
OK = PlatformResponse(200, {}, b'{"id":"req","status":"accepted"}')


class MemoryTransport:
    async def send(self, request: PlatformRequest) -> PlatformResponse:
        return OK

    async def aclose(self) -> None:
        pass


def _decision(i: int) -> BidDecision:
    return BidDecision("cust", "c1", usd(25), usd(1), {"p": 0.02}, bid_id=f"b{i}",
                       auction=Auction("req", "1", ["brand.example"]))


DECISIONS = [_decision(i) for i in range(BATCH)]


def _connector(kind: str, memory: bool) -> Connector:
    clock = FakeClock()
    fake = FakePlatform("tradedesk", clock)
    conn = new_connector(kind, mock=True, clock=clock, client=fake.client(), env={},
                         budget=10_000_000, rate_limit=10_000_000)
    if memory:
        conn.transport = MemoryTransport()
    return conn


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _batch_runner(loop: asyncio.AbstractEventLoop, kind: str, memory: bool) -> Callable[[], Any]:
    state = {"conn": _connector(kind, memory)}

    async def batch() -> None:
        conn = state["conn"]
        for d in DECISIONS:
            await conn.place_bid(d)

    def run() -> None:
        loop.run_until_complete(state["conn"].aclose())
        state["conn"] = _connector(kind, memory)  # fresh budget: bid ids repeat across rounds
        loop.run_until_complete(batch())

    return run


def test_translate_tradedesk_bid(benchmark: Any) -> None:
    t = TradeDesk("seat", "key", "bench-secret")
    d = DECISIONS[0]
    benchmark(lambda: msgspec.json.encode(t.requests(d)[0].json))


@pytest.mark.parametrize("kind", ["tradedesk", "tradedesk_smart"])
def test_pipeline_memory_transport_batch(benchmark: Any, loop: asyncio.AbstractEventLoop, kind: str) -> None:
    benchmark.pedantic(_batch_runner(loop, kind, memory=True), rounds=15, warmup_rounds=2)


@pytest.mark.parametrize("kind", ["tradedesk", "tradedesk_smart"])
def test_pipeline_httpx_mock_transport_batch(benchmark: Any, loop: asyncio.AbstractEventLoop, kind: str) -> None:
    benchmark.pedantic(_batch_runner(loop, kind, memory=False), rounds=5, warmup_rounds=1)
