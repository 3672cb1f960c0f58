"""Granian serving an app factory: an address or a data directory in use refused before start-up, and a
stop asked for while a worker still starts not lost.

A stop (SIGTERM, or SIGINT for Ctrl-C) reaches a worker from a supervisor or relayed by granian's main
process. Two windows of a worker's start-up lost it, and the main then waited for the worker forever:

- From its fork until it has built the app and given its event loop handlers of its own: a second or
  more (the bidder compiles its kernels, the control plane opens its database). The worker inherits the
  main's handlers, which only set a flag in its copy of the main's state, read by nobody. So each
  worker starts with the default action for SIGTERM: one that arrives then ends it at once. It has
  answered nothing yet, so nothing is lost. SIGINT it ignores until then: Ctrl-C reaches the whole
  process group, and the main relays it as a SIGTERM, having first marked the worker as stopped by
  itself (a worker ending on its own is logged as crashed, and the main then exits 1).
- Within that, from the fork until those actions are set: Python discards the signals its handler
  caught in a child before it runs the child's at-fork hooks, and a main stopped just as it spawns a
  worker sends its SIGTERM then. So the stop signals are blocked in the thread that forks, from just
  before the fork, and the worker unblocks them once its actions are set: one sent meanwhile waits in
  the kernel and then takes effect.
- With uvloop (the bidder), whenever the loop is not running once it has its handlers: between its
  runs (the app's start, then serving) and before the first. uvloop takes a signal through its
  wakeup socket only while it runs, and otherwise only notes it, to act on it when the next signal
  comes. So each worker's wakeup socket is one of ours, which uvloop puts back between its runs, and
  the app hands it to its loop (``relay_stop_signals``), which raises what it holds again, and the loop
  then takes it. asyncio (the control plane) keeps its own wakeup socket from the moment it has handlers,
  so it needs no relay.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import socket
from pathlib import Path
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Relay:
    """The worker's wakeup socket: the stop signals Python noted in it while the loop was not running."""

    def __init__(self) -> None:
        self.inbox, self._outbox = socket.socketpair()
        self.inbox.setblocking(False)
        self._outbox.setblocking(False)
        signal.set_wakeup_fd(self._outbox.fileno(), warn_on_full_buffer=False)

    def raise_again(self) -> None:
        try:
            held = self.inbox.recv(256)
        except BlockingIOError:
            return
        for signum in held:  # the wakeup socket carries one byte, the signal's number, per signal
            if signum in STOP_SIGNALS:
                signal.raise_signal(signum)  # the loop now runs: its own wakeup socket takes it


_relay: _Relay | None = None
_mask: set[int | signal.Signals] = set()  # the forking thread's signal mask before ``_before_fork``


def _before_fork() -> None:
    global _mask
    _mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _after_fork_in_parent() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, _mask)


def _worker_start() -> None:
    global _relay
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _relay = _Relay()
    signal.pthread_sigmask(signal.SIG_SETMASK, _mask)  # a stop that came since the fork acts now


def relay_stop_signals(loop: asyncio.AbstractEventLoop) -> None:
    """In a worker that ``serve_factory`` started, and while ``loop`` runs: the stop signals that came
    while it was not running, now and from now on, are raised again as soon as it runs. Elsewhere (an app
    built in process) this does nothing."""
    if _relay is not None:
        loop.add_reader(_relay.inbox.fileno(), _relay.raise_again)


def ensure_free(host: str, port: int, what: str) -> None:
    """Refuse an address that something else already listens on, saying what it was for, before any
    start-up work: granian would fail only after its own start-up, with a Rust backtrace."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as granian binds: TIME_WAIT is no conflict
        try:
            s.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port} ({what}): {exc.strerror}") from None


_held: dict[Path, int] = {}  # data-directory locks this process holds, for its life


def hold_data_dir(data_dir: str, who: str) -> None:
    """One ``who`` ("bidder", "control plane") per data directory, for the life of this process and its
    workers. Two bidders on one directory would each reserve every budget in full and append to one
    ledger; two control planes would each push, plan and send every webhook. The lock is the kernel's
    (``flock`` on ``<dir>/<who>.lock``): it ends with the last process that holds it, even killed, so it
    is never stale, and granian's workers, forked, hold it with the main."""
    path = (Path(data_dir) / f"{who.replace(' ', '-')}.lock").resolve()
    if path in _held:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise OSError(f"data directory {data_dir} is in use by another {who} (pid {holder}): run one "
                      f"{who} per data directory, or give this one its own (--data-dir, RTB_DATA_DIR)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[path] = fd


def serve_factory(target: str, **options: Any) -> None:
    """Serve the app factory ``target`` ("module:function") with granian ``options``, over HTTP/1.1,
    without websockets or access logs, until SIGINT or SIGTERM."""
    from granian import Granian
    from granian.constants import HTTPModes

    ensure_free(options["address"], options["port"], "--bind")
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_worker_start)
    Granian(target=target, factory=True, http=HTTPModes.http1, websockets=False, log_access=False,
            **options).serve()
