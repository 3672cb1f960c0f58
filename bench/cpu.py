"""A server's CPU time, read from ``/proc``: every thread of every process in its session, in nanoseconds;
and the time the machine's hypervisor took its core.

Throughput says how long a request took on the server's core, not whether the core was busy all that
time nor which thread spent it. Granian runs the app on each worker's main thread (its event loop) and
does the HTTP work on Rust threads beside it, so the split tells the app's cost from the server's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

TICK = os.sysconf("SC_CLK_TCK")  # /proc/stat's unit: clock ticks a second


class Cpu(NamedTuple):
    main: int  # ns on the processes' main threads: the worker's event loop, running the app
    other: int  # ns on their other threads: granian's runtime and blocking threads


def stolen(core: int) -> int:
    """ns the hypervisor ran something else while ``core`` (a virtual CPU) had work: /proc/stat's steal,
    kept in clock ticks. On a shared machine it tells a server that lost its core from one that idled."""
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"cpu%d " % core):
                return int(line.split()[8]) * 1_000_000_000 // TICK
    raise ValueError(f"/proc/stat has no line for CPU {core}")


def _threads(sid: int) -> Iterator[tuple[str, str]]:
    """(pid, tid) of every thread of every process in session ``sid`` (a server started with
    ``start_new_session``: its master and its workers)."""
    for proc in os.scandir("/proc"):
        if not proc.name.isdigit():
            continue
        try:
            with open(f"/proc/{proc.name}/stat", "rb") as f:
                # after the command name, which may hold spaces and ')': state, ppid, pgrp, session
                if int(f.read().rsplit(b")", 1)[1].split()[3]) != sid:
                    continue
            tids = [task.name for task in os.scandir(f"/proc/{proc.name}/task")]
        except (FileNotFoundError, ProcessLookupError):  # exited while we read
            continue
        for tid in tids:
            yield proc.name, tid


def session(sid: int) -> Cpu:
    """CPU time so far of the threads of every process in session ``sid``. A thread that has exited no
    longer counts."""
    main = other = 0
    for pid, tid in _threads(sid):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                ns = int(f.read().split()[0])  # time on a CPU; waiting and sleeping excluded
        except (FileNotFoundError, ProcessLookupError):
            continue
        if tid == pid:
            main += ns
        else:
            other += ns
    return Cpu(main, other)


def switches(sid: int) -> int:
    """Context switches so far of the threads of every process in session ``sid``, voluntary (a thread
    blocked) and not (the kernel took its core for another)."""
    total = 0
    for pid, tid in _threads(sid):
        try:
            with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
                total += sum(int(line.split()[1]) for line in f if b"ctxt_switches:" in line)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


POLICIES = {os.SCHED_OTHER: "normal", os.SCHED_BATCH: "batch", os.SCHED_IDLE: "idle", os.SCHED_FIFO: "fifo",
            os.SCHED_RR: "rr"}


def policies(sid: int) -> list[str]:
    """The kernel scheduling policies the threads of session ``sid`` run under, by name."""
    found = set()
    for _, tid in _threads(sid):
        try:
            found.add(POLICIES.get(policy := os.sched_getscheduler(int(tid)), str(policy)))
        except ProcessLookupError:
            continue
    return sorted(found)
