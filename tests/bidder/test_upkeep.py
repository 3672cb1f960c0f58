"""Background upkeep: campaigns pulled from the control plane, model artefacts swapped from disk."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import sys
import threading
from pathlib import Path

import httpx
import pytest

from bidder.engine import Engine
from bidder.models.artefact import save_artefact
from bidder.models.ctr import train
from bidder.models.features import FEATURES_VERSION
from bidder.models.simulate import World
from bidder.upkeep import Upkeep, _background_build
from tests.bidder.conftest import campaign, campaigns, sample

BANNER = sample("request-1-simple-banner.json")


class Control:
    """A control plane stand-in speaking the bidder-campaigns contract, through httpx.MockTransport."""

    def __init__(self) -> None:
        self.version = 1
        self.campaigns = [campaign(id="from-control")]
        self.down = False
        self.seen_etags: list[str | None] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        assert request.url.path == "/api/v1/bidder/campaigns"
        assert request.headers["authorization"] == "Bearer k-read"
        etag = f'"{self.version}"'
        self.seen_etags.append(request.headers.get("if-none-match"))
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304)
        return httpx.Response(200, headers={"etag": etag},
                              json={"version": self.version, "campaigns": self.campaigns})


def run(coro):
    return asyncio.run(coro)


def cid_of(b) -> str | None:
    status, body = b.engine.bid(BANNER)
    return json.loads(body)["seatbid"][0]["bid"][0]["cid"] if status == 200 else None


def test_each_new_campaign_set_is_followed_by_the_after_load_hook(make_bidder) -> None:
    control = Control()
    b = make_bidder([], control_url="http://control.test", control_key="k-read")
    loads: list[int] = []
    up = Upkeep(b, httpx.MockTransport(control.handler), after_load=lambda: loads.append(b.engine.index.n))
    assert run(up.pull_campaigns()) is True
    assert run(up.pull_campaigns()) is False  # unchanged: nothing loaded, no hook
    assert loads == [1]  # it ran once the new campaigns were in place


def test_a_pushed_campaign_set_is_built_while_the_loop_goes_on_bidding(make_bidder, monkeypatch) -> None:
    # Building 10,000 campaigns takes most of a second: on the event loop it would stall every request.
    control = Control()
    cheap = {"max_cpm": 1.0, "target_roas": 1.0, "value_per_conversion": 10.0, "conversion_rate": 0.0003}
    b = make_bidder(campaigns(campaign(id="static", bid=cheap)), control_url="http://control.test",
                    control_key="k-read")
    up = Upkeep(b, httpx.MockTransport(control.handler))
    entered, released = threading.Event(), threading.Event()
    prepare = Engine.prepare

    def held(self, *args, **kwargs):
        entered.set()
        assert released.wait(timeout=10), "the loop never got to bid while the build was held"
        return prepare(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "prepare", held)

    async def scenario() -> None:
        pull = asyncio.ensure_future(up.pull_campaigns())
        assert await asyncio.to_thread(entered.wait, 10)  # the build has started, in its thread
        assert cid_of(b) == "static"  # the loop bids meanwhile, on the campaigns in place
        released.set()
        assert await pull is True
        assert cid_of(b) == "from-control"

    run(scenario())


def test_a_background_build_runs_without_collections_and_with_short_gil_turns() -> None:
    seen = []
    before = sys.getswitchinterval()
    assert _background_build(lambda x: seen.append((gc.isenabled(), sys.getswitchinterval(), x)) or x, 7) == 7
    assert seen == [(False, pytest.approx(0.0005), 7)]
    assert gc.isenabled() and sys.getswitchinterval() == before  # both given back


def test_campaigns_follow_the_control_plane(make_bidder) -> None:
    control = Control()
    b = make_bidder([], control_url="http://control.test", control_key="k-read")
    up = Upkeep(b, httpx.MockTransport(control.handler))
    assert cid_of(b) is None
    assert run(up.pull_campaigns()) is True
    assert cid_of(b) == "from-control"
    assert run(up.pull_campaigns()) is False  # unchanged: 304
    assert control.seen_etags[-1] == '"1"'
    control.version, control.campaigns = 2, [campaign(id="changed")]
    assert run(up.pull_campaigns()) is True
    assert cid_of(b) == "changed"
    assert json.loads(b.status()[2])["control"]["version"] == 2


def test_control_plane_down_keeps_the_last_good_campaigns(make_bidder) -> None:
    control = Control()
    b = make_bidder([], control_url="http://control.test", control_key="k-read")
    up = Upkeep(b, httpx.MockTransport(control.handler))
    run(up.pull_campaigns())
    control.down = True
    assert run(up.pull_campaigns()) is False
    assert cid_of(b) == "from-control"
    status = json.loads(b.status()[2])
    assert status["control"]["reachable"] is False and "ConnectError" in status["control"]["error"]


def test_a_bad_campaign_push_is_refused_whole(make_bidder) -> None:
    control = Control()
    b = make_bidder([], control_url="http://control.test", control_key="k-read")
    up = Upkeep(b, httpx.MockTransport(control.handler))
    run(up.pull_campaigns())
    control.version, control.campaigns = 2, [campaign(id="bad", bid={"max_cpm": -1})]
    assert run(up.pull_campaigns()) is False
    assert cid_of(b) == "from-control"
    assert "bid.max_cpm" in json.loads(b.status()[2])["control"]["error"]


def test_the_last_snapshot_survives_a_restart(make_bidder) -> None:
    control = Control()
    b = make_bidder([], control_url="http://control.test", control_key="k-read")
    run(Upkeep(b, httpx.MockTransport(control.handler)).pull_campaigns())
    b.close()
    control.down = True
    again = make_bidder([], control_url="http://control.test", control_key="k-read")
    Upkeep(again, httpx.MockTransport(control.handler))
    assert cid_of(again) == "from-control"


# --- model hot swap ---------------------------------------------------------------------------------


def artefact(out: Path, seed: int) -> Path:
    events, _ = World(seed).sample(3000, seed)
    weight, _ = train(events, bits=12, epochs=1)
    return save_artefact(out, "ctr", {"weight": weight}, f"{seed:064x}", {},
                         {"features_version": FEATURES_VERSION, "bits": 12, "epochs": 1})


def install(src: Path, dst: Path) -> None:
    """Put an artefact in place the way an operator would: the arrays, then the metadata."""
    shutil.copyfile(src.with_suffix(".npz"), dst.with_suffix(".npz"))
    shutil.copyfile(src, dst)
    t = os.stat(dst).st_mtime + 1  # a distinct mtime even on coarse file systems
    os.utime(dst, (t, t))


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("artefacts")
    return artefact(out / "a", 1), artefact(out / "b", 2)


def test_model_loads_at_start_and_swaps_without_restart(make_bidder, tmp_path, artefacts) -> None:
    a, b2 = artefacts
    live = tmp_path / "model.json"
    install(a, live)
    b = make_bidder(model=str(live))
    up = Upkeep(b)
    first = b.engine.model.version
    assert first.startswith("ctr-")
    status, body = b.engine.bid(BANNER)
    assert status in (200, 204)
    install(b2, live)
    assert run(up.check_model()) is True
    assert b.engine.model.version != first
    assert run(up.check_model()) is False  # nothing changed since


def test_a_model_swap_is_followed_by_the_after_load_hook(make_bidder, tmp_path, artefacts) -> None:
    a, b2 = artefacts
    live = tmp_path / "model.json"
    install(a, live)
    b = make_bidder(model=str(live))
    versions: list[str] = []
    up = Upkeep(b, after_load=lambda: versions.append(b.engine.model.version))
    install(b2, live)
    assert run(up.check_model()) is True
    assert versions == [b.engine.model.version]


def test_corrupt_artefact_is_refused_and_the_old_model_keeps_serving(make_bidder, tmp_path, artefacts) -> None:
    a, _ = artefacts
    live = tmp_path / "model.json"
    install(a, live)
    b = make_bidder(model=str(live))
    up = Upkeep(b)
    version = b.engine.model.version
    live.with_suffix(".npz").write_bytes(b"PK\x03\x04 definitely not the arrays")
    assert run(up.check_model()) is False
    assert b.engine.model.version == version
    error = json.loads(b.status()[2])["model_error"]
    assert "model.json" in error or "model.npz" in error
    assert b.engine.bid(BANNER)[0] in (200, 204)
