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


def _routes(control: Control) -> list[Route]:
    """One route per path, dispatching on the method, so a 405 lists every method the path has."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for ep in ENDPOINTS:
        by_path.setdefault(ep.full_path, {})[ep.method] = ep

    def route(path: str, methods: dict[str, Endpoint]) -> Route:
        async def endpoint(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await handle(methods[method], control, request)

        return Route(path, endpoint, methods=list(methods))

    return [route(path, methods) for path, methods in by_path.items()]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return NotFound(f"no such endpoint: {request.method} {request.url.path}").response()
    if exc.status_code == 405:
        response = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}").response()
        response.headers.update(exc.headers or {})  # Allow: the methods that are
        return response
    return BadRequest(str(exc.detail)).response()


def create_app(settings: Settings | None = None, *, control: Control | None = None,
               **kwargs: Any) -> Starlette:
    """``kwargs`` go to ``Control`` (clock, copy generator, HTTP clients, sleep) when it is made here."""
    owned = control is None  # a Control passed in belongs to the caller, who closes it
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
        # Said by the worker, whose logging is set up (the main process's is not): where its data is.
        log.info("control plane ready (schema %d, snapshot version %d), data in %s", ctl.db.schema_version,
                 ctl.store.version(), ctl.settings.data_dir)
        try:
            yield
        finally:
            await ctl.stop()
            if owned:
                await ctl.close()

    routes = _routes(ctl) + [
        Route("/openapi.json", openapi), Route("/metrics", metrics),
        # /healthz as the bidder has it, so that one probe fits both; /health as it was first published
        Route("/healthz", health), Route("/health", health),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    app.state.control = ctl
    return app
