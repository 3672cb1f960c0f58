"""HTTP for the bidder: one ``App`` that speaks both ASGI and granian's native RSGI.

Both interfaces share ``App.handle``; only reading the body and writing the answer differ, so the same
tests run against both. Limits are enforced before and after decompression: a body (or what a gzip
body inflates to) over ``max_body`` is answered 413 without holding more than ``max_body`` + 1 bytes.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NamedTuple

from bidder.launch import relay_stop_signals
from bidder.service import JSON, TEXT, Answer, Bidder
from bidder.upkeep import Upkeep

BID_PATHS = frozenset({"/openrtb2/bid", "/api/v1/bidding/bid-request"})
NOTICE_KINDS = {"/notice/win": "win", "/notice/bill": "bill", "/notice/loss": "loss"}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class TooLarge(Exception):
    pass


class App:
    def __init__(self, bidder: Bidder, upkeep: Upkeep | None = None) -> None:
        self.bidder = bidder
        self.max_body = bidder.settings.max_body
        self.gzip_min = bidder.settings.gzip_min
        self._upkeep = upkeep
        self._tasks: list[asyncio.Task[None]] = []

    # --- shared --------------------------------------------------------------------------------------

    def bid(self, body: bytes, gzipped: bool) -> Answer:
        t0 = time.perf_counter_ns()
        if gzipped:
            try:
                body = self._gunzip(body)
            except TooLarge:
                return 413, TEXT, b""
            except (zlib.error, EOFError):
                self.bidder.stats.invalid += 1
                return 400, TEXT, b""
        status, payload = self.bidder.engine.bid(body, t0)
        self.bidder.stats.observe(time.perf_counter_ns() - t0)
        return status, JSON, payload

    def _gunzip(self, body: bytes) -> bytes:
        d = zlib.decompressobj(wbits=31)
        out = d.decompress(body, self.max_body + 1)
        if len(out) > self.max_body or d.unconsumed_tail:
            raise TooLarge
        if not d.eof:
            raise EOFError("truncated gzip body")
        return out

    def handle(self, method: str, path: str, query: str) -> Answer:
        """Every endpoint but the bid one, which needs the body and headers."""
        b = self.bidder
        kind = NOTICE_KINDS.get(path)
        if kind is not None and method in ("GET", "POST"):
            return b.notice(kind, query)
        if method != "GET":
            return 405, TEXT, b""
        if path == "/healthz":
            return 200, TEXT, b"ok"
        if path == "/readyz":
            return (200, TEXT, b"ready") if b.ready else (503, TEXT, b"starting")
        if path == "/status":
            return b.status()
        if path == "/metrics":
            return b.metrics()
        if path == "/events":
            return b.events(query)
        return 404, TEXT, b""

    @staticmethod
    def _headers(status: int, ctype: str) -> list[tuple[str, str]]:
        return [] if status == 204 else [("content-type", ctype)]

    def _bid_answer(self, status: int, body: bytes, accept: str, version: str | None) -> tuple[_Headers, bytes]:
        """Headers and body of a bid answer: the version answered, and gzip when the exchange takes it."""
        v25 = version is not None and version.startswith("2.5")
        if body and "gzip" in accept and len(body) >= self.gzip_min:
            return _BID_HEADERS_GZIP[v25], gzip.compress(body, compresslevel=1, mtime=0)
        return (_BID_HEADERS if body else _NO_BODY_HEADERS)[v25], body

    async def _start(self) -> None:
        relay_stop_signals(asyncio.get_running_loop())  # a stop that comes between the loop's runs
        if not self.bidder.ready:
            self.bidder.warm_up()
        if self._upkeep is not None:
            self._tasks.append(asyncio.ensure_future(self._upkeep.run()))

    # --- ASGI ----------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        method = scope["method"]
        if path in BID_PATHS and method == "POST":
            length = accept = encoding = version = None
            for k, v in scope["headers"]:
                if k == b"content-length":
                    length = v
                elif k == b"accept-encoding":
                    accept = v
                elif k == b"content-encoding":
                    encoding = v
                elif k == b"x-openrtb-version":
                    version = v
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await _send(send, 413, [], b"")
                return
            msg = await receive()  # the whole body in one message, unless it is large or chunked
            body = msg.get("body", b"")
            if msg.get("more_body"):
                try:
                    body = await self._read_asgi_rest(receive, body)
                except TooLarge:
                    await _send(send, 413, [], b"")
                    return
            # Prebid's ``?gzip=1``, looked for only when there is a query: ``b"..." in bytes`` costs some 2,000
            # instructions on CPython 3.11, which tries the needle as an int first and formats the error it clears
            query = scope.get("query_string", b"")
            gz = encoding is not None and b"gzip" in encoding or (b"gzip=1" in query if query else False)
            status, _, payload = self.bid(body, gz)
            both, payload = self._bid_answer(status, payload, accept.decode("latin-1") if accept else "",
                                             version.decode("latin-1") if version else None)
            headers = both.asgi
        else:
            msg = await receive()  # notices may POST; their body is not used
            try:
                if msg.get("more_body"):
                    await self._read_asgi_rest(receive, msg.get("body", b""))
            except TooLarge:
                await _send(send, 413, [], b"")
                return
            status, ctype, payload = self.handle(method, path, scope.get("query_string", b"").decode("latin-1"))
            headers = [(k.encode(), v.encode()) for k, v in self._headers(status, ctype)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _read_asgi_rest(self, receive: Receive, body: bytes) -> bytes:
        """The rest of a body sent in several messages, counted against the limit as it arrives."""
        msg: MutableMapping[str, Any] = {"more_body": True}
        chunks = [body]
        size = len(body)
        if size > self.max_body:
            raise TooLarge
        while msg.get("more_body"):
            msg = await receive()
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self._start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- RSGI ----------------------------------------------------------------------------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self._start())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.close()

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        path = scope.path
        method = scope.method
        if path in BID_PATHS and method == "POST":
            hdrs = scope.headers
            length = hdrs.get("content-length")
            try:
                if length is not None and length.isdigit() and int(length) <= self.max_body:
                    body = await protocol()  # framed by Content-Length: the common case, read at once
                else:
                    body = await self._read_rsgi(protocol, length)
            except TooLarge:
                protocol.response_empty(413, [])
                return
            gz = "gzip" in hdrs.get("content-encoding", "") or "gzip=1" in scope.query_string
            status, _, payload = self.bid(body, gz)
            both, payload = self._bid_answer(status, payload, hdrs.get("accept-encoding", ""),
                                             hdrs.get("x-openrtb-version"))
            headers = both.rsgi
        else:
            try:
                await self._read_rsgi(protocol, scope.headers.get("content-length"))
            except TooLarge:
                protocol.response_empty(413, [])
                return
            status, ctype, payload = self.handle(method, path, scope.query_string)
            headers = self._headers(status, ctype)
        if payload:
            protocol.response_bytes(status, headers, payload)
        else:
            protocol.response_empty(status, headers)

    async def _read_rsgi(self, protocol: Any, length: str | None) -> bytes:
        if length is not None:
            if length.isdigit() and int(length) <= self.max_body:
                return await protocol()  # type: ignore[no-any-return]  # framed by Content-Length
            raise TooLarge
        chunks = []
        size = 0
        async for chunk in protocol:  # chunked: count as it arrives
            size += len(chunk)
            if size > self.max_body:
                raise TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.bidder.close()


class _Headers(NamedTuple):
    """One set of response headers in both interfaces' forms, built once."""

    rsgi: list[tuple[str, str]]
    asgi: list[tuple[bytes, bytes]]


def _both(headers: list[tuple[str, str]]) -> _Headers:
    return _Headers(headers, [(k.encode(), v.encode()) for k, v in headers])


# Bid answers' headers, indexed by "the exchange speaks 2.5" (else we answer 2.6).
_BID = [[("content-type", JSON), ("x-openrtb-version", v)] for v in ("2.6", "2.5")]
_BID_HEADERS = tuple(_both(h) for h in _BID)
_NO_BODY_HEADERS = tuple(_both([("x-openrtb-version", v)]) for v in ("2.6", "2.5"))
_BID_HEADERS_GZIP = tuple(_both([*h, ("content-encoding", "gzip"), ("vary", "accept-encoding")]) for h in _BID)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
