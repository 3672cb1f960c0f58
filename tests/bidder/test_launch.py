"""A stop asked for while a server's worker still starts is not lost (``bidder.launch``).

Each test runs a real launch, the bidder's or the control plane's, with an app factory from
``start_apps`` that stops or holds its worker at a chosen moment. Before the fix, the worker lost the
signal in each case, and went on serving or waiting (and granian's main process waited for it)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

from tests.process import free_port, running, started

ROOT = Path(__file__).resolve().parents[2]


def _launch(server: str, factory: str, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    target = f"tests.bidder.start_apps:{factory}"
    port = free_port()
    code = {
        "bidder-rsgi": "from bidder.server import serve; from bidder.settings import from_env; "
                       f"serve(from_env(bind='127.0.0.1:{port}', interface='rsgi'), target={target!r})",
        "bidder-asgi": "from bidder.server import serve; from bidder.settings import from_env; "
                       f"serve(from_env(bind='127.0.0.1:{port}', interface='asgi'), target={target!r})",
        "control": f"from control.server import serve; serve('127.0.0.1:{port}', target={target!r})",
    }[server]
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    env = {"HOLD_FIFO": str(fifo), "RTB_DATA_DIR": str(tmp_path / "data"), "RTB_NOTICE_SECRET": "s" * 32,
           "PYTHONPATH": str(ROOT)}
    return [sys.executable, "-c", code], env


@pytest.mark.parametrize("server", ["bidder-rsgi", "bidder-asgi", "control"])
def test_sigterm_to_the_main_process_stops_a_worker_still_building_its_app(server: str, tmp_path: Path) -> None:
    argv, env = _launch(server, "held", tmp_path)
    with started(argv, ["held in start-up"], env) as (proc, lines):
        os.kill(proc.pid, signal.SIGTERM)  # as `kill PID`, docker stop or systemd do
        assert proc.wait(timeout=30) == 0, "".join(lines)
    assert not any("Unexpected exit" in line for line in lines), "".join(lines)


def test_ctrl_c_to_the_process_group_stops_a_worker_still_building_its_app(tmp_path: Path) -> None:
    argv, env = _launch("bidder-rsgi", "held", tmp_path)
    with started(argv, ["held in start-up"], env) as (proc, lines):
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the main relays it to the worker
        assert proc.wait(timeout=30) == 0, "".join(lines)
    assert not any("Unexpected exit" in line for line in lines), "".join(lines)


def test_sigterm_to_the_process_group_stops_a_worker_still_building_its_app(tmp_path: Path) -> None:
    argv, env = _launch("bidder-rsgi", "held", tmp_path)
    with started(argv, ["held in start-up"], env) as (proc, lines):
        os.killpg(proc.pid, signal.SIGTERM)  # as `kill -- -PGID`
        # The worker may end before the main has marked it stopped, and granian then exits 1
        # ("Unexpected exit from worker-1"); what matters is that the server stops.
        assert proc.wait(timeout=30) in (0, 1), "".join(lines)


@pytest.mark.parametrize("factory", ["signalled_before_start", "signalled_after_start"])
def test_a_sigterm_while_the_loop_is_not_running_stops_the_worker(factory: str, tmp_path: Path) -> None:
    # uvloop, left to itself, would note the signal and wait for another one to act on it.
    argv, env = _launch("bidder-rsgi", factory, tmp_path)
    with started(argv, ["the worker stopped"], env, timeout=30):
        pass


def test_the_bidder_listens_on_an_ipv6_address(tmp_path: Path) -> None:
    port = free_port()
    with running(["bidder", "--bind", f"[::1]:{port}"], env={"RTB_DATA_DIR": str(tmp_path)}):
        r = httpx.get(f"http://[::1]:{port}/healthz", timeout=10)
        assert r.status_code == 200
