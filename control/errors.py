"""The one error envelope every control-plane failure is answered with.

    ApiError                      status, code, type, message, details
    ├── BadRequest          400   body is not JSON, a query parameter is malformed
    ├── ValidationFailed    422   a field is wrong; details.field is its path (``$.monthly_budget``)
    ├── Unauthorized        401   no or unknown API key
    ├── Forbidden           403   the key lacks the scope
    ├── NotFound            404
    ├── Conflict            409   state forbids it, or an Idempotency-Key reused with another body
    └── RateLimited         429   details.retry_after and the Retry-After header

Body: ``{"status": "error", "error": {"code", "type", "message", "details"}}``; ``code`` repeats the
HTTP status so clients that only see the body can branch on it.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, TypeVar

import msgspec
from starlette.responses import Response

T = TypeVar("T")


class ErrorBody(msgspec.Struct):
    code: int
    type: str
    message: str
    details: dict[str, Any] = {}


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody
    status: str = "error"


class ApiError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "internal_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def headers(self) -> dict[str, str]:
        return {}

    def response(self) -> Response:
        body = ErrorEnvelope(ErrorBody(self.status, self.type, self.message, self.details))
        return Response(
            msgspec.json.encode(body), self.status, self.headers(), media_type="application/json"
        )


class BadRequest(ApiError):
    status = 400
    type = "bad_request"


class ValidationFailed(ApiError):
    status = 422
    type = "validation_error"


class Unauthorized(ApiError):
    status = 401
    type = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="rtb"'}


class Forbidden(ApiError):
    status = 403
    type = "forbidden"


class NotFound(ApiError):
    status = 404
    type = "not_found"


class Conflict(ApiError):
    status = 409
    type = "conflict"


class RateLimited(ApiError):
    status = 429
    type = "rate_limited"

    def __init__(self, retry_after: float) -> None:
        super().__init__("rate limit exceeded for this API key", retry_after=round(retry_after, 3))
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        # The header only takes whole seconds; the body keeps the exact figure.
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


_PATH = re.compile(r" - at `(\$[^`]*)`$")


def from_msgspec(exc: msgspec.ValidationError) -> ValidationFailed:
    """``Expected `int`, got `str` - at `$.budget` `` -> message and ``details.field = "$.budget"``."""
    text = str(exc)
    m = _PATH.search(text)
    field = m.group(1) if m else "$"
    return ValidationFailed(_PATH.sub("", text) or "invalid value", field=field)


def decode(body: bytes, type: type[T]) -> T:
    if not body.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        return msgspec.json.decode(body, type=type)
    except msgspec.ValidationError as exc:
        raise from_msgspec(exc) from exc
    except msgspec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
