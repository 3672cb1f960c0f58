"""A campaign reload with 10,000 campaigns, as the upkeep does it, against loading on the bidding thread.

Run: python3 -m pytest bench/bench_reload.py --benchmark-only -p no:cacheprovider
The upkeep builds a pushed campaign set in a worker thread (``Engine.prepare``, see ``_background_build``)
while the event loop goes on bidding, then puts it in place between two requests (``Engine.install``).
``extra_info``: the build's and the install's milliseconds, the bids made meanwhile on the main thread
(how many, their median and maximum), and ``Engine.load`` on the bidding thread, the stall it replaces.
"""

from __future__ import annotations

import gc
import json
import secrets
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench import synth
from bench.cli import SAMPLE
from bidder.campaign import parse_campaigns
from bidder.engine import Prepared
from bidder.service import Bidder
from bidder.settings import from_env
from bidder.upkeep import _background_build


def test_reload_10k_campaigns_off_the_loop(benchmark: Any, tmp_path: Path) -> None:
    body = SAMPLE.read_bytes()
    campaigns = parse_campaigns(json.dumps({"campaigns": synth.campaigns(10_000)}).encode())
    bidder = Bidder(from_env({}, data_dir=str(tmp_path), notice_secret=secrets.token_hex(32)), campaigns)
    bidder.warm_up()
    gc.freeze()  # as the worker does
    engine = bidder.engine
    info: dict[str, float] = {}

    def reload() -> None:
        built: list[Prepared] = []
        done = threading.Event()

        def build() -> None:
            t = time.perf_counter()
            built.append(_background_build(engine.prepare, campaigns))
            info["build_ms"] = (time.perf_counter() - t) * 1e3
            done.set()

        worker = threading.Thread(target=build)
        worker.start()
        latencies = []
        while not done.is_set():
            t = time.perf_counter()
            engine.bid(body)
            latencies.append(time.perf_counter() - t)
        worker.join()
        t = time.perf_counter()
        engine.install(built[0])
        info["install_ms"] = (time.perf_counter() - t) * 1e3
        info.update(bids_meanwhile=len(latencies), bid_median_ms=statistics.median(latencies) * 1e3,
                    bid_max_ms=max(latencies) * 1e3)

    benchmark.pedantic(reload, rounds=1, iterations=1)
    gc.freeze()
    t = time.perf_counter()
    engine.load(campaigns)
    info["load_on_the_bidding_thread_ms"] = (time.perf_counter() - t) * 1e3
    assert engine.bid(body).status == 200
    benchmark.extra_info.update(info)
    bidder.close()
    gc.unfreeze()
