"""The control plane as operators run it: ``rtb control`` in its own process, and the Python client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.client import Client, RequestFailed

pytestmark = pytest.mark.e2e
ADMIN = "rtbk_e2e_" + "k" * 40
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    def start(self) -> None:
        env = {**os.environ, "RTB_ADMIN_KEY": ADMIN, "RTB_BIDDER_URL": f"http://127.0.0.1:{free_port()}",
               "RTB_CONTROL_EVENTS_INTERVAL": "60", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "control.cli", "control", "--bind", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.data_dir)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # granian signals its process group on shutdown; keep pytest out of it
        )
        assert self.proc.stdout is not None
        # Ready when the app's lifespan says so and then granian says its worker serves (the same two
        # lines the bidder's end-to-end tests wait for): reading the log blocks until then, no polling.
        # The lifespan's line alone came once before the worker took connections (refused).
        wanted = ["control plane ready", "Started worker-1"]
        for line in self.proc.stdout:
            self.log.append(line)
            if wanted[0] in line:
                wanted.pop(0)
                if not wanted:
                    return
        raise AssertionError("server exited before it was ready:\n" + "".join(self.log))

    def stop(self) -> int:
        assert self.proc is not None
        # The whole group (this server and its worker), which start_new_session made ours alone.
        os.killpg(self.proc.pid, signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        self.log.append(out)
        return self.proc.returncode

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data")
    s.start()
    yield s
    if s.proc and s.proc.poll() is None:
        s.stop()


def test_client_against_a_real_server_survives_sigterm_and_restart(server):
    spec = {"business_goal": "grow online sales", "monthly_budget": 1500,
            "products": [{"name": "Mug", "url": "https://mugs.example/m", "price": 12}],
            "platforms": ["openrtb", "google_ads"]}
    with Client(server.url, ADMIN, sleep=lambda _s: None) as c:
        created = c.create_campaign(spec, idempotency_key="e2e-1")
        assert created["status"] == "draft"
        assert c.create_campaign(spec, idempotency_key="e2e-1")["campaign_id"] == created["campaign_id"]
        cid = created["campaign_id"]
        active = c.wait_until_planned(cid, timeout=1000, interval=0.01)
        assert active["status"] == "active"
        paused = c.update_campaign(cid, status="paused")
        assert paused["status"] == "paused"
        assert [x["campaign_id"] for x in c.list_campaigns(status="paused")["campaigns"]] == [cid]
        perf = c.get_performance(cid)
        assert perf["impressions"] == 0 and perf["roas"] is None
        assert c.optimize_campaign(cid)["actions"] == []
        day = perf["start_date"]
        assert c.export_performance_report(day, day, format="csv").startswith("date,campaign_id")
        assert c.export_account_data()["campaigns"][0]["campaign_id"] == cid
        with pytest.raises(RequestFailed) as exc:
            c.get_campaign("cmp_missing")
        assert exc.value.status == 404

    assert server.stop() == 0
    server.start()
    with Client(server.url, ADMIN) as c:
        again = c.get_campaign(cid)
        assert again["status"] == "paused" and again["plan"] == paused["plan"]


def test_keys_create_prints_a_working_key_once(server, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "control.cli", "keys", "create", "--scope", "read",
         "--data-dir", str(server.data_dir)], cwd=ROOT, capture_output=True, text=True, check=True,
    )
    key = out.stdout.strip()
    assert key.startswith("rtbk_") and "not shown again" in out.stderr
    with Client(server.url, key) as c:
        assert c.list_campaigns() == {"campaigns": [], "next_cursor": None}
        with pytest.raises(RequestFailed) as exc:
            c.create_campaign({"business_goal": "x", "monthly_budget": 1})
        assert exc.value.status == 403
