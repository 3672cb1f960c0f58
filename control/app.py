"""The control plane's Starlette app: ``create_app(settings)``; the lifespan runs the background work."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from control.api import Endpoint, handle
from control.errors import ApiError, BadRequest, NotFound
from control.openapi import document
from control.routes import ENDPOINTS
from control.service import Control
from control.settings import Settings

log = logging.getLogger("rtb.control")


class MethodNotAllowed(ApiError):
    status = 405
    type = "method_not_allowed"


def _route(ep: Endpoint, control: Control) -> Route:
    async def endpoint(request: Request) -> Response:
        return await handle(ep, control, request)

    return Route(ep.full_path, endpoint, methods=[ep.method], name=ep.action)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return NotFound(f"no such endpoint: {request.method} {request.url.path}").response()
    if exc.status_code == 405:
        return MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}").response()
    return BadRequest(str(exc.detail)).response()


def create_app(settings: Settings | None = None, *, control: Control | None = None, **kwargs: Any) -> Starlette:
    """``kwargs`` go to ``Control`` (clock, copy generator, HTTP clients, sleep) when it is made here."""
    ctl = control or Control(settings or Settings.from_env(), **kwargs)
    spec = msgspec.json.encode(document(ENDPOINTS))

    async def openapi(_: Request) -> Response:
        return Response(spec, media_type="application/json")

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(ctl.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def health(_: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await ctl.start()
        log.info("control plane ready (schema %d, snapshot version %d)", ctl.db.schema_version,
                 ctl.store.version())
        try:
            yield
        finally:
            await ctl.stop()

    routes = [_route(ep, ctl) for ep in ENDPOINTS] + [
        Route("/openapi.json", openapi), Route("/metrics", metrics), Route("/health", health),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    app.state.control = ctl
    return app
