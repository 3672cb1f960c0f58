"""`rtb up` starts the bidder and the control plane together, wired to each other."""

from __future__ import annotations

from pathlib import Path

import httpx

from bench import shared
from control.auth import new_key
from tests.process import free_port, running

BANNER = shared.BANNER


def test_rtb_up_runs_bidder_and_control_plane(tmp_path: Path) -> None:
    bid_port, control_port = free_port(), free_port()
    key = new_key()
    env = {"RTB_DATA_DIR": str(tmp_path), "RTB_ADMIN_KEY": key, "RTB_NOTICE_SECRET": "n" * 40}
    args = ["up", "--bind", f"127.0.0.1:{bid_port}", "--control-bind", f"127.0.0.1:{control_port}"]
    with running(args, ("control plane:", "bidder ready", "Started worker-1"), env=env) as lines:
        # Both servers print "Started worker-1"; connection retries cover whichever came second.
        transport = httpx.HTTPTransport(retries=5)
        with httpx.Client(transport=transport, timeout=10) as client:
            r = client.post(f"http://127.0.0.1:{bid_port}/openrtb2/bid", content=BANNER.read_bytes())
            assert r.status_code == 200
            status = client.get(f"http://127.0.0.1:{bid_port}/status").json()
            assert status["control"]["url"] == f"http://127.0.0.1:{control_port}"
            r = client.get(f"http://127.0.0.1:{control_port}/api/v1/campaigns",
                           headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200 and "campaigns" in r.json()
            for port in (bid_port, control_port):  # one liveness probe for both servers
                assert client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            assert client.get(f"http://127.0.0.1:{control_port}/health").json() == {"status": "ok"}
    assert any(key in line for line in lines)  # the operator is told the key to use
