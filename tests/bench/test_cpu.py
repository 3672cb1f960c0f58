"""A server's CPU time from /proc: every thread of every process in its session, main threads apart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cpu

# A session like a granian server's: a leader and a worker it starts, the worker with a second thread.
# Each burns a fixed amount of work, then reports what its threads spent and waits for stdin to close.
SESSION = r"""
import subprocess, sys, threading, time

def burn():
    x = 0
    for i in range(300_000):
        x += i

if sys.argv[1] == "leader":
    worker = subprocess.Popen([sys.executable, "-c", sys.argv[2], "worker"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    burn()
    print(worker.stdout.readline().strip(), time.thread_time_ns(), flush=True)
    sys.stdin.read()
    worker.stdin.close()
    worker.wait()
else:
    spent, done = [], threading.Event()

    def side():
        burn()
        spent.append(time.thread_time_ns())
        done.set()
        threading.Event().wait()  # alive, so that its time still counts

    threading.Thread(target=side, daemon=True).start()
    burn()
    done.wait()
    print(time.thread_time_ns(), spent[0], flush=True)
    sys.stdin.read()
"""


def test_a_session_counts_each_process_and_thread_and_only_its_own(tmp_path: Path) -> None:
    # Started under a name with spaces and parentheses: /proc's stat line holds it in parentheses.
    odd = tmp_path / "rtb) 1 2 (x"
    odd.symlink_to(sys.executable)
    leader = subprocess.Popen([str(odd), "-c", SESSION, "leader", SESSION], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert leader.stdout is not None
        worker_main, worker_side, leader_main = map(int, leader.stdout.readline().split())
        ours = time.thread_time_ns()
        spent = cpu.session(leader.pid)
    finally:
        leader.communicate(timeout=60)

    assert worker_main > 0 and worker_side > 0 and leader_main > 0
    # read after each thread reported its own clock, from the same kernel counter
    assert spent.main >= leader_main + worker_main
    assert spent.other >= worker_side
    # The children wait on stdin once they report; had this process been counted, its main thread's time
    # (pytest's, a second or so by now) would show.
    assert spent.main - (leader_main + worker_main) < ours


@pytest.mark.parametrize("flag, policy", [("-b", "batch"), ("-o", "normal")])
def test_a_sessions_scheduling_policies_are_its_threads(flag: str, policy: str) -> None:
    leader = subprocess.Popen(["chrt", flag, "0", sys.executable, "-c", SESSION, "leader", SESSION],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert leader.stdout is not None
        leader.stdout.readline()  # every thread has started
        assert cpu.policies(leader.pid) == [policy]
    finally:
        leader.communicate(timeout=60)


def test_a_sessions_context_switches_are_its_threads() -> None:
    leader = subprocess.Popen([sys.executable, "-c", SESSION, "leader", SESSION], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert leader.stdout is not None
        leader.stdout.readline()  # each of its three threads has blocked at least once by now
        assert cpu.switches(leader.pid) >= 3
    finally:
        leader.communicate(timeout=60)


def test_a_session_with_no_process_spent_nothing() -> None:
    assert cpu.session(os.getpid() + 10_000_000) == cpu.Cpu(0, 0)  # above any pid the kernel gives
    assert cpu.switches(os.getpid() + 10_000_000) == 0


def test_stolen_time_is_the_cores_steal_in_nanoseconds() -> None:
    with open("/proc/uptime") as f:
        up_ns = int(float(f.read().split()[0]) * 1e9)
    for core in sorted(os.sched_getaffinity(0)):
        first = cpu.stolen(core)
        assert 0 <= first <= cpu.stolen(core)
        assert first <= up_ns + 10**9  # no more than the machine has been up (ticks round up to 10 ms)


def test_stolen_time_of_a_core_the_machine_lacks_is_an_error() -> None:
    core = (os.cpu_count() or 1) + 100
    with pytest.raises(ValueError, match=f"no line for CPU {core}"):
        cpu.stolen(core)
