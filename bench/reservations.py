"""The decision with reservations held in aggregate (``shield.Holds``, what the bidder does) against the
same decision reserving one by one (``reserve_all``, what it did before), in one process.

Run: taskset -c 0 python3 -m bench.reservations [--campaigns 1000] [--open 1000000] [--blocks 300]

The two alternate in blocks of 200 decisions on the IAB simple banner, so that both see the same moments
of a noisy machine; the medians of the block means are compared. ``--open`` reservations are made one
by one first, against the campaign that wins: what a bidder without loss notices holds after 10 minutes
at about 1,700 bids a second. (The one-by-one side also formats a bid id per reservation, about 0.4 us,
which the engine now only does for the winner.)
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import secrets
import statistics
import tempfile
import time

from bench import synth
from bench.cli import SAMPLE
from bidder.budget import BudgetGate
from bidder.campaign import parse_campaigns
from bidder.service import Bidder
from bidder.settings import from_env
from shield import reserve_all

BLOCK = 200


class OneByOne:
    """The gate's ``admit`` with the reservation made one by one, by bid id, as before ``Holds``."""

    def __init__(self, gate: BudgetGate) -> None:
        self.gate = gate
        self.ids = map(f"{gate.prefix}{{:x}}".format, itertools.count(1))

    def admit(self, campaign: int, key: int, micros: int, serial: int) -> str | None:
        pacer = self.gate._pacer_of[campaign]
        if pacer is not None and not pacer.allow(self.gate._rng()):
            return "pacing"
        return None if reserve_all(self.gate._group[campaign], next(self.ids), micros) else "budget"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--campaigns", type=int, default=1000)
    p.add_argument("--open", type=int, default=1_000_000)
    p.add_argument("--blocks", type=int, default=300)
    args = p.parse_args()
    body = SAMPLE.read_bytes()
    campaigns = parse_campaigns(json.dumps({"campaigns": synth.campaigns(args.campaigns)}).encode())
    with tempfile.TemporaryDirectory() as data:
        b = Bidder(from_env({}, data_dir=data, notice_secret=secrets.token_hex(32)), campaigns)
        b.warm_up()
        engine, gate = b.engine, b.budget
        old = OneByOne(gate)
        engine.budget = old  # type: ignore[assignment]
        engine.bid(body)
        winner = max(range(len(gate._group)), key=lambda c: gate._group[c][0].stats().live_reservations)
        for _ in range(args.open):
            reserve_all(gate._group[winner], next(old.ids), 1)
        gc.freeze()  # as the server does after loading

        def block() -> float:
            t = time.perf_counter_ns()
            for _ in range(BLOCK):
                engine.bid(body)
            return (time.perf_counter_ns() - t) / BLOCK / 1000

        held: list[float] = []
        one_by_one: list[float] = []
        for i in range(args.blocks + 5):
            engine.budget = gate
            a = block()
            engine.budget = old  # type: ignore[assignment]
            c = block()
            if i >= 5:  # warm-up blocks
                held.append(a)
                one_by_one.append(c)
        b.close()
    h, o = statistics.median(held), statistics.median(one_by_one)
    print(f"{args.campaigns} campaigns, {args.open:,} reservations open one by one, {args.blocks} blocks of {BLOCK}")
    print(f"decision, held in aggregate: {h:.2f} us; one by one: {o:.2f} us; ratio {h / o:.3f}")


if __name__ == "__main__":
    main()
