"""A stop asked for while a server's worker still starts is not lost (``bidder.launch``).

Each test runs a real launch, the bidder's or the control plane's, with an app factory from
``start_apps`` that stops or holds its worker at a chosen moment. Before the fix, the worker lost the
signal in each case, and went on serving or waiting (and granian's main process waited for it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.process import exits, free_port, running, started

ROOT = Path(__file__).resolve().parents[2]


def _launch(server: str, factory: str, tmp_path: Path, first: str = "") -> tuple[list[str], dict[str, str]]:
    """``first``: code the launching process runs before the server's."""
    target = f"tests.bidder.start_apps:{factory}"
    port = free_port()
    code = first + {
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


def test_a_sigterm_that_reaches_a_worker_as_it_is_forked_ends_it(tmp_path: Path) -> None:
    # A main stopped just as it spawns its worker sends it a SIGTERM right after the fork, and Python
    # drops what its handler caught in a child before the child's at-fork hooks run. Here an earlier
    # hook sends it, in the worker alone: the worker must end, not go on building its app.
    first = "import os, signal; os.register_at_fork(after_in_child=lambda: os.kill(os.getpid(), signal.SIGTERM)); "
    argv, env = _launch("bidder-rsgi", "held", tmp_path, first)
    with started(argv, ["Spawning worker-1 with PID"], env) as (proc, lines):
        worker = int(lines[-1].rsplit(":", 1)[1])
        assert exits(worker, within=30), "".join(lines)
        assert proc.wait(timeout=30) == 1, "".join(lines)  # the main counts a worker ended on its own as failed
    assert not any("held in start-up" in line for line in lines), "".join(lines)


@pytest.mark.parametrize("factory", ["signalled_before_start", "signalled_after_start"])
def test_a_sigterm_while_the_loop_is_not_running_stops_the_worker(factory: str, tmp_path: Path) -> None:
    # uvloop, left to itself, would note the signal and wait for another one to act on it.
    argv, env = _launch("bidder-rsgi", factory, tmp_path)
    with started(argv, ["Spawning worker-1 with PID"], env) as (_, lines):
        worker = int(lines[-1].rsplit(":", 1)[1])
        assert exits(worker, within=90), "".join(lines)  # no one outside signalled it
    assert any(line.strip() == "the worker stopped" for line in lines), "".join(lines)  # its app closed


def test_the_bidder_listens_on_an_ipv6_address(tmp_path: Path) -> None:
    port = free_port()
    with running(["bidder", "--bind", f"[::1]:{port}"], env={"RTB_DATA_DIR": str(tmp_path)}):
        r = httpx.get(f"http://[::1]:{port}/healthz", timeout=10)
        assert r.status_code == 200


@pytest.mark.parametrize("command, who", [("bidder", "bidder"), ("control", "control plane")])
def test_a_second_server_on_the_same_data_directory_is_refused(command: str, who: str, tmp_path: Path) -> None:
    env = {"RTB_DATA_DIR": str(tmp_path), "RTB_NOTICE_SECRET": "s" * 32}
    ready = ("bidder ready", "Started worker-1") if command == "bidder" else ("control plane ready",)
    with running([command, "--bind", f"127.0.0.1:{free_port()}"], ready, env=env) as lines:
        first = next(line for line in lines if "main PID" in line).rsplit(":", 1)[1].strip(" )\n")
        r = subprocess.run([sys.executable, "-m", "control.cli", command, "--bind", f"127.0.0.1:{free_port()}"],
                           env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr == (f"rtb: error: data directory {tmp_path} is in use by another {who} (pid {first}): run "
                        f"one {who} per data directory, or give this one its own (--data-dir, RTB_DATA_DIR)\n")


HOLD = "from bidder.launch import hold_data_dir; import signal, sys; hold_data_dir(sys.argv[1], 'bidder'); " \
       "print('held', flush=True); signal.pause()"


def test_the_data_directory_lock_ends_with_its_holder_even_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    try:
        second = subprocess.run([sys.executable, "-c", HOLD.replace("signal.pause()", "pass"), str(tmp_path)],
                                capture_output=True, text=True, timeout=60)
        assert f"in use by another bidder (pid {holder.pid})" in second.stderr
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    again = subprocess.run([sys.executable, "-c", HOLD.replace("signal.pause()", "pass"), str(tmp_path)],
                           capture_output=True, text=True, timeout=60)
    assert again.stdout == "held\n", again.stderr


def test_the_stop_signals_are_blocked_only_while_a_process_forks() -> None:
    from bidder import launch

    launch._before_fork()
    try:
        assert set(launch.STOP_SIGNALS) <= signal.pthread_sigmask(signal.SIG_BLOCK, [])
    finally:
        launch._after_fork_in_parent()
    assert not set(launch.STOP_SIGNALS) & signal.pthread_sigmask(signal.SIG_BLOCK, [])
