"""App factories for granian workers stopped at chosen moments of their start-up (``test_launch``)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from bidder.app import App
from bidder.server import create_app


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def held() -> None:
    """A worker held in its factory without end, as one compiling its kernels or opening its database
    is for a while: it opens the FIFO named by ``HOLD_FIFO``, which nobody writes to, so the open blocks
    (and goes on blocking after a signal whose handler returns, as Python retries an interrupted call)."""
    _say("held in start-up")
    with open(os.environ["HOLD_FIFO"], "rb"):
        pass
    raise AssertionError("the hold was released")


class _Signalled:
    """The bidder's app (RSGI), whose worker gets a SIGTERM while its loop does not run, with its
    handlers in place: before the app's start or after it, before serving. It says when it stops."""

    def __init__(self, app: App, before_start: bool) -> None:
        self.app = app
        self.before_start = before_start

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.before_start:
            signal.raise_signal(signal.SIGTERM)
        self.app.__rsgi_init__(loop)
        if not self.before_start:
            signal.raise_signal(signal.SIGTERM)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        await self.app.__rsgi__(scope, protocol)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.app.__rsgi_del__(loop)
        _say("the worker stopped")


def signalled_before_start() -> _Signalled:
    return _Signalled(create_app(), before_start=True)


def signalled_after_start() -> _Signalled:
    return _Signalled(create_app(), before_start=False)
