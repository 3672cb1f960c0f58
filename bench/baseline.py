"""The baseline: a bare ASGI app answering a fixed JSON body, the most any ASGI app can do here; and
``rsgi``, the same over RSGI (granian's native interface), the most any RSGI app can do here."""

from __future__ import annotations

from typing import Any

BODY = b'{"id":"80ce30c53c16e6ede735f123ef6e32361bfc7b22","seatbid":[{"bid":[{"id":"1","impid":"1","price":3.2}]}]}'
HEADERS = [(b"content-type", b"application/json")]
RSGI_HEADERS = [("content-type", "application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        return
    more = True
    while more:  # drain the request body, as a real app must
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


class _Rsgi:
    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        await protocol()  # read the request body, as a real app must
        protocol.response_bytes(200, RSGI_HEADERS, BODY)


rsgi = _Rsgi()
