"""Real server processes for end-to-end tests, synchronised on what they print, never on sleeps."""

from __future__ import annotations

import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

# What a granian server prints once its worker serves: our app's line, then granian's own.
BIDDER_READY = ("bidder ready", "Started worker-1")


def exits(pid: int, within: float = 30.0) -> bool:
    """Whether the process exits within ``within`` seconds. A SIGKILL takes effect a moment after it is
    sent, so this waits on a pidfd, which turns readable when the process exits: no sleeping, and no
    race with the kernel (reading /proc right after the kill failed once in a CI run)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], within)[0])
    finally:
        os.close(fd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running(args: Sequence[str], ready: Sequence[str] = BIDDER_READY, env: dict[str, str] | None = None,
            timeout: float = 90.0) -> Iterator[list[str]]:
    """Run ``python -m control.cli *args`` until the block ends. Returns once its output has shown
    each of ``ready`` in order; the lines seen so far are yielded, and keep growing."""
    with started([sys.executable, "-m", "control.cli", *args], ready, env, timeout) as (_, lines):
        yield lines


@contextmanager
def started(argv: Sequence[str], ready: Sequence[str], env: dict[str, str] | None = None,
            timeout: float = 90.0) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Run ``argv`` until the block ends, as ``running`` does, and yield the process too. It runs in its
    own process group, which is stopped whole: granian's workers go with their master."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})}, start_new_session=True,
    )
    lines: list[str] = []
    seen: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            seen.put(line)
        seen.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        wanted = list(ready)
        while wanted:
            try:
                line = seen.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {wanted[0]!r} within {timeout}s:\n{''.join(lines)}") from None
            if line is None:
                raise AssertionError(f"process exited ({proc.wait()}) before {wanted[0]!r}:\n{''.join(lines)}")
            if wanted[0] in line:
                wanted.pop(0)
        yield proc, lines
    finally:
        _stop(proc)
        reader.join(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()


def _stop(proc: subprocess.Popen[str]) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
