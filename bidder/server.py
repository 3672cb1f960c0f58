"""Running the bidder under granian: the app factory each worker calls, and the launcher."""

from __future__ import annotations

import gc
import logging
import os

from bidder.app import App
from bidder.launch import hold_data_dir, serve_factory
from bidder.service import Bidder
from bidder.settings import Settings, from_env, to_env
from bidder.upkeep import Upkeep

log = logging.getLogger("rtb.bidder")


def create_app() -> App:
    """Granian's factory target: builds the worker's state from ``RTB_*`` and compiles the kernels
    before the worker accepts a connection.

    Then it freezes the heap (``gc.freeze``), again after each campaign or model reload: the campaigns,
    the index and the compiled kernels live as long as the worker, and with 10,000 campaigns a full
    garbage collection walking them took 250 ms here (0 once frozen), a pause in the middle of some
    request. Frozen objects are still freed when nothing refers to them any more; only cycles among
    them would stay."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per poll of the other side
    bidder = Bidder(from_env())
    bidder.warm_up()
    gc.freeze()
    s = bidder.settings
    # Said by the worker, whose logging is set up: where it answers, how, and where its notices go.
    log.info("bidder ready on http://%s (%s, scheduling %s): %d campaigns, %d lines, model %s; notices under %s",
             s.bind, s.interface, s.scheduling, len(bidder.engine.index.campaigns), bidder.engine.index.n,
             bidder.engine.model.version, s.notice_base)
    upkeep = Upkeep(bidder, after_load=gc.freeze) if s.control_url or s.model else None
    return App(bidder, upkeep)


def schedule(policy: str) -> None:
    """Run this thread, and the workers and threads it starts from now on, under the kernel's ``policy``:
    "batch" (SCHED_BATCH) or "normal" (SCHED_OTHER).

    A request passes between three threads of the worker: granian's runtime reads it, a second hands it
    over holding the GIL, the event loop runs the app, and the runtime writes the answer. Under
    SCHED_OTHER each of them, woken, takes the core from the one running, and on a worker with a core
    of its own that came to 4.5 (RSGI) to 7.0 (ASGI) context switches a request here. Under SCHED_BATCH
    a woken thread waits until the running one blocks, so each takes every request that is ready in
    turn: 0.2-0.3 switches a request, about twice the requests a second, and lower latency at a given
    rate (README, Benchmarks). An unprivileged process may choose either; where the system refuses (a
    seccomp profile), the bidder runs as it was started and says so."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH if policy == "batch" else os.SCHED_OTHER, os.sched_param(0))
    except OSError as exc:
        log.warning("scheduling %s refused (%s): the bidder runs under the policy it was started with",
                    policy, exc.strerror)


def serve(settings: Settings, target: str = "bidder.server:create_app") -> None:
    """Serve ``target``, an app factory like ``create_app`` (the benchmark serves a variant of it)."""
    from granian.constants import Interfaces, Loops

    if settings.workers > 1:
        raise ValueError(
            f"--workers {settings.workers}: budgets are kept in one process until they are shared "
            "across processes, so more than one worker would multiply every budget; run one worker "
            "per bidder process instead"
        )
    hold_data_dir(settings.data_dir, "bidder")
    schedule(settings.scheduling)
    os.environ.update(to_env(settings))
    serve_factory(
        target,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.RSGI if settings.interface == "rsgi" else Interfaces.ASGI,
        workers=settings.workers,
        loop=Loops.uvloop,
        backlog=2048,
    )
