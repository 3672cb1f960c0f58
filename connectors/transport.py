"""The one place connectors do network I/O.

Translators build ``PlatformRequest`` values and parse ``PlatformResponse`` values; a ``Transport``
carries one to the platform and brings the other back. Production uses ``HttpxTransport`` over an
``httpx.AsyncClient`` that the caller owns (so connection pools are shared); tests hand the same class a
client on ``httpx.MockTransport``, or use any object with a matching ``send``.
"""

from __future__ import annotations

from typing import Protocol

import httpx
import msgspec

from .errors import PlatformError, PlatformTimeout


class PlatformRequest(msgspec.Struct, frozen=True):
    method: str
    url: str  # absolute, or relative to the client's base_url
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    json: object = None  # encoded with msgspec when not None
    form: dict[str, str] | None = None  # sent as application/x-www-form-urlencoded


class PlatformResponse(msgspec.Struct, frozen=True):
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class Transport(Protocol):
    async def send(self, request: PlatformRequest) -> PlatformResponse:
        """Carry ``request`` to the platform. Raises ``PlatformTimeout`` or ``PlatformError`` (code
        ``"transport"``) when no HTTP answer came back; any HTTP answer, error statuses included, is
        returned for the translator to judge."""
        ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    def __init__(self, platform: str, client: httpx.AsyncClient, timeout: float = 10.0,
                 owns_client: bool = False) -> None:
        self.platform = platform
        self.client = client
        self.timeout = timeout
        self.owns_client = owns_client  # close the client with the transport (the factory made it)

    async def aclose(self) -> None:
        if self.owns_client:
            await self.client.aclose()

    async def send(self, request: PlatformRequest) -> PlatformResponse:
        content = None if request.json is None else msgspec.json.encode(request.json)
        headers = dict(request.headers)
        if content is not None:
            headers.setdefault("content-type", "application/json")
        try:
            resp = await self.client.request(
                request.method,
                request.url,
                headers=headers,
                params=request.params or None,
                content=content,
                data=request.form,
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise PlatformTimeout(self.platform, self.timeout) from exc
        except httpx.HTTPError as exc:
            raise PlatformError(self.platform, "transport", f"{type(exc).__name__}: {exc}") from exc
        return PlatformResponse(
            status=resp.status_code,
            headers={k.lower(): v for k, v in resp.headers.items()},
            body=resp.content,
        )
