"""``rtb bench``: the decision in-process, then max throughput (wrk) and open-loop latency over HTTP.

Layout on a 2-core machine: what is measured runs on CPU 0 (the in-process decision, each server with
one worker), what loads it runs on CPU 1 (wrk, the open-loop generator). The servers (the bare ASGI
baseline, the bidder over ASGI and over RSGI, with ``--model`` both again with the learned model, and
with ``--ceiling`` both again with the decision taken out, ``bench.ceiling``, and the bare app over
RSGI) run side by side for the whole run and are measured in interleaved rounds, so slow drift of a
shared machine spreads over all of them instead of one; the learned model's cost is then read as the
fall of its ratio against the priors' ratio from the same run, the decision's cost inside the server as
the time per request it adds to its ceiling, and the rest of the app's as what its ceiling adds to the
bare app of its interface. Each wrk run also reads the server's CPU time (``bench.cpu``): per request,
on the app's thread and on granian's, how busy its core was, and how much of the run the hypervisor
took the core. Every server, the bare apps too, runs under the kernel scheduling policy the bidder runs
under (``--scheduling``, ``bidder.server.schedule``), so that the ratios compare the apps and not that.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import queue
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import ceiling, cpu, host, shared

REPO = shared.REPO
SAMPLE = shared.BANNER
PATH = "/openrtb2/bid"
SERVER_CPU, LOAD_CPU = 0, 1
CHRT = {"batch": "-b", "normal": "-o"}  # the bidder's scheduling policies (bidder.settings), as chrt's flags
INTERFACES = ("asgi", "rsgi")
MODEL = "+model"  # suffix of the servers running the learned model
CEILING = "-ceiling"  # suffix of the bidder's app with the decision taken out (bench.ceiling)
# The bare apps answering a fixed body (bench.baseline), by name: over ASGI the baseline of every ratio; with
# ``--ceiling`` also over RSGI, the most any RSGI app can do here.
BARE = {"baseline": ("asgi", "bench.baseline:app"), "baseline-rsgi": ("rsgi", "bench.baseline:rsgi")}
# The baseline again under SCHED_OTHER, granian's as installed, when the run's policy is another: what the
# policy alone gives a bare app, and what the bidders answer against it.
AS_INSTALLED = "baseline-normal"
PARTS = ("main", "other", "total")  # a server's CPU: its app's thread, granian's threads, both
TARGETS = {"median_us": 15.0, "p99_us": 40.0, "asgi/baseline": 0.85, "rsgi/baseline": 1.0, "model_fall": 0.05}


class BenchError(RuntimeError):
    operator_error = True


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmark the decision and the HTTP server against a bare ASGI app")
    p.add_argument("--campaigns", type=int, default=1000,
                   help="synthetic campaigns loaded (about 5%% match); the decision is also timed with 10x")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per HTTP run")
    p.add_argument("--repeat", type=int, default=3, help="interleaved throughput rounds per server")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")
    p.add_argument("--request", type=Path, default=SAMPLE, help="bid request body (default: the IAB simple banner)")
    p.add_argument("--model", type=Path, help="a CTR model artefact (.json) for the bidder instead of the priors")
    p.add_argument("--ceiling", action="store_true",
                   help="also serve the bidder's app with the decision taken out (its answer made once) and the "
                        "bare app over RSGI, and report what the decision and the rest of the app cost inside "
                        "the loaded server")
    p.add_argument("--scheduling", choices=list(CHRT), default="batch",
                   help="kernel scheduling policy of every server, the bare apps' too (default: the bidder's, batch)")
    p.add_argument("--quick", action="store_true", help="short runs for a smoke test (numbers are rough)")
    p.add_argument("--json", type=Path, help="also write every number and the machine facts to this file")
    p.set_defaults(handler=_bench)


@dataclass(frozen=True)
class Plan:
    campaigns: int
    duration: float
    repeat: int
    connections: int
    calls: int  # timed in-process decisions per campaign count
    warm_up: float  # seconds of untimed wrk load per server before the rounds
    ceiling: bool  # also the bidder's app with the decision taken out
    scheduling: str  # every server's policy: a key of CHRT

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Plan:
        if args.quick:
            return cls(args.campaigns, 1.0, 1, args.connections, 2_000, 1.0, args.ceiling, args.scheduling)
        if args.campaigns < 1 or args.duration <= 0 or args.repeat < 1:
            raise BenchError("--campaigns, --duration and --repeat must be positive")
        return cls(args.campaigns, args.duration, args.repeat, args.connections, 50_000, 2.0, args.ceiling,
                   args.scheduling)


def _bench(args: argparse.Namespace) -> int:
    plan = Plan.from_args(args)
    cpus = os.sched_getaffinity(0)
    if not {SERVER_CPU, LOAD_CPU} <= cpus:
        raise BenchError(f"rtb bench pins the server to CPU {SERVER_CPU} and the load to CPU {LOAD_CPU}; "
                         f"this process may only use CPUs {sorted(cpus)}")
    body = args.request.read_bytes()
    model = str(args.model.resolve()) if args.model else ""
    report: dict[str, Any] = {"machine": _machine(), "plan": plan.__dict__, "request": str(args.request),
                              "model": model or "prior"}
    report["noise_floor"] = _noise_floor(plan.calls)
    report["decision"] = [_decision(n, body, plan.calls, m) for m in (("", model) if model else ("",))
                          for n in (plan.campaigns, 10 * plan.campaigns)]
    with tempfile.TemporaryDirectory(prefix="rtb-bench-") as tmp:
        report.update(_http(plan, body, Path(tmp), model))
    report["machine"]["load_after"] = list(os.getloadavg())
    print(_table(report, plan))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if report["failed"] else 0


def _machine() -> dict[str, Any]:
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "missing"

    try:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk; scripts/test installs it)") from None
    return {
        "nproc": os.cpu_count(),
        "cpu": host.model(),
        "arch": platform.machine(),
        "l2_kib": None if (l2 := host.l2_bytes(SERVER_CPU)) is None else l2 >> 10,
        "python": platform.python_version(),
        **{name: version(name) for name in ("granian", "msgspec", "numba", "numpy", "uvloop")},
        "wrk": wrk.split(" [")[0].removeprefix("wrk ").strip(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_before": list(os.getloadavg()),
    }


@contextmanager
def _pinned(cpu: int) -> Iterator[None]:
    """Run the block on one CPU (this thread only), then give the old set back."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _synthetic_file(n: int, path: Path) -> Path:
    from bench import synth

    path.write_text(json.dumps({"campaigns": synth.campaigns(n)}))
    return path


# --- 1. the decision, in-process ------------------------------------------------------------------


# What is read between two "cold" decisions: twice the server's core's L2, so that each finds its code and
# data where a loaded server leaves them, further out in the caches or in memory; 1 MiB where the
# kernel does not give the L2's size.
COLD_SWEEP_DEFAULT = 1 << 20


def cold_sweep(cpu: int = SERVER_CPU) -> int:
    l2 = host.l2_bytes(cpu)
    return 2 * l2 if l2 else COLD_SWEEP_DEFAULT


@contextmanager
def _bidder_here(n: int, model: str = "") -> Iterator[Any]:
    """A bidder in this process with ``n`` synthetic campaigns and the learned ``model`` artefact or the
    priors, warm and with its heap frozen, as each worker is once warm (``bidder.server.create_app``)."""
    from bidder.campaign import load_campaigns
    from bidder.service import Bidder
    from bidder.settings import from_env

    with tempfile.TemporaryDirectory(prefix="rtb-bench-") as tmp:
        campaigns = load_campaigns(_synthetic_file(n, Path(tmp) / "campaigns.json"))
        bidder = Bidder(from_env({}, data_dir=tmp, notice_secret=secrets.token_hex(32), model=model), campaigns)
        try:
            bidder.warm_up()
            gc.freeze()
            yield bidder
        finally:
            gc.unfreeze()
            bidder.close()


def _decision(n: int, body: bytes, calls: int, model: str) -> dict[str, Any]:
    """The in-process decision with ``n`` campaigns, under the learned ``model`` artefact or the priors:
    back to back (warm caches), then with ``cold_sweep()`` bytes read between two decisions (cold)."""
    import numpy as np

    with _bidder_here(n, model) as bidder:
        bid = bidder.engine.bid
        status = bid(body).status
        if status != 200:
            raise BenchError(f"the bidder answered {status}, not a bid, to the request with {n} campaigns")
        clock = time.perf_counter_ns
        times = [0] * calls
        cold = [0] * (calls // 5)
        swept = cold_sweep()
        sweep = np.ones(swept // 8).sum
        with _pinned(SERVER_CPU):
            for _ in range(max(1000, calls // 10)):
                bid(body)
            for i in range(calls):
                t = clock()
                bid(body)
                times[i] = clock() - t
            for i in range(len(cold)):
                sweep()
                t = clock()
                bid(body)
                cold[i] = clock() - t
        matching = _matching(bidder, body)
    return {"campaigns": n, "model": "learned" if model else "prior", "matching": matching, "calls": calls,
            "status": status, **_percentiles(times),
            "cold": {"calls": len(cold), "swept_bytes": swept, **_percentiles(cold)}}


def _noise_floor(calls: int) -> dict[str, float]:
    """The machine's own spread: a fixed loop of Python additions (about as long as the decision's
    target median here) timed as the decision is. Its p99 over its median is the least the decision's
    can be on this machine at this time, whatever the code."""
    clock = time.perf_counter_ns
    times = [0] * calls
    with _pinned(SERVER_CPU):
        for i in range(calls):
            t = clock()
            x = 0
            for j in range(300):
                x += j
            times[i] = clock() - t
    return _percentiles(times)


def _percentiles(ns: list[int]) -> dict[str, float]:
    ns = sorted(ns)
    return {"median_us": ns[len(ns) // 2] / 1000, "p99_us": ns[int(len(ns) * 0.99)] / 1000,
            "p999_us": ns[int(len(ns) * 0.999)] / 1000}


def _matching(bidder: Any, body: bytes) -> int:
    """Campaigns that pass every filter for the request's first imp (before price and floor).

    Reads the engine's private steps on purpose: this is a check that the synthetic set is what the
    benchmark claims, and it must count what the engine itself would consider."""
    from bidder.impstep import media

    engine = bidder.engine
    idx = engine.index
    req = engine._decoder.decode(body)
    m, _ = engine._request_mask(req, engine.wall(), idx.live)
    lines = 0
    for _fmt, mask, _battr, _w, _h in media(idx, req.imp[0]):
        lines |= m & mask & idx.open
    campaign = idx.lines.campaign
    return len({int(campaign[i]) for i in range(idx.n) if lines >> i & 1})


# --- 2 and 3. over HTTP ---------------------------------------------------------------------------


class Server:
    """One server process (its own process group) pinned to ``SERVER_CPU`` under the kernel scheduling
    policy ``scheduling``; ready once its output has shown each of ``ready`` in order and its port accepts
    connections."""

    def __init__(self, name: str, cmd: Sequence[str], ready: Sequence[str], env: dict[str, str],
                 scheduling: str = "batch", bare: str = "") -> None:
        self.name, self.ready, self.bare = name, list(ready), bare  # bare: a bare app's target
        self.port = _free_port()
        self.lines: list[str] = []
        self._seen: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(SERVER_CPU), "chrt", CHRT[scheduling], "0", *cmd, *self._bind_args()],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            env={**os.environ, **env, "RTB_SCHEDULING": scheduling},  # a bidder sets it again itself
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _bind_args(self) -> list[str]:
        if self.bare:
            return ["--host", "127.0.0.1", "--port", str(self.port), self.bare]
        return ["--bind", f"127.0.0.1:{self.port}"]

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            self._seen.put(line)
        self._seen.put(None)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        wanted = list(self.ready)
        while wanted:
            try:
                line = self._seen.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"{self.name}: no {wanted[0]!r} within {timeout:.0f}s:\n{self.output}") from None
            if line is None:
                raise BenchError(f"{self.name} exited ({self.proc.wait()}) before {wanted[0]!r}:\n{self.output}")
            if wanted[0] in line:
                wanted.pop(0)
        # Granian's worker opens its listener around the time it logs "Started": poll briefly to be sure.
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError(f"{self.name}: port {self.port} refuses connections:\n{self.output}") from None
                time.sleep(0.05)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def stop(self) -> None:
        # The whole group: a worker still starting up when its master is told to stop can outlive it.
        _signal_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=15)  # EOF once every process holding the pipe is gone
        if self._reader.is_alive():
            _signal_group(self.proc.pid, signal.SIGKILL)
            self._reader.join(timeout=15)
        if self.proc.stdout is not None and not self._reader.is_alive():
            self.proc.stdout.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"content-type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def _bid_counts(server: Server) -> tuple[int, int]:
    """(requests, bids) the bidder has answered so far; a bare app always 'bids'."""
    if server.bare:
        return 0, 0
    status, raw = _request(server.port, "GET", "/status")
    if status != 200:
        raise BenchError(f"{server.name}: GET /status answered {status}")
    s = json.loads(raw)
    return int(s["requests"]), int(s["bids"])


def _start(stack: ExitStack, tmp: Path, plan: Plan, body: bytes, model: str) -> list[Server]:
    """The bare apps and the bidders, started together (the bidders compile their kernels meanwhile)."""
    env = _bidder_env(tmp, plan.campaigns, body)
    granian = [sys.executable, "-m", "granian", "--workers", "1", "--loop", "uvloop", "--http", "1", "--no-ws",
               "--interface"]
    bidder = [sys.executable, "-m", "control.cli", "bidder", "--interface"]
    decided = [sys.executable, "-m", "bench.ceiling"]
    servers = []
    for name in _bare(plan):
        interface, target = BARE["baseline" if name == AS_INSTALLED else name]
        servers.append(Server(name, [*granian, interface], ["Started worker"], {},
                              "normal" if name == AS_INSTALLED else plan.scheduling, target))
        stack.callback(servers[-1].stop)
    for name in _bidders(model, plan.ceiling):
        interface = name.removesuffix(MODEL).removesuffix(CEILING)
        data = tmp / f"data-{name}"
        data.mkdir()
        extra = {"RTB_MODEL": model} if name.endswith(MODEL) else {}
        cmd = [*decided, interface] if name.endswith(CEILING) else [*bidder, interface]
        servers.append(Server(name, cmd, ["bidder ready", "Started worker"],
                              {**env, "RTB_DATA_DIR": str(data), **extra}, plan.scheduling))
        stack.callback(servers[-1].stop)
    return servers


def _bidder_env(tmp: Path, campaigns: int, body: bytes) -> dict[str, str]:
    """What every benchmarked bidder is served with: ``campaigns`` synthetic campaigns, a notice secret,
    and the request whose answer a ceiling gives (``bench.ceiling``)."""
    request = tmp / "request.json"
    request.write_bytes(body)
    return {"RTB_CAMPAIGNS": str(_synthetic_file(campaigns, tmp / "campaigns.json")),
            "RTB_NOTICE_SECRET": secrets.token_hex(32), ceiling.REQUEST: str(request)}


def _ready(servers: Sequence[Server], body: bytes, lua: Path, warm_up: float, connections: int) -> None:
    """Each server up and bidding on ``body``; then each loaded by wrk, untimed, once all are up (the
    bidders' start-up work is done by then)."""
    from bench import wrk

    for s in servers:
        s.wait_ready()
        status, answer = _request(s.port, "POST", PATH, body)
        if status != 200 or not answer:
            raise BenchError(f"{s.name} answered {status} {answer[:200]!r} to the request; "
                             f"the benchmark measures bids\n{s.output}")
    for s in servers:
        wrk.run(s.url, lua, warm_up, connections, cpu=LOAD_CPU)


def _bare(plan: Plan) -> list[str]:
    return ["baseline", *([AS_INSTALLED] if plan.scheduling != "normal" else []),
            *(["baseline-rsgi"] if plan.ceiling else [])]


def _bidders(model: str, ceiling: bool) -> list[str]:
    return [*INTERFACES, *(f"{i}{MODEL}" for i in INTERFACES if model),
            *(f"{i}{CEILING}" for i in INTERFACES if ceiling)]


def _http(plan: Plan, body: bytes, tmp: Path, model: str) -> dict[str, Any]:
    from bench import loadgen, wrk

    lua = tmp / "post.lua"
    lua.write_text(wrk.script(body))
    with ExitStack() as stack:
        servers = _start(stack, tmp, plan, body, model)
        _ready(servers, body, lua, plan.warm_up, plan.connections)

        runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in servers}
        for _ in range(plan.repeat):
            for s in servers:
                runs[s.name].append(_throughput(s, lua, plan))

        throughput: dict[str, dict[str, Any]] = {}
        servers_by_name = {s.name: s for s in servers}
        for name, rs in runs.items():
            good = [r for r in rs if not r["failed"]]
            throughput[name] = {"median_rps": _median([r["rps"] for r in good]),
                                "median_cpu_us": {part: _median([_cpu_us(r, part) for r in good]) for part in PARTS},
                                "median_busy": _median([r["busy"] for r in good]),
                                "median_stolen": _median([r["stolen"] for r in good]),
                                "median_switches": _median([r["switches"] for r in good]),
                                "scheduling": cpu.policies(servers_by_name[name].proc.pid),
                                "failed_runs": len(rs) - len(good), "runs": rs}
        base = throughput["baseline"]["median_rps"]
        ratios = {f"{n}/baseline": (throughput[n]["median_rps"] / base
                                    if base and throughput[n]["median_rps"] else None)
                  for n in throughput if n != "baseline"}
        # The learned model's cost: how far its ratio falls below the priors' ratio, same run.
        falls = {f"{i}{MODEL}": _fall(ratios[f"{i}/baseline"], ratios[f"{i}{MODEL}/baseline"])
                 for i in INTERFACES if model}
        # What the decision costs inside the loaded server: the time per request it adds to the same
        # app and server without it, where it shares the core and the caches with the HTTP work.
        in_server = {i: _added_us(throughput[i]["median_rps"], throughput[f"{i}{CEILING}"]["median_rps"])
                     for i in INTERFACES if plan.ceiling}
        # The same as CPU time, and on which threads: the app's (main) or the server's (other).
        in_server_cpu = {i: _cpu_difference(throughput[i], throughput[f"{i}{CEILING}"])
                         for i in INTERFACES if plan.ceiling}
        # What the bidder's app costs without its decision over the bare app of its interface: its own
        # HTTP handling (headers, gzip, the latency histogram, the version echoed) and its longer answer.
        over_bare_cpu = {i: _cpu_difference(throughput[f"{i}{CEILING}"], throughput[bare])
                         for bare, (i, _) in BARE.items() if plan.ceiling}

        latency: dict[str, Any] = {}
        for s in servers:
            top = throughput[s.name]["median_rps"]
            if not top:
                latency[s.name] = None
                continue
            with _pinned(LOAD_CPU):
                r = loadgen.run("127.0.0.1", s.port, PATH, body, rate=top / 2, duration=plan.duration)
            latency[s.name] = {f: getattr(r, f) for f in r.__struct_fields__}
    failed = sum(t["failed_runs"] for t in throughput.values()) + sum(
        1 for v in latency.values() if v is None or v["errors"])
    return {"throughput": throughput, "ratios": ratios, "model_falls": falls, "decision_in_server_us": in_server,
            "decision_in_server_cpu_us": in_server_cpu, "app_over_bare_cpu_us": over_bare_cpu, "latency": latency,
            "failed": failed}


def _fall(prior: float | None, learned: float | None) -> float | None:
    return 1 - learned / prior if prior and learned else None


def _added_us(rps: float | None, without_rps: float | None) -> float | None:
    return 1e6 / rps - 1e6 / without_rps if rps and without_rps else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _cpu_us(run: dict[str, Any], part: str) -> float:
    c = run["cpu_us"]
    return float(c["main"] + c["other"] if part == "total" else c[part])


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def _cpu_difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    """What server ``a`` spends a request over server ``b``, part by part (medians of their runs)."""
    x, y = a["median_cpu_us"], b["median_cpu_us"]
    return {part: x[part] - y[part] if x[part] is not None and y[part] is not None else None for part in PARTS}


def cpu_per_request(before: cpu.Cpu, after: cpu.Cpu, requests: int) -> dict[str, float]:
    """A server's CPU in us a request between two readings, on its app's thread and on granian's."""
    n = max(requests, 1)
    return {"main": (after.main - before.main) / 1e3 / n, "other": (after.other - before.other) / 1e3 / n}


def _throughput(s: Server, lua: Path, plan: Plan) -> dict[str, Any]:
    from bench import wrk

    requests_before, bids_before = _bid_counts(s)
    before, stolen_before, switched = cpu.session(s.proc.pid), cpu.stolen(SERVER_CPU), cpu.switches(s.proc.pid)
    r = wrk.run(s.url, lua, plan.duration, plan.connections, cpu=LOAD_CPU)
    after, stolen = cpu.session(s.proc.pid), cpu.stolen(SERVER_CPU) - stolen_before
    switched = cpu.switches(s.proc.pid) - switched
    requests_after, bids_after = _bid_counts(s)
    no_bids = (requests_after - requests_before) - (bids_after - bids_before)
    spent = sum(after) - sum(before)  # ns, all threads
    return {"rps": r.rps, "requests": r.requests, "non_2xx": r.status, "socket_errors": r.socket_errors,
            "no_bids": no_bids, "p50_ms": r.p50_us / 1000, "p99_ms": r.p99_us / 1000,
            # the server's CPU per request, and the share of the run its core spent on it
            "cpu_us": cpu_per_request(before, after, r.requests),
            "switches": switched / max(r.requests, 1),  # context switches of its threads a request
            "busy": spent / 1e3 / r.duration_us if r.duration_us else 0.0,
            "stolen": stolen / 1e3 / r.duration_us if r.duration_us else 0.0,  # by the machine's hypervisor
            "failed": bool(r.status or r.socket_errors or no_bids)}


# --- the table ------------------------------------------------------------------------------------


def _table(report: dict[str, Any], plan: Plan) -> str:
    def num(v: float | None, unit: str = "", digits: int = 1) -> str:
        return "-" if v is None else f"{v:,.{digits}f}{unit}"

    rows = [("", "", "median", "p99", "p99.9", "req/s", "ratio", "target", "notes")]
    names = list(report["throughput"])
    f = report["noise_floor"]
    rows.append(("noise", "constant work", num(f["median_us"], " us"), num(f["p99_us"], " us"),
                 num(f["p999_us"], " us"), "", "", "", "a fixed Python loop timed as the decision is"))
    for d in report["decision"]:
        first = d["campaigns"] == plan.campaigns and d["model"] == "prior"
        target = f"<={TARGETS['median_us']:.0f}/{TARGETS['p99_us']:.0f} us" if first else ""
        rows.append(("decision", f"{d['campaigns']} campaigns, {d['model']}", num(d["median_us"], " us"),
                     num(d["p99_us"], " us"), num(d["p999_us"], " us"), "", "", target,
                     f"{d['matching']} match, {d['calls']:,} calls"))
        c = d["cold"]
        rows.append(("", "  cold caches", num(c["median_us"], " us"), num(c["p99_us"], " us"),
                     num(c["p999_us"], " us"), "", "", "", f"{c['swept_bytes'] / (1 << 20):g} MiB read between "
                     f"calls, {c['calls']:,} calls"))
    for name in names:
        t = report["throughput"][name]
        ratio = 1.0 if name == "baseline" else report["ratios"][f"{name}/baseline"]
        target = (f">={TARGETS[f'{name}/baseline']}" if name in INTERFACES
                  else f"fall <={TARGETS['model_fall']:.0%}" if name.endswith(MODEL) else "")
        bad = sum(r["non_2xx"] + r["socket_errors"] + r["no_bids"] for r in t["runs"])
        fall = report["model_falls"].get(name)
        c, busy, stolen = t["median_cpu_us"], t["median_busy"], t["median_stolen"]
        notes = (f"CPU {num(c['total'], ' us')} a request, {num(c['main'], ' us')} on the app's thread, "
                 f"{num(t['median_switches'], '', 2)} context switches, core "
                 f"{_percent(busy)} busy, {_percent(stolen)} stolen; {len(t['runs'])} x {plan.duration:g} s, "
                 f"{t['failed_runs']} failed, {bad} bad answers")
        if name.endswith(MODEL):
            notes = f"{num(None if fall is None else fall * 100)}% below the priors' ratio; {notes}"
        if name.endswith(CEILING):
            i = name.removesuffix(CEILING)
            added, more = report["decision_in_server_us"][i], report["decision_in_server_cpu_us"][i]
            over = report["app_over_bare_cpu_us"][i]
            notes = (f"no decision: with it each request takes {num(added, ' us')} more, CPU "
                     f"{num(more['total'], ' us')} more ({num(more['main'], ' us')} on the app's thread); "
                     f"CPU {num(over['total'], ' us')} more than the bare app ({num(over['main'], ' us')} on the "
                     f"app's thread); {notes}")
        if name == "baseline-rsgi":
            notes = f"the bare app over RSGI; {notes}"
        if name == AS_INSTALLED:
            notes = f"the baseline under SCHED_OTHER, granian's default; {notes}"
        rows.append(("wrk", name, "", "", "", num(t["median_rps"], digits=0), num(ratio, digits=2), target, notes))
    for name in names:
        lat = report["latency"][name]
        if lat is None:
            rows.append(("open-loop", name, "", "", "", "", "", "", "not run: no throughput"))
            continue
        rows.append(("open-loop", name, num(lat["p50_ms"], " ms", 2), num(lat["p99_ms"], " ms", 2),
                     num(lat["p999_ms"], " ms", 2), f"{lat['achieved']:,.0f}/{lat['rate']:,.0f}", "", "",
                     f"{lat['errors']} errors, max {lat['max_ms']:.1f} ms"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {2, 3, 4, 5, 6}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             .rstrip() for r in rows]
    m = report["machine"]
    l2 = "L2 unknown" if m["l2_kib"] is None else f"{m['l2_kib']:,} KiB of L2 a core"
    head = (f"rtb bench: {m['nproc']} CPUs ({m['cpu']}, {l2}), Python {m['python']}, granian {m['granian']}, "
            f"scheduling {plan.scheduling}, {plan.campaigns} campaigns, "
            f"load {m['load_before'][0]:.2f} -> {m['load_after'][0]:.2f}, {m['date']}")
    return "\n".join([head, *lines])

