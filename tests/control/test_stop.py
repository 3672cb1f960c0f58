"""Stopping the control plane's process under ``rtb up``: SIGTERM, and SIGKILL for what outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from control.server import stop
from tests.process import exits

# A process (and a child of its own) that ignore SIGTERM: what the kill after the grace is for.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
kid = subprocess.Popen([sys.executable, "-c",
                        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
print(kid.pid, flush=True)
time.sleep(600)
"""


def test_a_child_that_ignores_sigterm_is_killed_with_its_own_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, start_new_session=True)
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    stop(child, grace=0.5)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert exits(grandchild)


# A main process that stops its worker on SIGTERM, as granian's does; the worker says who signalled it.
WORKER = (
    "import signal\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
    "print('ready', flush=True)\n"
    "print(signal.sigwaitinfo({signal.SIGTERM}).si_pid, flush=True)\n"
)
RELAYING = f"""
import signal, subprocess, sys
def relay(*_):
    worker.terminate()
    sys.exit(worker.wait())
signal.signal(signal.SIGTERM, relay)
worker = subprocess.Popen([sys.executable, "-c", {WORKER!r}])
signal.pause()
"""


def test_sigterm_goes_to_the_main_process_which_stops_its_worker() -> None:
    # Granian's main marks a worker it stops as stopped by itself; a worker that got the SIGTERM first,
    # from the group, would be logged as crashed.
    child = subprocess.Popen([sys.executable, "-c", RELAYING], stdout=subprocess.PIPE, start_new_session=True)
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    stop(child, grace=30)
    assert int(child.stdout.readline()) == child.pid
    child.stdout.close()
    assert child.returncode == 0


def test_a_child_that_stops_on_sigterm_is_not_killed() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"],
                             stdout=subprocess.PIPE, start_new_session=True)
    assert child.stdout is not None
    assert child.stdout.readline() == b"up\n"
    stop(child, grace=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGTERM
    assert not os.path.exists(f"/proc/{child.pid}")
