"""The decision timed inside a loaded server, with its thread's CPU clock.

``python3 -m bench.inside`` serves the bidder's app (``bench.ceiling``'s) with the engine's place taken
by timed work: the decision itself (``decision``), the decision with one of its steps answered at once
(``decision-without:STEP``, STEP one of ``STEPS``: what is left says how much of it that step is), the
request's decoding alone (``decode``), nothing (``none``: what the timing costs), a fixed loop of Python
additions (``loop:N``: little code, no memory; ``rtb bench``'s constant work is 300) or a read of memory
(``read:KIB``: memory, next to no code). Each runs in its own server on CPU 0 under wrk
from CPU 1, in interleaved rounds, and back to back in this process on CPU 0. It prints, per work, its
CPU per call in the server and in process, net of the timing's own, and what the server spent per
request on the app's thread and on granian's: the difference is what serving requests around a piece of
work does to it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, cast

from bench import ceiling, cpu, wrk
from bench.cli import (
    INTERFACES,
    LOAD_CPU,
    SAMPLE,
    SERVER_CPU,
    BenchError,
    Server,
    _bidder_env,
    _bidder_here,
    _pinned,
    _ready,
    cpu_per_request,
)
from bidder.app import App
from bidder.decide import Outcome
from bidder.engine import Engine

WORK = "BENCH_INSIDE_WORK"  # decision | decision-without:STEP | decode | none | loop:N | read:KIB
TALLY = "BENCH_INSIDE_TALLY"  # the file the server keeps its running count of calls and CPU time in
CONNECTIONS = 32  # wrk's, as in rtb bench
# What ``decision-without`` may leave out: the response with its signed notice URLs, the budget gate's
# admission (pacing and reservations), the breaker's and the fallback pricer's bookkeeping.
STEPS = ("response", "admission", "breaker")


def parse_work(work: str) -> tuple[str, str]:
    kind, _, arg = work.partition(":")
    try:
        if kind in ("decision", "decode", "none") and not arg or kind == "decision-without" and arg in STEPS or (
                kind == "read" and float(arg) > 0 or kind == "loop" and int(arg) > 0):
            return kind, arg
    except ValueError:
        pass
    raise BenchError(f"work {work!r}: expected decision, decision-without:{'|'.join(STEPS)}, decode, none, "
                     "loop:N or read:KIB (a positive number)")


class Timed(ceiling.Decided):
    """In the engine's place: does ``work`` for each bid request and times it with the thread's CPU
    clock; every 1,024 calls it writes the totals so far to ``tally`` (one write, no per-call I/O)."""

    def __init__(self, engine: Engine, body: bytes, work: str, tally: str) -> None:
        super().__init__(engine, body)
        kind, arg = parse_work(work)
        self._kind = kind
        self._decides = kind.startswith("decision")  # decided once, not tested on every timed call
        if kind == "decision-without":
            _leave_out(engine, arg, self._answer.body)
        self._loop = range(int(arg) if kind == "loop" else 0)
        self._memory = bytearray(int(float(arg) * 1024) if kind == "read" else 0)
        self._tally = os.open(tally, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        self.calls = self.cpu_ns = 0

    def bid(self, body: bytes, started_ns: int | None = None) -> Outcome:
        t0 = time.thread_time_ns()
        if self._decides:
            out = self._engine.bid(body, started_ns)
        else:
            if self._kind == "decode":
                self._engine._decoder.decode(body)
            elif self._loop:
                x = 0
                for j in self._loop:
                    x += j
            elif self._memory:
                self._memory.find(b"\x01")  # reads all of it: it holds only zeros
            out = super().bid(body, started_ns)
        self.cpu_ns += time.thread_time_ns() - t0
        self.calls += 1
        if not self.calls & 1023:
            os.pwrite(self._tally, b"%d %d\n" % (self.calls, self.cpu_ns), 0)  # only ever grows
        return out

    def close(self) -> None:
        os.close(self._tally)


class _Written:
    """The response step answered at once: each bid's text empty, the response the one given."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def bid(self, *args: object) -> bytes:
        return b""

    def response(self, rid: str, bids: object, cur: str) -> bytes:
        return self._answer


class _Closed:
    """The breaker always closed, and the fallback pricer's history not kept."""

    def allow(self) -> bool:
        return True

    def record_success(self, token: object, seconds: float) -> None:
        pass

    def record_failure(self, token: object) -> None:
        pass

    def observe(self, value: float) -> None:
        pass


def _admitted(campaign: int, key: int, micros: int, serial: int) -> None:
    return None  # admitted: nothing paced, nothing reserved


def _leave_out(engine: Engine, step: str, answer: bytes) -> None:
    """``step`` of ``engine``'s decision answered at once, for ``decision-without:STEP``; the bidder's
    status still reads its real breaker, fallback pricer and budgets."""
    e = cast(Any, engine)
    if step == "response":
        e._writer = _Written(answer)
    elif step == "admission":
        e.budget.admit = _admitted
    else:
        e.breaker = e.fallback = _Closed()


def create_app() -> App:
    return ceiling.create_app(lambda engine, body: Timed(engine, body, os.environ[WORK], os.environ[TALLY]))


@contextmanager
def _local(campaigns: int, body: bytes, works: list[str], tmp: Path) -> Iterator[dict[str, Timed]]:
    """The works in this process, each on a bidder like a server's: its own, as each server has, since a
    ``decision-without`` changes its engine."""
    with ExitStack() as stack:
        timed = {w: Timed(stack.enter_context(_bidder_here(campaigns)).engine, body, w, str(tmp / f"local-tally-{n}"))
                 for n, w in enumerate(works)}
        for t in timed.values():
            stack.callback(t.close)
        yield timed


def _local_round(timed: Timed, body: bytes, calls: int) -> float:
    """The work's mean CPU per call over ``calls`` back to back on CPU 0."""
    timed.calls = timed.cpu_ns = 0
    with _pinned(SERVER_CPU):
        for _ in range(calls):
            timed.bid(body)
    return timed.cpu_ns / 1e3 / calls


def _tally(path: Path) -> tuple[int, int]:
    text = path.read_text() if path.exists() else ""
    calls, ns = text.split() if text.strip() else ("0", "0")
    return int(calls), int(ns)


def _round(s: Server, tally: Path, lua: Path, duration: float) -> dict[str, float]:
    (calls0, ns0), before = _tally(tally), cpu.session(s.proc.pid)
    r = wrk.run(s.url, lua, duration, CONNECTIONS, cpu=LOAD_CPU)
    (calls1, ns1), after = _tally(tally), cpu.session(s.proc.pid)
    if r.status or r.socket_errors or calls1 <= calls0:
        raise BenchError(f"{s.name}: {r.status} bad answers, {r.socket_errors} socket errors, "
                         f"{calls1 - calls0} calls tallied")
    c = cpu_per_request(before, after, r.requests)
    return {"rps": r.rps, "call_us": (ns1 - ns0) / 1e3 / (calls1 - calls0), "app_us": c["main"],
            "granian_us": c["other"]}


def measure(interfaces: list[str], works: list[str], campaigns: int, duration: float, repeat: int,
            warm_up: float, calls: int) -> list[dict[str, Any]]:
    """Medians over ``repeat`` rounds, per interface and work, each round also timing ``calls`` of each
    work in process; ``net`` figures are less the ``none`` work's (the clock reads), where ``none`` was
    measured too."""
    body = SAMPLE.read_bytes()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="rtb-inside-") as tmp_name:
        tmp = Path(tmp_name)
        local = stack.enter_context(_local(campaigns, body, works, tmp))
        for w in works:
            _local_round(local[w], body, calls)  # warm-up
        lua = tmp / "post.lua"
        lua.write_text(wrk.script(body))
        env = _bidder_env(tmp, campaigns, body)
        servers: list[tuple[str, str, Server, Path]] = []
        for i in interfaces:
            for w in works:
                data, tally = tmp / f"data-{i}-{w.replace(':', '-')}", tmp / f"tally-{i}-{w.replace(':', '-')}"
                data.mkdir()
                s = Server(f"{i} {w}", [sys.executable, "-m", "bench.inside", "--serve", i],
                           ["bidder ready", "Started worker"],
                           {**env, "RTB_DATA_DIR": str(data), WORK: w, TALLY: str(tally)})
                stack.callback(s.stop)
                servers.append((i, w, s, tally))
        _ready([s for _, _, s, _ in servers], body, lua, warm_up, CONNECTIONS)
        # In process and in the servers by turns, so that a slow spell of the machine falls on both.
        rounds: dict[tuple[str, str], list[dict[str, float]]] = {(i, w): [] for i, w, _, _ in servers}
        local_rounds: dict[str, list[float]] = {w: [] for w in works}
        for _ in range(repeat):
            for w in works:
                local_rounds[w].append(_local_round(local[w], body, calls))
            for i, w, s, tally in servers:
                rounds[i, w].append(_round(s, tally, lua, duration))
    here = {w: statistics.median(ts) for w, ts in local_rounds.items()}
    rows: list[dict[str, Any]] = [
        {"interface": i, "work": w, "rounds": rs,
         **{k: statistics.median(r[k] for r in rs) for k in ("rps", "call_us", "app_us", "granian_us")}}
        for (i, w), rs in rounds.items()]
    clock = {r["interface"]: r["call_us"] for r in rows if r["work"] == "none"}
    for r in rows:
        r["net_us"] = r["call_us"] - clock[r["interface"]] if r["interface"] in clock else None
        r["in_process_rounds"] = local_rounds[r["work"]]
        r["in_process_us"] = here[r["work"]]
        r["in_process_net_us"] = here[r["work"]] - here["none"] if "none" in here else None
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    def us(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} us"

    head = ("interface", "work", "req/s", "CPU a call", "net of none", "in process, net", "app thread a request",
            "granian a request")
    body = [(r["interface"], r["work"], f"{r['rps']:,.0f}", us(r["call_us"]), us(r["net_us"]),
             us(r["in_process_net_us"]), us(r["app_us"]), us(r["granian_us"])) for r in rows]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                     for row in (head, *body))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python3 -m bench.inside", description=__doc__.split("\n")[0])
    p.add_argument("--work", default="none,decision,loop:300,read:256",
                   help=f"comma-separated: decision, decision-without:{'|'.join(STEPS)}, decode, none, loop:N, "
                        "read:KIB (default: %(default)s)")
    p.add_argument("--interface", default=",".join(INTERFACES), help="asgi, rsgi or both (default: both)")
    p.add_argument("--campaigns", type=int, default=1000)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of wrk per round")
    p.add_argument("--repeat", type=int, default=2, help="interleaved rounds")
    p.add_argument("--quick", action="store_true", help="one round of 1 s, for a smoke test")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    p.add_argument("--serve", choices=INTERFACES, help=argparse.SUPPRESS)  # a server of the run's
    p.add_argument("--bind", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        from bidder.server import serve
        from bidder.settings import from_env

        serve(from_env(interface=args.serve, bind=args.bind), target="bench.inside:create_app")
        return 0
    if not {SERVER_CPU, LOAD_CPU} <= os.sched_getaffinity(0):
        raise BenchError(f"the servers go on CPU {SERVER_CPU} and wrk on CPU {LOAD_CPU}; this process may "
                         f"only use CPUs {sorted(os.sched_getaffinity(0))}")
    for w in args.work.split(","):
        parse_work(w)
    interfaces = args.interface.split(",")
    if not set(interfaces) <= set(INTERFACES):
        raise BenchError(f"--interface {args.interface}: expected asgi, rsgi or both")
    duration, repeat, warm_up, calls = (1.0, 1, 1.0, 1000) if args.quick else (args.duration, args.repeat, 3.0, 20_000)
    rows = measure(interfaces, args.work.split(","), args.campaigns, duration, repeat, warm_up, calls)
    print(_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BenchError as exc:
        sys.exit(f"bench.inside: {exc}")
