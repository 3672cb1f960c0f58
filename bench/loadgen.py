"""A constant-rate (open-loop) HTTP/1.1 load generator.

Requests are scheduled at fixed intended times (start + i / rate) whatever the server does; a request
waits for a free keep-alive connection if all are busy, and its latency counts from its *intended*
send time. A slow server therefore shows its queueing in the percentiles instead of slowing the load
down (no coordinated omission, as in wrk2/HdrHistogram). For the same reason the generator itself must
not pause: it runs with the garbage collector off (see ``run``).
"""

from __future__ import annotations

import asyncio
import gc
import time

import msgspec


class Result(msgspec.Struct):
    rate: float  # requests per second asked for
    achieved: float  # responses per second
    sent: int
    errors: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


def _request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _worker(host: str, port: int, raw: bytes, queue: asyncio.Queue[float | None],
                  lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    clock = time.perf_counter
    try:
        while True:
            intended = await queue.get()
            if intended is None:
                return
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            lat.append(clock() - intended)
            if status not in (200, 204):
                errors[0] += 1
    finally:
        writer.close()


async def _run(host: str, port: int, path: str, body: bytes, rate: float, duration: float,
               connections: int) -> Result:
    raw = _request(host, port, path, body)
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    lat: list[float] = []
    errors = [0]
    workers = [asyncio.create_task(_worker(host, port, raw, queue, lat, errors)) for _ in range(connections)]
    await asyncio.sleep(0.2)  # let the connections open before the clock starts
    n = int(rate * duration)
    clock = time.perf_counter
    start = clock() + 0.05
    for i in range(n):
        intended = start + i / rate
        delay = intended - clock()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        queue.put_nowait(intended)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = clock() - start
    lat.sort()

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    return Result(rate=rate, achieved=len(lat) / elapsed, sent=n, errors=errors[0], p50_ms=q(0.5),
                  p99_ms=q(0.99), p999_ms=q(0.999), max_ms=lat[-1] * 1000 if lat else float("nan"))


def run(host: str, port: int, path: str, body: bytes, rate: float, duration: float = 10.0,
        connections: int = 64) -> Result:
    # A full collection of the calling process's heap (``rtb bench`` keeps what measuring the decision
    # left) took 55 ms there: every request due meanwhile would be sent late and the delay counted as the
    # server's. So collect now, and not again until the run is over; a run allocates little that only
    # a collection could free.
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        try:
            import uvloop

            return uvloop.run(_run(host, port, path, body, rate, duration, connections))
        except ImportError:  # pragma: no cover - uvloop comes with granian[uvloop]
            return asyncio.run(_run(host, port, path, body, rate, duration, connections))
    finally:
        if was_enabled:
            gc.enable()
