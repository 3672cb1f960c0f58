"""The route table's machinery: one ``Endpoint`` per operation drives both the Starlette route and the
OpenAPI document, and ``handle`` wraps every call in the same steps:

    authenticate -> check scope -> rate limit -> Idempotency-Key replay -> decode body and query
    -> handler -> encode -> remember the response for the Idempotency-Key -> count and time it

Handlers return a msgspec Struct (encoded as JSON with the endpoint's status) or a ready Response.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from control.auth import Principal, Scope
from control.errors import ApiError, BadRequest, Conflict, decode

if TYPE_CHECKING:
    from control.service import Control

log = logging.getLogger("control.api")
IDEMPOTENCY_TTL = 24 * 3600.0


@dataclass(frozen=True)
class Param:
    name: str
    type: type[int] | type[str] = str
    required: bool = False
    enum: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    description: str = ""
    format: str = ""  # OpenAPI string format, e.g. "date"
    pattern: str = ""


@dataclass
class Ctx:
    request: Request
    svc: Control
    principal: Principal | None
    path: dict[str, str]
    query: dict[str, Any]
    body: Any = None


Handler = Callable[[Ctx], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under /api/v1 unless it starts with "//"
    action: str  # the metric label and the OpenAPI operationId
    handler: Handler
    scope: Scope | None = "read"
    body: Any = None
    response: Any = None
    status: int = 200
    query: tuple[Param, ...] = ()
    summary: str = ""
    media_type: str = "application/json"
    errors: tuple[int, ...] = field(default=(400, 422))

    @property
    def full_path(self) -> str:
        return self.path[1:] if self.path.startswith("//") else f"/api/v1{self.path}"


def _query(ep: Endpoint, request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in ep.query:
        raw = request.query_params.get(p.name)
        if raw is None:
            if p.required:
                raise BadRequest(f"query parameter {p.name!r} is required", field=p.name)
            out[p.name] = None
            continue
        if p.pattern and re.fullmatch(p.pattern, raw) is None:
            raise BadRequest(f"query parameter {p.name!r} must match {p.pattern}, got {raw!r}", field=p.name)
        if p.enum and raw not in p.enum:
            raise BadRequest(f"query parameter {p.name!r} must be one of {', '.join(p.enum)}, got {raw!r}",
                             field=p.name)
        value: Any = raw
        if p.type is int:
            try:
                value = int(raw)
            except ValueError:
                raise BadRequest(f"query parameter {p.name!r} must be an integer, got {raw!r}",
                                 field=p.name) from None
            if (p.minimum is not None and value < p.minimum) or (p.maximum is not None and value > p.maximum):
                raise BadRequest(
                    f"query parameter {p.name!r} must be in [{p.minimum}, {p.maximum}], got {value}",
                    field=p.name,
                )
        out[p.name] = value
    return out


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(body), status, headers, media_type="application/json")


async def handle(ep: Endpoint, svc: Control, request: Request) -> Response:
    started = time.perf_counter()
    response: Response | None = None
    try:
        response = await _handle(ep, svc, request)
    except ApiError as exc:
        response = exc.response()
    except Exception:
        log.exception("%s %s failed", ep.method, ep.full_path)
        response = ApiError("internal error; the request was not applied if it answered 5xx").response()
    finally:
        status = response.status_code if response is not None else 500
        svc.metrics.requests.labels(ep.action, str(status)).inc()
        svc.metrics.duration.labels(ep.action).observe(time.perf_counter() - started)
    return response


async def _handle(ep: Endpoint, svc: Control, request: Request) -> Response:
    principal = None
    if ep.scope is not None:
        principal = svc.keys.authenticate(request.headers.get("authorization"))
        principal.require(ep.scope)
        svc.limiter.check(principal.key_id)
    raw = await request.body()
    idem = request.headers.get("idempotency-key") if ep.method == "POST" and principal else None
    fingerprint = ""
    if idem and principal is not None:
        if len(idem) > 255:
            raise BadRequest("Idempotency-Key must be at most 255 characters", field="Idempotency-Key")
        fingerprint = hashlib.sha256(f"{ep.method} {request.url.path}\n".encode() + raw).hexdigest()
        replay = _replay(svc, principal, idem, fingerprint)
        if replay is not None:
            return replay
        slot = (principal.key_id, idem)
        if slot in _in_flight:
            raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly",
                           field="Idempotency-Key")
        _in_flight.add(slot)
        try:
            return await _run(ep, svc, request, principal, raw, idem, fingerprint)
        finally:
            _in_flight.discard(slot)
    return await _run(ep, svc, request, principal, raw, None, "")


# (key id, Idempotency-Key) of requests being handled now: a duplicate sent meanwhile must not run twice.
_in_flight: set[tuple[str, str]] = set()


async def _run(ep: Endpoint, svc: Control, request: Request, principal: Principal | None, raw: bytes,
               idem: str | None, fingerprint: str) -> Response:
    ctx = Ctx(request, svc, principal, dict(request.path_params), _query(ep, request))
    if ep.body is not None:
        ctx.body = decode(raw, ep.body)
    result = await ep.handler(ctx)
    response = result if isinstance(result, Response) else _json(ep.status, result)
    if idem and principal is not None and response.status_code < 500:
        svc.db.execute(
            "INSERT OR IGNORE INTO idempotency (key_id, idem_key, fingerprint, status, body, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (principal.key_id, idem, fingerprint, response.status_code, bytes(response.body),
             svc.clock.now()),
        )
    return response


def _replay(svc: Control, principal: Principal, idem: str, fingerprint: str) -> Response | None:
    now = svc.clock.now()
    svc.db.execute("DELETE FROM idempotency WHERE created_at < ?", (now - IDEMPOTENCY_TTL,))
    row = svc.db.one(
        "SELECT fingerprint, status, body FROM idempotency WHERE key_id = ? AND idem_key = ?",
        (principal.key_id, idem),
    )
    if row is None:
        return None
    if row["fingerprint"] != fingerprint:
        raise Conflict("this Idempotency-Key was used with a different request; use a new key",
                       field="Idempotency-Key")
    return Response(row["body"], row["status"], {"Idempotent-Replayed": "true"},
                    media_type="application/json")
