"""Maximum throughput with wrk: a POST script, one run pinned to a CPU, and its summary as a Struct.

The script's ``done`` hook prints one machine-readable line, so nothing depends on wrk's text layout.
No ``response`` hook: defining one makes wrk hand every response to Lua, which would cap the load
generator itself; statuses are checked before and after a run instead (see ``bench.cli``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec

MARK = "RTB_WRK "

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,"write":%.0f,' ..
    '"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p99_us":%.0f}\\n', MARK,
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class WrkError(RuntimeError):
    pass


class Run(msgspec.Struct):
    requests: int
    duration_us: int
    connect: int
    read: int
    write: int
    status: int  # responses with a status >= 400 (wrk's "Non-2xx or 3xx responses")
    timeout: int
    p50_us: int
    p99_us: int

    @property
    def rps(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout


def _lua_string(data: bytes) -> str:
    # Decimal escapes for everything but plain characters: any body survives, whatever it contains.
    plain = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,.:-_/"
    return '"' + "".join(chr(b) if b in plain else f"\\{b:03d}" for b in data) + '"'


def script(body: bytes) -> str:
    """A wrk Lua script POSTing ``body`` as JSON on every request."""
    return (f'wrk.method = "POST"\nwrk.body = {_lua_string(body)}\n'
            f'wrk.headers["Content-Type"] = "application/json"\nMARK = "{MARK}"\n{_DONE}')


def parse(output: str) -> Run:
    for line in output.splitlines():
        if line.startswith(MARK):
            return msgspec.json.decode(line[len(MARK):], type=Run)
    raise WrkError(f"wrk printed no {MARK.strip()} line:\n{output}")


def run(url: str, script_path: Path, duration: float, connections: int = 32, threads: int = 1,
        cpu: int | None = 1) -> Run:
    """One wrk run against ``url`` (pinned to ``cpu`` with taskset when given)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "-s", str(script_path), url]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=False)
    except FileNotFoundError as exc:
        raise WrkError(f"{exc.filename} is not installed (Debian: apt-get install wrk util-linux)") from exc
    if done.returncode != 0:
        raise WrkError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return parse(done.stdout)
