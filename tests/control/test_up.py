"""`rtb up` starts the bidder and the control plane together, wired to each other."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bench import shared
from bidder.launch import ensure_free
from control.auth import new_key
from tests.process import free_port, running, started

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


def _listening() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def _bindable(port: int) -> bool:
    try:
        ensure_free("127.0.0.1", port, "the test")
    except OSError:
        return False
    return True


@pytest.mark.parametrize("taken", ["bidder", "control"])
def test_rtb_up_refuses_an_address_in_use_before_starting_anything(taken: str, tmp_path: Path) -> None:
    with _listening() as other:
        busy, free = other.getsockname()[1], free_port()
        bid_port, control_port = (busy, free) if taken == "bidder" else (free, busy)
        r = subprocess.run(
            [sys.executable, "-m", "control.cli", "up", "--bind", f"127.0.0.1:{bid_port}",
             "--control-bind", f"127.0.0.1:{control_port}"],
            env={**os.environ, "RTB_DATA_DIR": str(tmp_path)}, capture_output=True, text=True, timeout=60,
        )
        assert r.returncode == 2, r.stderr
        flag = "--bind" if taken == "bidder" else "--control-bind"
        assert f"cannot listen on 127.0.0.1:{busy}" in r.stderr and flag in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert _bindable(free)  # the other server was not started
        assert not (tmp_path / "control.sqlite3").exists()


@pytest.mark.parametrize("command", ["bidder", "control"])
def test_a_server_refuses_an_address_in_use_with_one_line(command: str, tmp_path: Path) -> None:
    with _listening() as other:
        port = other.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "control.cli", command, "--bind", f"127.0.0.1:{port}"],
                           env={**os.environ, "RTB_DATA_DIR": str(tmp_path)}, capture_output=True, text=True,
                           timeout=60)
    assert r.returncode == 2
    assert r.stderr == f"rtb: error: cannot listen on 127.0.0.1:{port} (--bind): Address already in use\n"


def test_rtb_up_stops_the_bidder_when_the_control_plane_exits(tmp_path: Path) -> None:
    bid_port = free_port()
    env = {"RTB_DATA_DIR": str(tmp_path), "RTB_NOTICE_SECRET": "n" * 40}
    argv = [sys.executable, "-m", "control.cli", "up", "--bind", f"127.0.0.1:{bid_port}",
            "--control-bind", f"127.0.0.1:{free_port()}"]
    with started(argv, ("control plane:", "bidder ready"), env=env) as (up, lines):
        children = Path(f"/proc/{up.pid}/task/{up.pid}/children").read_text().split()
        control = next(int(c) for c in children if b"control.cli" in Path(f"/proc/{c}/cmdline").read_bytes())
        os.killpg(control, signal.SIGKILL)  # the control plane dies, as by the OOM killer
        assert up.wait(timeout=30) == 1, "".join(lines)
    assert any("rtb up: the control plane exited (-9); stopping the bidder" in line for line in lines)
    assert _bindable(bid_port)
