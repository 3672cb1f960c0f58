"""The bidder's HTTP ceiling: its own app and server with the decision taken out.

``python3 -m bench.ceiling asgi|rsgi`` serves what ``rtb bidder`` serves (same app, same granian
settings, same ``RTB_*`` configuration), except that every bid request gets the answer the engine gave
the benchmark's request once, at start. Its throughput is the most the bidder could reach with a
decision that cost nothing, and the difference of the two, per request, is what the decision costs
inside a loaded server, where it shares the core and the caches with the HTTP work (``rtb bench
--ceiling`` reports both).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from bidder.app import App
from bidder.decide import Outcome
from bidder.engine import Engine

REQUEST = "BENCH_CEILING_REQUEST"  # the request body's file; not RTB_*, which the settings check


class Decided:
    """In the engine's place: answers every bid request with the answer the engine gave ``body``,
    counting it as the engine does (``rtb bench`` checks the counts); the rest goes to the engine."""

    def __init__(self, engine: Engine, body: bytes) -> None:
        self._engine = engine
        self._stats = engine.stats
        self._answer = engine.bid(body)

    def bid(self, body: bytes, started_ns: int | None = None) -> Outcome:
        stats = self._stats
        stats.requests += 1
        if self._answer.status == 200:
            stats.bids += 1
        return self._answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def create_app(decided: Callable[[Engine, bytes], Decided] = Decided) -> App:
    """The bidder's app with ``decided(engine, request body)`` in its engine's place (``bench.inside``
    passes its timed variant)."""
    from bidder.server import create_app

    app = create_app()
    bidder = app.bidder
    bidder.engine = cast(Engine, decided(bidder.engine, Path(os.environ[REQUEST]).read_bytes()))
    return app


def main(argv: list[str]) -> None:
    from bidder.server import serve
    from bidder.settings import from_env

    p = argparse.ArgumentParser(prog="python3 -m bench.ceiling", description=__doc__.split("\n")[0])
    p.add_argument("interface", choices=["asgi", "rsgi"])
    p.add_argument("--bind", help="HOST:PORT to listen on")
    args = p.parse_args(argv)
    serve(from_env(interface=args.interface, bind=args.bind), target="bench.ceiling:create_app")


if __name__ == "__main__":
    main(sys.argv[1:])
