"""The kernel's scheduling policy of the bidder's threads (``bidder.server.schedule``)."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import httpx
import pytest

from bidder.server import schedule
from bidder.settings import SettingsError, from_env
from tests.process import free_port, running

REQUEST = Path(__file__).resolve().parents[2] / "examples" / "bid-request.json"


def _policies(lines: list[str]) -> set[int]:
    """The policy of every thread of the worker, whose pid granian logged, and of its main process."""
    worker = next(int(line.rsplit(":", 1)[1]) for line in lines if "Spawning worker-1 with PID" in line)
    main = next(int(line.rsplit(":", 1)[1].strip(" )\n")) for line in lines if "Starting granian (main PID" in line)
    threads = [int(t) for t in os.listdir(f"/proc/{worker}/task")]
    assert len(threads) >= 3, threads  # the event loop's, granian's runtime and its Python thread at least
    return {os.sched_getscheduler(t) for t in [*threads, main]}


@pytest.mark.parametrize("flag, policy", [([], os.SCHED_BATCH), (["--scheduling", "normal"], os.SCHED_OTHER)])
def test_the_bidder_runs_every_thread_under_its_scheduling_policy(flag: list[str], policy: int,
                                                                  tmp_path: Path) -> None:
    port = free_port()
    with running(["bidder", "--bind", f"127.0.0.1:{port}", *flag], env={"RTB_DATA_DIR": str(tmp_path)}) as lines:
        bid = httpx.post(f"http://127.0.0.1:{port}/openrtb2/bid", content=REQUEST.read_bytes(), timeout=10)
        assert bid.status_code == 200  # served: granian has started every thread it serves with
        assert _policies(lines) == {policy}, "".join(lines)
        name = "batch" if policy == os.SCHED_BATCH else "normal"
        assert any(f"bidder ready on http://127.0.0.1:{port} (rsgi, scheduling {name})" in line for line in lines)


def test_a_policy_the_bidder_does_not_know_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="scheduling"):
        from_env({"RTB_SCHEDULING": "fifo"})


def test_a_policy_the_system_refuses_is_said_and_the_bidder_goes_on(monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    def refuse(pid: int, policy: int, param: os.sched_param) -> None:  # as a seccomp profile would
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    with caplog.at_level(logging.WARNING, logger="rtb.bidder"):
        schedule("batch")
    assert "scheduling batch refused (Operation not permitted)" in caplog.text
