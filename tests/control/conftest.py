"""Fixtures for the control plane's HTTP tests: an app on a temporary data dir, driven through ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from control.app import create_app
from control.auth import KeyStore
from control.clock import FakeClock
from control.service import Control
from control.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Harness:
    """One control plane on ``data_dir`` with keys of every scope; ``reopen()`` restarts it on the same files."""

    def __init__(self, data_dir: Path, clock: FakeClock, **kwargs: Any) -> None:
        self.data_dir = data_dir
        self.clock = clock
        self.kwargs = kwargs
        self.settings = Settings(data_dir=str(data_dir), **kwargs.pop("settings", {}))
        self._open()
        keys = KeyStore(self.control.db)
        self.keys = {s: keys.create(s) for s in ("read", "write", "admin")}  # type: ignore[arg-type]

    def _open(self) -> None:
        kwargs = {"sleep": self._no_sleep, **self.kwargs}
        self.control = Control(self.settings, clock=self.clock, **kwargs)
        self.app = create_app(control=self.control)
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://control")
        self.slept: list[float] = []

    async def _no_sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def auth(self, scope: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    async def request(self, method: str, path: str, scope: str = "admin", **kw: Any) -> httpx.Response:
        headers = {**self.auth(scope), **kw.pop("headers", {})}
        return await self.http.request(method, f"/api/v1{path}", headers=headers, **kw)

    async def create_active(self, **spec: Any) -> dict[str, Any]:
        body = {"business_goal": "increase online sales", "monthly_budget": 3000.0,
                "advertiser_domain": "shop.example", **spec}
        r = await self.request("POST", "/campaigns", json=body)
        assert r.status_code == 202, r.text
        await self.control.planner.drain()
        r = await self.request("GET", f"/campaigns/{r.json()['campaign_id']}")
        return dict(r.json())

    async def reopen(self) -> None:
        await self.close()
        self._open()

    async def close(self) -> None:
        await self.http.aclose()
        await self.control.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_harness(tmp_path: Path, clock: FakeClock) -> Callable[..., Harness]:
    made: list[Harness] = []

    def make(**kwargs: Any) -> Harness:
        h = Harness(tmp_path / f"data{len(made)}", clock, **kwargs)
        made.append(h)
        return h

    yield make  # type: ignore[misc]
    for h in made:
        h.control.db.close()


@pytest.fixture
async def h(make_harness: Callable[..., Harness]) -> AsyncIterator[Harness]:
    harness = make_harness()
    yield harness
    await harness.http.aclose()
